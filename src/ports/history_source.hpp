#pragma once
// The port the history readers (room_history, the admin API, the CLI's
// history tools) read the stream through: a room's events scanned from a
// point, the stream's subjects and placement, the instances' heartbeats.
// Blocking calls: a worker thread, never an I/O thread. nats::event_log
// implements it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/room_name.hpp"
#include "ports/event_store.hpp"

namespace sig::service {

// Where a scan starts: a stream sequence, or (time_ms > 0) the first message
// stored at or after a time.
struct scan_start {
  std::uint64_t seq = 1;
  std::int64_t time_ms = 0;
};

enum class scan_end {
  caught_up,  // every message that existed when the scan began was delivered
  stopped,    // the callback returned false, or `stop` was set
  failed,     // the store's error, or silence where messages were due (logged)
};

// One subject of the stream and how many messages it holds.
struct subject_count {
  std::string subject;
  std::uint64_t messages = 0;
};

// One instance's heartbeat.
struct heartbeat_entry {
  std::string instance;
  std::string value;            // what the instance wrote (JSON)
  std::uint64_t revision = 0;   // grows with every write
  bool removed = false;         // the instance deleted it: it stopped cleanly
  std::int64_t written_ms = 0;  // when the store wrote it (Unix ms)
};

// Where a cluster keeps the stream: its leader and each replica's state.
// `cluster` empty: a single server.
struct stream_replica {
  std::string name;
  bool current = false;
  bool offline = false;
  std::uint64_t lag = 0;  // operations behind the leader
};
struct stream_placement {
  std::string cluster;
  std::string leader;
  int replicas = 1;  // configured
  std::vector<stream_replica> followers;
};

class history_source : public event_reads {
 public:
  virtual domain::room_subjects subjects(std::string const& room_token) const = 0;
  virtual std::string const& stream_name() const = 0;
  // Streams the messages on `filter` from `start`, in order, to `on_message`
  // (return false to stop). Without `follow` it ends once the messages that
  // existed at the start are delivered; with it, it keeps delivering new
  // ones until `stop` is set or a callback says stop. `on_quiet`, when
  // following, runs after every 10 s without a message; false stops.
  virtual scan_end scan(std::string const& filter, scan_start start, bool follow, std::atomic<bool> const& stop,
                        std::function<bool(stored_message&&)> const& on_message,
                        std::function<bool()> const& on_quiet = {}) = 0;
  // The stream's last sequence, any subject (cheap: no lookup by subject).
  virtual std::optional<std::uint64_t> stream_last_seq() = 0;
  // The stream's subjects matching `filter` with their message counts.
  virtual std::optional<std::vector<subject_count>> subjects_matching(std::string const& filter) = 0;
  // Every instance heartbeat present now.
  virtual std::optional<std::vector<heartbeat_entry>> heartbeats() = 0;
  virtual std::optional<stream_placement> placement() = 0;
};

}  // namespace sig::service
