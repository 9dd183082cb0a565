#include "adapters/nats/key_value.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <string_view>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "adapters/nats/connection.hpp"
#include "adapters/nats/nats_errors.hpp"
#include "adapters/nats/stream_reader.hpp"

namespace sig::nats {

namespace {

constexpr std::int64_t nanos_per_second = 1'000'000'000;

// Every caller copes with a failed call and says what it means (a missed
// heartbeat, a listing to retry): NATS being away or slow, or our own
// close, is worth no more than a debug line here. An absent key is an
// answer, not a failure.
void fail(connection& conn, std::error_code ec, std::string_view what) {
  if (ec == nats_error(NATS_NOT_FOUND)) return;
  conn.log().log(conn.closing() || nats_outage(ec) ? spdlog::level::debug : spdlog::level::warn, "{}: {}", what,
                 with_nats_trace(ec));
}

kv_entry entry_of(kvEntry* e) {
  kv_entry out;
  out.key = kvEntry_Key(e);
  out.revision = kvEntry_Revision(e);
  out.removed = kvEntry_Operation(e) != kvOp_Put;
  out.written_ms = kvEntry_Created(e) / 1'000'000;
  if (!out.removed && kvEntry_Value(e) != nullptr)
    out.value.assign(static_cast<char const*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  return out;
}

}  // namespace

kv_watch::~kv_watch() {
  if (watcher_ != nullptr) kvWatcher_Destroy(watcher_);
}

std::optional<kv_entry> kv_watch::next(std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    kvEntry* e = nullptr;
    if (kvWatcher_Next(&e, watcher_, left.count()) != NATS_OK) return std::nullopt;
    if (e == nullptr) continue;  // the marker after the initial values
    kv_entry out = entry_of(e);
    kvEntry_Destroy(e);
    return out;
  }
}

std::unique_ptr<kv_bucket> kv_bucket::open(connection& conn, std::string const& name, char const* description,
                                           std::chrono::seconds ttl, int replicas) {
  if (conn.jetstream() == nullptr) return nullptr;
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, conn.jetstream(), name.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = name.c_str();
    cfg.Description = description;
    cfg.History = 1;
    cfg.TTL = static_cast<int64_t>(ttl.count()) * nanos_per_second;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = std::max(replicas, 1);
    s = js_CreateKeyValue(&kv, conn.jetstream(), &cfg);
    if (s == NATS_OK) conn.log().info("created bucket {} ({}, {} replica{})", name, description, cfg.Replicas,
                                      cfg.Replicas == 1 ? "" : "s");
  }
  if (s != NATS_OK) {
    fail(conn, nats_error(s), "cannot open bucket " + name);
    return nullptr;
  }
  bool replicated = false;
  kvStatus* status = nullptr;
  if (kvStore_Status(&status, kv) == NATS_OK) {
    replicated = kvStatus_Replicas(status) > 1;
    kvStatus_Destroy(status);
  }
  return std::unique_ptr<kv_bucket>(new kv_bucket(conn, kv, name, replicated));
}

std::optional<std::uint64_t> kv_bucket::newest_revision(std::string const& filter) {
  auto newest = newest_message(conn_, "KV_" + name_, "$KV." + name_ + "." + filter, false);
  if (!newest) return std::nullopt;
  return newest->seq;
}

kv_bucket::~kv_bucket() { kvStore_Destroy(kv_); }

bool kv_bucket::put(std::string const& key, std::string const& value, std::chrono::milliseconds max_wait) {
  // What kvStore_Put does (a JetStream publish to $KV.<bucket>.<key>),
  // with a deadline of its own.
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = std::max<std::int64_t>(max_wait.count(), 1);
  std::string subject = "$KV." + name_ + "." + key;
  jsPubAck* ack = nullptr;
  natsStatus s = js_Publish(&ack, conn_.jetstream(), subject.c_str(), value.data(), static_cast<int>(value.size()),
                            &options, nullptr);
  if (ack != nullptr) jsPubAck_Destroy(ack);
  if (s != NATS_OK)
    fail(conn_, nats_error(s), name_ + ": " + key + " not written within " + std::to_string(max_wait.count()) + " ms");
  return s == NATS_OK;
}

bool kv_bucket::create(std::string const& key, std::string const& value) {
  std::uint64_t revision = 0;
  return kvStore_Create(&revision, kv_, key.c_str(), value.data(), static_cast<int>(value.size())) == NATS_OK;
}

std::optional<std::string> kv_bucket::get(std::string const& key) {
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, kv_, key.c_str());
  if (s != NATS_OK) {
    fail(conn_, nats_error(s), "cannot read " + key + " from bucket " + name_);
    return std::nullopt;
  }
  std::optional<std::string> out;
  if (kvEntry_Operation(entry) == kvOp_Put && kvEntry_Value(entry) != nullptr)
    out = std::string(static_cast<char const*>(kvEntry_Value(entry)), static_cast<std::size_t>(kvEntry_ValueLen(entry)));
  kvEntry_Destroy(entry);
  return out;
}

bool kv_bucket::remove(std::string const& key) { return kvStore_Delete(kv_, key.c_str()) == NATS_OK; }

std::optional<std::vector<kv_entry>> kv_bucket::entries(std::string const& filter) {
  if (conn_.jetstream() == nullptr) return std::nullopt;
  // On a replicated bucket the watcher's consumer may sit on any replica
  // (nats-server 2.9 puts a one-replica consumer on a random peer), and its
  // "that was all" marker counts only what that replica holds so far: a
  // listing ends only once it has seen the leader's newest revision.
  std::uint64_t newest = 0;
  if (replicated_) {
    auto read = newest_revision(filter);
    if (!read) return std::nullopt;
    newest = *read;
  }
  kvWatchOptions o;
  kvWatchOptions_Init(&o);
  kvWatcher* w = nullptr;
  natsStatus s = kvStore_Watch(&w, kv_, filter.c_str(), &o);
  if (s != NATS_OK) {
    fail(conn_, nats_error(s), "cannot list bucket " + name_ + " (" + filter + ")");
    return std::nullopt;
  }
  std::unique_ptr<kvWatcher, void (*)(kvWatcher*)> guard(w, kvWatcher_Destroy);
  // Deletes are delivered too (they may come after the marker, as updates).
  std::map<std::string, kv_entry> current;
  std::uint64_t seen = 0;
  bool marker = false;
  // The watcher delivers the current values, then a null entry.
  while (!marker || seen < newest) {
    kvEntry* e = nullptr;
    s = kvWatcher_Next(&e, w, 5000);
    if (s != NATS_OK) {
      fail(conn_, nats_error(s), "listing bucket " + name_ + " (" + filter + ") stopped");
      return std::nullopt;
    }
    if (e == nullptr) {
      marker = true;
      continue;
    }
    kv_entry entry = entry_of(e);
    kvEntry_Destroy(e);
    seen = std::max(seen, entry.revision);
    if (entry.removed) current.erase(entry.key);
    else current[entry.key] = std::move(entry);
  }
  std::vector<kv_entry> out;
  out.reserve(current.size());
  for (auto& [key, entry] : current) out.push_back(std::move(entry));
  return out;
}

std::unique_ptr<service::kv_watch> kv_bucket::watch_all() {
  kvWatcher* w = nullptr;
  natsStatus s = kvStore_WatchAll(&w, kv_, nullptr);
  if (s != NATS_OK) {
    fail(conn_, nats_error(s), "cannot watch bucket " + name_);
    return nullptr;
  }
  return std::unique_ptr<service::kv_watch>(new kv_watch(w));
}

}  // namespace sig::nats
