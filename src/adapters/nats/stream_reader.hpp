#pragma once
// Reading the stream: a room's history, its newest message, the stream's
// subjects and head. Every call blocks on a round trip (or many): run them
// on a worker thread, or in a tool, never on an I/O thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ports/history_source.hpp"

struct __natsSubscription;

namespace sig::nats {

class connection;

using service::stored_message;

using service::scan_end;
using service::scan_start;
using service::subject_count;

// The newest message on `subject` (wildcards allowed) in `stream`, or an
// empty payload with seq 0 if none; nullopt on error (logged). `direct`: a
// direct get, which any replica may answer; otherwise through the
// JetStream API, which the stream's leader answers. Blocking.
std::optional<stored_message> newest_message(connection& conn, std::string const& stream, std::string const& subject,
                                             bool direct);

class stream_reader {
 public:
  stream_reader(connection& conn, std::string stream) : conn_(conn), stream_(std::move(stream)) {}

  // What the stream is, as found when it was checked (stream_setup).
  // `direct`: newest messages are read with a direct get, not through the
  // JetStream API (a cheaper request for the server, and it is one of
  // every room rebuild's). Only on a stream with one replica: nats-server
  // 2.9 lets every replica answer direct gets once it is 90 % caught up,
  // so on a replicated stream an answer can be stale (measured: 2 of
  // 3,002 events, from a replica woken after a stop) or never come (a
  // stalled replica drawn from the queue group); the API's get is the
  // leader's. `replicated`: see scan().
  void use_stream_shape(bool direct, bool replicated) {
    direct_ = direct && !replicated;
    replicated_ = replicated;
  }
  bool direct_get() const { return direct_; }

  // Round trip to the server, so that subscriptions made before are active.
  bool flush();
  // Sequence of the newest message on `subject` (wildcards allowed); 0 if none.
  std::optional<std::uint64_t> last_seq(std::string const& subject);
  // The newest message on `subject`, or an empty payload with seq 0 if none.
  std::optional<stored_message> last_message(std::string const& subject);
  // Messages on `filter` with from_seq <= seq <= to_seq, in order. nullopt on error.
  std::optional<std::vector<stored_message>> read(std::string const& filter, std::uint64_t from_seq,
                                                  std::uint64_t to_seq);
  // Streams the messages on `filter` from `start`, in order, to `on_message`
  // (return false to stop), through one short-lived ordered consumer, so
  // memory stays flat however long the history. Without `follow` it ends
  // once the messages that existed at the start are delivered; with it, it
  // keeps delivering new ones until `stop` is set or the callback says stop.
  // On a replicated stream the consumer may sit on any replica (nats-server
  // 2.9 puts a one-replica consumer on a random peer of the stream), whose
  // "nothing pending" counts only what that replica holds so far: there a
  // scan without `follow` ends only once it reaches the head read from the
  // leader, never short of it: after 1 s without a message it reads on
  // through a new consumer (placed anew, most likely on a replica that is
  // current), and after 5 s without one it fails (the caller tries again).
  // `on_quiet`, when following, runs after every 10 s without a message
  // (a reader can keep its client's connection alive); false stops the scan.
  scan_end scan(std::string const& filter, scan_start start, bool follow, std::atomic<bool> const& stop,
                std::function<bool(stored_message&&)> const& on_message,
                std::function<bool()> const& on_quiet = {});
  // The stream's subjects matching `filter` with their message counts.
  std::optional<std::vector<subject_count>> subjects_matching(std::string const& filter);
  // The stream's last sequence, any subject (stream info: cheap).
  std::optional<std::uint64_t> stream_last_seq();

  // Where a JetStream cluster keeps the stream: its leader and each
  // replica's state. `cluster` empty: a single server.
  using replica = service::stream_replica;
  using placement = service::stream_placement;
  std::optional<placement> stream_placement();
  // Stores `payload` on `subject` as a rollup (the stream keeps only the
  // newest message there), deduplicated by `msg_id`.
  bool put_rollup(std::string const& subject, std::string const& payload, std::string const& msg_id);
  // Deletes the whole stream. True if it is gone (deleted now, or absent).
  bool delete_stream();

 private:
  using subscription = std::unique_ptr<__natsSubscription, void (*)(__natsSubscription*)>;
  // One short-lived ordered consumer on `filter` from `from` (`only_new`:
  // what comes next); nats-server 2.9 places each on a replica of its
  // choosing. Null (logged) on error.
  subscription open_consumer(std::string const& filter, scan_start from, bool only_new);

  connection& conn_;
  std::string stream_;
  std::atomic<bool> direct_{false};
  std::atomic<bool> replicated_{false};
};

}  // namespace sig::nats
