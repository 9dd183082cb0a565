#pragma once
// The room event log in NATS JetStream. One stream holds every room's events,
// each room on its own subject (domain::subjects_for). The stream republishes
// each stored event on <prefix>.live.<token>.e (core NATS, with its stream
// sequence and the previous sequence of the same subject in headers), which
// is how an instance follows a room live with one cheap core subscription
// instead of a JetStream consumer per room.
//
// nats.h stays out of this header: callers see only these types.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/room_name.hpp"

namespace spdlog { class logger; }

namespace sig::nats {

// Authentication and TLS towards NATS, on top of what the URL carries
// (user:password@, tls://). Empty fields are not used.
struct nats_security {
  std::string user;
  std::string password;
  std::string token;
  std::string creds_file;  // a .creds file: user JWT and NKey seed (NATS accounts)
  std::string tls_ca;      // CA bundle to verify the server; turns TLS on
  std::string tls_cert;    // client certificate and key, for servers that verify clients
  std::string tls_key;
  bool tls = false;        // TLS with the system's CAs (also: a tls:// URL)
};

struct log_settings {
  std::string url = "nats://127.0.0.1:4222";
  nats_security security;
  std::string stream = "SIGSTREAM";
  std::string subject_prefix = "sigstream";
  std::chrono::seconds max_age{24 * 3600};   // 0: keep forever
  std::int64_t max_bytes = 1024LL * 1024 * 1024;  // -1: no limit
  std::chrono::seconds duplicate_window{120};
  std::string client_name;  // shows in the NATS server's connection list
  bool create_stream = true;    // false (tools): a missing stream is an error
  // true: every publish is written at once (lowest latency, a syscall each);
  // false: nats.c batches writes for up to 1 ms (fewer syscalls under load).
  bool send_asap = true;
  int connect_attempts = 0;     // 0: keep trying until stopped
};

struct append_result {
  bool ok = false;
  std::uint64_t seq = 0;
  bool duplicate = false;  // JetStream had it already (same message id)
  std::string error;
};

struct live_message {
  std::uint64_t seq = 0;
  std::uint64_t previous_subject_seq = 0;  // 0: first message on the subject
  std::string payload;
};

struct stored_message {
  std::uint64_t seq = 0;
  std::string payload;
};

// Where a scan starts: a stream sequence, or (time_ms > 0) the first message
// stored at or after a time.
struct scan_start {
  std::uint64_t seq = 1;
  std::int64_t time_ms = 0;
};

enum class scan_end {
  caught_up,  // every message that existed when the scan began was delivered
  stopped,    // the callback returned false, or `stop` was set
  failed,     // NATS error, or silence where messages were due (logged)
};

// One instance's heartbeat in the heartbeat bucket.
struct heartbeat_entry {
  std::string instance;
  std::string value;          // what the instance wrote (JSON)
  std::uint64_t revision = 0; // grows with every write to the bucket
  bool removed = false;       // the instance deleted it: it stopped cleanly
};

// One subject of the stream and how many messages it holds.
struct subject_count {
  std::string subject;
  std::uint64_t messages = 0;
};

// A core subscription; unsubscribes when destroyed. The callback is not
// called after the destructor returns... except one already running, which
// is why callers must capture only weak references.
class live_subscription {
 public:
  virtual ~live_subscription() = default;
};

class event_log {
 public:
  event_log(log_settings settings, std::shared_ptr<spdlog::logger> log);
  ~event_log();
  event_log(event_log const&) = delete;
  event_log& operator=(event_log const&) = delete;

  // Blocking. Connects (retrying with backoff until `stop` is set) and makes
  // the stream usable: creates it if absent, checks an existing one without
  // changing it. Returns false if the stream exists in a shape sigstream
  // cannot use, or if stopped.
  bool start(std::atomic<bool> const& stop);

  // Connected, and the stream is usable.
  bool ready() const;

  // Closes the connection and drops every pending append completion (and
  // what it holds). After this, appends fail at once. Idempotent.
  void close();

  domain::room_subjects subjects(std::string const& room_token) const;

  // Non-blocking: `done` runs later on a NATS thread (hand it off, do not
  // work there). `msg_id` is JetStream's dedup key: a retry with the same id
  // inside the duplicate window is stored once.
  void append(std::string const& subject, std::string payload, std::string msg_id,
              std::function<void(append_result)> done);

  // Blocking. Stores a room snapshot on `subject` as a rollup (the stream
  // keeps only the newest message there). Instances that write the same
  // snapshot use the same `msg_id`, so it is stored once. False if not
  // stored (no rollups on this stream, not connected, an error).
  bool put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id);

  // Non-blocking apart from a socket write. `on_message` runs on a NATS thread.
  std::unique_ptr<live_subscription> subscribe_live(std::string const& room_token,
                                                    std::function<void(live_message)> on_message);

  // --- Blocking calls: run them on a worker, never on an io_context thread.
  // Round trip to the server, so that subscriptions made before are active.
  bool flush();
  // Sequence of the newest message on `subject` (wildcards allowed); 0 if none.
  std::optional<std::uint64_t> last_seq(std::string const& subject);
  // Messages on `filter` with from_seq <= seq <= to_seq, in order. nullopt on error.
  std::optional<std::vector<stored_message>> read(std::string const& filter, std::uint64_t from_seq,
                                                  std::uint64_t to_seq);
  // Streams the messages on `filter` from `start`, in order, to `on_message`
  // (return false to stop), through one short-lived ordered consumer, so
  // memory stays flat however long the history. Without `follow` it ends
  // once the messages that existed at the start are delivered; with it, it
  // keeps delivering new ones until `stop` is set or the callback says stop.
  // `on_quiet`, when following, runs after every 10 s without a message
  // (a reader can keep its client's connection alive); false stops the scan.
  scan_end scan(std::string const& filter, scan_start start, bool follow, std::atomic<bool> const& stop,
                std::function<bool(stored_message&&)> const& on_message,
                std::function<bool()> const& on_quiet = {});
  // The stream's subjects matching `filter` with their message counts
  // (JetStream's stream info). nullopt on error.
  std::optional<std::vector<subject_count>> subjects_matching(std::string const& filter);
  // The stream's last sequence, any subject (stream info: cheap). nullopt on error.
  std::optional<std::uint64_t> stream_last_seq();
  // The newest message on `subject`, or an empty payload with seq 0 if none.
  std::optional<stored_message> last_message(std::string const& subject);

  // --- Instance heartbeats: a JetStream key-value bucket beside the stream
  // (<stream>_INSTANCES), one key per instance. Blocking, like the above.
  // Creates the bucket if absent (entries vanish after `ttl` without a
  // write, which only collects garbage: liveness is judged by watchers).
  bool open_heartbeats(std::chrono::seconds ttl);
  bool put_heartbeat(std::string const& instance, std::string const& value);
  bool remove_heartbeat(std::string const& instance);
  // Every heartbeat present now.
  std::optional<std::vector<heartbeat_entry>> heartbeats();
  // Follows the bucket: the current entries first, then every change.
  // nullopt when nothing came within `wait` (or on error, logged).
  std::optional<heartbeat_entry> next_heartbeat(std::chrono::milliseconds wait);
  // A value every instance of the stream shares, in the bucket
  // <stream>_CLUSTER (created if absent): the stored value of `key`, or
  // `candidate` stored now if there was none. nullopt on error.
  std::optional<std::string> shared_secret(std::string const& key, std::string const& candidate);
  // Deletes the whole stream (every room's events). For tools that own a
  // stream of their own, such as `sigstream bench history`; never called by
  // an instance. True if the stream is gone (deleted now, or absent).
  bool delete_stream();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sig::nats
