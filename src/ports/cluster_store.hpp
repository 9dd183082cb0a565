#pragma once
// The port the liveness monitor works through: the key-value buckets of
// instance heartbeats and of the rooms each instance follows, appends (the
// leaves it records for a dead instance's peers), and the reads of a room
// that expiry needs. Blocking calls: the liveness threads only.
// nats::event_log implements it over JetStream key-value buckets.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ports/history_source.hpp"

namespace sig::service {

struct kv_entry {
  std::string key;
  std::string value;
  std::uint64_t revision = 0;  // grows with every write to the bucket
  bool removed = false;        // deleted or purged
  std::int64_t written_ms = 0; // when the store wrote this revision (Unix ms)
};

// Follows a bucket's changes: the current values first, then every change.
class kv_watch {
 public:
  virtual ~kv_watch() = default;
  // The next entry, or nullopt when nothing came within `wait` (or on a
  // connection problem, which the caller sees elsewhere).
  virtual std::optional<kv_entry> next(std::chrono::milliseconds wait) = 0;
};

class kv_store {
 public:
  virtual ~kv_store() = default;
  // Waits at most `max_wait` for the store's answer.
  virtual bool put(std::string const& key, std::string const& value, std::chrono::milliseconds max_wait) = 0;
  virtual bool remove(std::string const& key) = 0;
  // The current entries whose keys match `filter` (NATS wildcards; ">" for
  // all), deleted ones left out. nullopt on error.
  virtual std::optional<std::vector<kv_entry>> entries(std::string const& filter) = 0;
  virtual std::unique_ptr<kv_watch> watch_all() = 0;
};

class cluster_store : public history_source {
 public:
  // Connected, and the stream usable.
  virtual bool ready() const = 0;
  // Open a bucket, creating it if absent; each value expires `ttl` after
  // its write. Null (logged) on error.
  virtual std::unique_ptr<kv_store> open_heartbeats(std::chrono::seconds ttl) = 0;
  virtual std::unique_ptr<kv_store> open_holdings(std::chrono::seconds ttl) = 0;
  // Non-blocking: `done` runs later on the store's thread. `msg_id` makes
  // a retry within the duplicate window a no-op.
  virtual void append(std::string const& subject, std::string payload, std::string msg_id,
                      std::function<void(append_result)> done) = 0;
};

}  // namespace sig::service
