#pragma once
// The room event log in NATS JetStream, over one connection, for the tools
// (`sigstream history|state|rooms|cluster`, the benchmarks) and the admin
// API. One stream holds every room's events, each room on its own subject
// (domain::subjects_for). Instances use the same parts split by traffic:
// data_connection (appends, live feeds) and this class (reads).
//
// nats.h stays out of this header: callers see only these types.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/codec/event_codec.hpp"
#include "adapters/nats/connection.hpp"
#include "adapters/nats/stream_reader.hpp"
#include "adapters/nats/stream_setup.hpp"
#include "domain/room_name.hpp"
#include "ports/cluster_store.hpp"

namespace spdlog { class logger; }

namespace sig::nats {

struct log_settings {
  std::string url = "nats://127.0.0.1:4222";
  nats_security security;
  std::string stream = "SIGSTREAM";
  std::string subject_prefix = "sigstream";
  std::chrono::seconds max_age{24 * 3600};   // 0: keep forever
  std::int64_t max_bytes = 1024LL * 1024 * 1024;  // -1: no limit
  std::chrono::seconds duplicate_window{120};
  int replicas = 1;  // of the stream and the buckets, when this instance creates them
  std::string client_name;  // shows in the NATS server's connection list
  bool create_stream = true;    // false (tools): a missing stream is an error
  bool advise = true;           // log what is found about the stream (stream_shape::advise)
  bool send_asap = true;        // false: nats.c batches writes for up to 1 ms
  int connect_attempts = 0;     // 0: keep trying until stopped
  // Appends waiting for their acknowledgement (a benchmark's fill keeps
  // thousands in flight).
  std::size_t max_appends_in_flight = 4096;
};

using service::append_result;
using service::stored_message;

using service::heartbeat_entry;  // one instance's, in the heartbeat bucket

class event_log final : public service::cluster_store {
 public:
  event_log(log_settings settings, std::shared_ptr<spdlog::logger> log);
  ~event_log() override;
  event_log(event_log const&) = delete;
  event_log& operator=(event_log const&) = delete;

  // Blocking. Connects (retrying with backoff until `stop` is set) and makes
  // the stream usable: creates it if absent, checks an existing one without
  // changing it. Returns false if the stream exists in a shape sigstream
  // cannot use, or if stopped.
  bool start(std::atomic<bool> const& stop);
  // Connected, and the stream is usable.
  bool ready() const override;
  // The stream takes Nats-Rollup (room snapshots can be written).
  bool rollups_allowed() const { return rollup_allowed_; }
  // Newest messages are read with direct gets: the stream allows them and
  // has one replica (stream_reader::use_stream_shape; known once start()
  // returned true).
  bool direct_reads() const { return reader_.direct_get(); }
  // Replicas of the stream, as last used (use_features).
  int stream_replicas() const { return stream_replicas_; }
  // The server runs JetStream as a cluster (as last read).
  bool jetstream_clustered() const { return clustered_; }
  // What the stream allows now (read_stream_features), over this
  // connection. Blocking; nullopt while disconnected or on error.
  std::optional<stream_features> read_features();
  // Reads and writes follow `features` from now on: found at start(), and
  // again whenever the caller reads them (an operator may raise a running
  // stream's replicas, whose reads must then go to the leader). True if
  // anything changed.
  bool use_features(stream_features const& features);
  // Closes the connection and fails every pending append. Idempotent.
  void close();

  domain::room_subjects subjects(std::string const& room_token) const override;
  std::string const& stream_name() const override { return settings_.stream; }
  int replicas() const { return settings_.replicas; }
  connection& conn() { return conn_; }
  // The stream holds RoomEvent and RoomSnapshot messages (Protobuf).
  service::stored_format const& format() const override { return format_; }

  // Non-blocking: `done` runs later on a NATS thread (hand it off, do not
  // work there). `msg_id` is JetStream's dedup key: a retry with the same id
  // inside the duplicate window is stored once.
  void append(std::string const& subject, std::string payload, std::string msg_id,
              std::function<void(append_result)> done) override;
  std::unique_ptr<service::kv_store> open_heartbeats(std::chrono::seconds ttl) override;
  std::unique_ptr<service::kv_store> open_holdings(std::chrono::seconds ttl) override;

  // --- Blocking calls: run them on a worker, never on an io_context thread.
  // Stores a room snapshot on `subject` as a rollup (the stream keeps only
  // the newest message there). Instances that write the same snapshot use
  // the same `msg_id`, so it is stored once. False if not stored.
  bool put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id);
  bool flush() { return reader_.flush(); }
  std::optional<std::uint64_t> last_seq(std::string const& subject) override { return reader_.last_seq(subject); }
  std::optional<std::vector<stored_message>> read(std::string const& filter, std::uint64_t from_seq,
                                                  std::uint64_t to_seq) override {
    return reader_.read(filter, from_seq, to_seq);
  }
  scan_end scan(std::string const& filter, scan_start start, bool follow, std::atomic<bool> const& stop,
                std::function<bool(stored_message&&)> const& on_message,
                std::function<bool()> const& on_quiet = {}) override {
    return reader_.scan(filter, start, follow, stop, on_message, on_quiet);
  }
  std::optional<std::vector<subject_count>> subjects_matching(std::string const& filter) override {
    return reader_.subjects_matching(filter);
  }
  std::optional<std::uint64_t> stream_last_seq() override { return reader_.stream_last_seq(); }
  std::optional<service::stream_placement> placement() override { return reader_.stream_placement(); }
  std::optional<stored_message> last_message(std::string const& subject) override {
    return reader_.last_message(subject);
  }
  // Deletes the whole stream (every room's events). For tools that own a
  // stream of their own; never called by an instance.
  bool delete_stream();

  // Every instance heartbeat present now (bucket <stream>_INSTANCES).
  std::optional<std::vector<heartbeat_entry>> heartbeats() override;
  // A value every instance of the stream shares, in the bucket
  // <stream>_CLUSTER (created if absent): the stored value of `key`, or
  // `candidate` stored now if there was none. nullopt on error.
  std::optional<std::string> shared_secret(std::string const& key, std::string const& candidate);

 private:
  codec::protobuf_format format_;
  void expire_acks();

  log_settings settings_;
  connection conn_;
  stream_reader reader_;
  std::unique_ptr<class appender> appender_;
  std::atomic<bool> stream_ok_{false};
  std::atomic<bool> rollup_allowed_{true};
  std::atomic<int> stream_replicas_{0};
  std::atomic<bool> clustered_{true};  // until read: the careful assumption
  // The acknowledgement deadlines of appends, checked by a thread of ours.
  std::thread ack_timer_;
  std::atomic<bool> ack_timer_stop_{false};
};

// The names of the buckets beside a stream.
std::string heartbeat_bucket(std::string const& stream);
std::string holdings_bucket(std::string const& stream);
std::string cluster_bucket(std::string const& stream);

}  // namespace sig::nats
