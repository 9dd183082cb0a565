#pragma once
// JetStream key-value buckets beside the stream: instance heartbeats, the
// rooms each instance follows (so that survivors can expire a dead one's
// peers), and settings every instance shares. Blocking calls: liveness
// thread, worker threads and tools only.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ports/cluster_store.hpp"

struct __kvStore;
struct __kvWatcher;

namespace sig::nats {

class connection;

using service::kv_entry;

class kv_bucket;

// Follows a bucket's changes: the current values first, then every change.
class kv_watch final : public service::kv_watch {
 public:
  ~kv_watch() override;
  kv_watch(kv_watch const&) = delete;
  kv_watch& operator=(kv_watch const&) = delete;
  // The next entry, or nullopt when nothing came within `wait` (or on a
  // connection problem, which the caller sees elsewhere).
  std::optional<kv_entry> next(std::chrono::milliseconds wait) override;

 private:
  friend class kv_bucket;
  explicit kv_watch(__kvWatcher* w) : watcher_(w) {}
  __kvWatcher* watcher_;
};

class kv_bucket final : public service::kv_store {
 public:
  // Opens `name`, creating it if absent (file storage, one value per key;
  // ttl 0: values never expire, else each expires `ttl` after its write).
  // Null (logged) on error.
  // `replicas`: copies kept by a JetStream cluster when the bucket is made.
  static std::unique_ptr<kv_bucket> open(connection& conn, std::string const& name, char const* description,
                                         std::chrono::seconds ttl, int replicas = 1);
  ~kv_bucket() override;
  kv_bucket(kv_bucket const&) = delete;
  kv_bucket& operator=(kv_bucket const&) = delete;

  std::string const& name() const { return name_; }
  // Waits at most `max_wait` for NATS's answer (kvStore_Put would wait the
  // JetStream context's 5 s): a heartbeat stuck behind a node that went
  // away must not outlast the other instances' patience.
  bool put(std::string const& key, std::string const& value, std::chrono::milliseconds max_wait) override;
  // Only if absent: of writers racing, one wins.
  bool create(std::string const& key, std::string const& value);
  std::optional<std::string> get(std::string const& key);
  bool remove(std::string const& key) override;
  // The current entries whose keys match `filter` (NATS wildcards; ">" for
  // all), deleted ones left out. nullopt on error.
  std::optional<std::vector<kv_entry>> entries(std::string const& filter) override;
  std::unique_ptr<service::kv_watch> watch_all() override;

 private:
  kv_bucket(connection& conn, __kvStore* kv, std::string name, bool replicated)
      : conn_(conn), kv_(kv), name_(std::move(name)), replicated_(replicated) {}
  // The sequence of the newest message on the keys matching `filter`, as
  // the bucket's leader has it (0: none).
  std::optional<std::uint64_t> newest_revision(std::string const& filter);
  connection& conn_;
  __kvStore* kv_;
  std::string name_;
  bool replicated_;  // kept on more than one replica (known when opened)
};

}  // namespace sig::nats
