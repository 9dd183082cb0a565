#include "service/cluster/liveness_monitor.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "ports/presence_store.hpp"
#include "domain/liveness.hpp"
#include "domain/room_name.hpp"
#include "protocol/messages.hpp"
#include "service/room/held_peers.hpp"
#include "service/metrics.hpp"
#include "service/room/room_loader.hpp"

namespace sig::service {

namespace {

using clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Holdings keys outlive their instance by a day at most (rooms still
// followed are rewritten long before).
constexpr std::chrono::seconds holdings_ttl{24 * 3600};

}  // namespace

struct liveness_monitor::state {
  explicit state(clock::duration timeout) : instances(timeout) {}
  domain::liveness instances;
  clock::time_point healthy_since;  // our own heartbeats have gone through since
  std::int64_t started_ms = now_ms();
  std::unique_ptr<kv_store> heartbeats;
  std::unique_ptr<kv_store> holdings;
  bool full_scan_done = false;

  // Expiries run on a thread of their own, so that reading a dead
  // instance's rooms never delays this instance's own heartbeat.
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::string> to_expire;        // instance ids, or "" for a scan of every record
  std::set<std::string> queued;
  std::map<std::string, clock::time_point> retry_at;  // failed expiries, tried again then
  std::map<std::string, int> failures;
  // Who was alive when the scan of every record was queued, judged by the
  // watching thread: `instances` is that thread's alone, and may have been
  // reset (NATS went away) by the time the scan runs.
  std::set<std::string> alive_at_scan;
  std::thread expirer;
};

liveness_monitor::liveness_monitor(liveness_settings settings, cluster_store& control, held_peers const& held,
                                   presence_store* cache, metrics& counters,
                                   std::shared_ptr<spdlog::logger> logger)
    : settings_(std::move(settings)),
      control_(control),
      held_(held),
      cache_(cache),
      counters_(counters),
      logger_(std::move(logger)),
      state_(std::make_unique<state>(settings_.instance_timeout)) {}

liveness_monitor::~liveness_monitor() { stop(false); }

void liveness_monitor::start() {
  thread_ = std::thread([this] { run(); });
}

void liveness_monitor::stop(bool goodbye) {
  if (!thread_.joinable()) return;
  goodbye_ = goodbye;
  stopping_ = true;
  state_->wake.notify_all();
  thread_.join();
}

void liveness_monitor::run() {
  auto& s = *state_;
  while (!stopping_ && !control_.ready()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // Entries of instances gone for good are collected after a while; judging
  // liveness never waits for that (see domain::liveness).
  auto ttl = std::max(std::chrono::seconds(60),
                      std::chrono::duration_cast<std::chrono::seconds>(settings_.instance_timeout * 6));
  while (!stopping_ && !(s.heartbeats = control_.open_heartbeats(ttl))) std::this_thread::sleep_for(std::chrono::seconds(1));
  while (!stopping_ && !(s.holdings = control_.open_holdings(holdings_ttl)))
    std::this_thread::sleep_for(std::chrono::seconds(1));
  if (stopping_) return;

  // Members an earlier run under this id left behind: everything recorded
  // under the id before this run's first event.
  for (int attempt = 0; !stopping_; ++attempt) {
    auto head = control_.stream_last_seq();
    if (head && expire_instance(settings_.instance_id, *head + 1)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5000, 200 << std::min(attempt, 5))));
  }
  settled_ = true;
  logger_->info("heartbeat every {} ms; instances silent for {} ms are taken for dead and their peers expired",
                settings_.heartbeat_interval.count(), settings_.instance_timeout.count());

  s.expirer = std::thread([this] {
    auto& st = *state_;
    std::unique_lock lock(st.mutex);
    while (!stopping_) {
      st.wake.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_ || !st.to_expire.empty(); });
      if (stopping_) break;
      if (st.to_expire.empty()) continue;
      std::string instance = std::move(st.to_expire.front());
      st.to_expire.pop_front();
      st.queued.erase(instance);
      lock.unlock();
      bool ok = true;
      if (instance.empty()) scan_all_holdings();
      else ok = expire_instance(instance, 0);
      lock.lock();
      if (!instance.empty()) {
        if (ok) {
          st.failures.erase(instance);
          st.retry_at.erase(instance);
        } else {
          int n = ++st.failures[instance];
          st.retry_at[instance] = clock::now() + std::chrono::milliseconds(std::min(30'000, 500 << std::min(n, 6)));
        }
      }
    }
  });
  auto enqueue = [&](std::string instance) {
    std::lock_guard lock(s.mutex);
    if (!s.queued.insert(instance).second) return;
    s.to_expire.push_back(std::move(instance));
    s.wake.notify_all();
  };

  auto watch = s.heartbeats->watch_all();
  // A watch being made (when the first attempt failed), off this thread:
  // making one is a JetStream API request, which waits up to its timeout
  // (5 s) while a cluster elects a leader, and heartbeats must not stop
  // meanwhile, or the others take this instance for dead.
  std::future<std::unique_ptr<kv_watch>> watch_coming;
  auto make_watch = [&] { watch_coming = std::async(std::launch::async, [&s] { return s.heartbeats->watch_all(); }); };
  // Watches replaced while stale. Not ended here (see below): nats.c may
  // still bring one back, so what they receive is read and dropped each
  // turn, and they end with this thread. A few at most: past that, the
  // stale watch is left to nats.c.
  std::vector<std::unique_ptr<kv_watch>> replaced;
  constexpr std::size_t max_replaced = 4;
  auto next_beat = clock::now();
  bool beating = false;
  bool write_failed = false;  // a write failed after one had gone through
  // When the watch last showed this instance's own heartbeat, and whether
  // it has stopped showing it.
  auto own_seen = clock::now();
  bool watch_stale = false;
  s.healthy_since = clock::now();
  while (!stopping_) {
    auto now = clock::now();
    auto turn_start = now;
    if (now >= next_beat) {
      next_beat = now + settings_.heartbeat_interval;
      std::string value = fmt::format(
          R"({{"instance":{},"version":{},"started":{},"connections":{},"peers":{},"rooms":{}}})",
          protocol::json_quote(settings_.instance_id), protocol::json_quote(settings_.version), s.started_ms,
          counters_.connections.load(), counters_.joined_peers.load(), counters_.active_rooms.load());
      // Waits at most an interval: the next write then goes out on time.
      bool ok = s.heartbeats->put(settings_.instance_id, value, settings_.heartbeat_interval);
      if (!ok && beating) {
        // Cut off from NATS, we cannot tell who else is alive: everyone's
        // heartbeat stands still from here. Start judging afresh once ours
        // goes through again, instead of expiring the whole cluster.
        logger_->warn("cannot write this instance's heartbeat; not judging other instances until it can");
        s.instances = domain::liveness(settings_.instance_timeout);
      }
      if (ok && !beating) {
        s.healthy_since = clock::now();
        if (write_failed)
          logger_->info("this instance's heartbeat is written again; judging other instances after a full timeout "
                        "of watching");
      }
      write_failed = !ok && (beating || write_failed);
      beating = ok;
    }
    auto wait = std::min<clock::duration>(next_beat - clock::now(), std::chrono::milliseconds(200));
    auto wait_ms = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(wait), std::chrono::milliseconds(1));
    if (!watch && !watch_coming.valid()) make_watch();
    // A watch made (the first, or one replacing a stale one): judged afresh,
    // from a full timeout of watching with it.
    if (watch_coming.valid() &&
        watch_coming.wait_for(watch ? std::chrono::milliseconds(0) : wait_ms) == std::future_status::ready) {
      if (auto fresh = watch_coming.get()) {
        if (watch) {
          logger_->info("replaced the heartbeat watch that stood still; judging other instances after a full "
                        "timeout of watching");
          replaced.push_back(std::move(watch));
        }
        watch = std::move(fresh);
        s.instances = domain::liveness(settings_.instance_timeout);
        s.healthy_since = own_seen = clock::now();
      }
    }
    if (!watch) continue;
    for (auto& old : replaced)
      for (int dropped = 0; dropped < 10'000 && old->next(std::chrono::milliseconds(1)); ++dropped) {
      }
    // Everything the watcher holds is taken in before anyone is judged.
    for (int taken = 0; watch && taken < 10'000; ++taken) {
      auto entry = watch->next(taken == 0 ? wait_ms : std::chrono::milliseconds(1));
      if (!entry) break;
      if (entry->removed) {
        if (s.instances.alive(entry->key, clock::now()))
          logger_->info("instance {} stopped cleanly (heartbeat removed)", entry->key);
        s.instances.goodbye(entry->key);
      } else {
        s.instances.heartbeat(entry->key, entry->revision, clock::now());
        if (entry->key == settings_.instance_id) own_seen = clock::now();
      }
    }
    now = clock::now();
    // Our own heartbeat comes back through the watch once an interval. When
    // it stops coming while we write it, the watch is what stands still (in
    // a NATS cluster, the node serving the watch's consumer went away, or
    // the connection is moving to another node), and every other heartbeat
    // looks stale by our clock: judging now would take the whole cluster for
    // dead. Judge nobody until the watch shows ours again (nats.c remakes an
    // ordered consumer that went quiet by itself, or a new watch replaces
    // it), then from a full timeout of watching. A stale watch is not ended
    // here: ending one deletes its consumer, a JetStream request that waits
    // up to 5 s (heartbeats would stop), and nats.c 3.4 read freed memory
    // doing it during a reconnect (ASan, nats_outage.test.mjs).
    // 1.5 intervals: noticed before anyone else's last heartbeat, at most an
    // interval older than ours, reaches the timeout (at least 2 intervals).
    if (beating && now - own_seen > settings_.heartbeat_interval * 3 / 2) {
      if (!watch_stale)
        logger_->warn("this instance's own heartbeat has not come back through the heartbeat watch for {} ms (a NATS "
                      "node went away?); not judging other instances until it does",
                      std::chrono::duration_cast<std::chrono::milliseconds>(now - own_seen).count());
      watch_stale = true;
      s.instances = domain::liveness(settings_.instance_timeout);
      s.healthy_since = now;
      // nats.c remakes a quiet ordered consumer only when its missed-
      // heartbeat timer fires (every 10 s), and only if the JetStream API
      // answers then: after a NATS node died, 20 s or more. A watch quiet
      // for a whole timeout is replaced by a new one, made off this thread
      // (it is a JetStream request) and tried again until one is made.
      if (now - own_seen > settings_.instance_timeout && !watch_coming.valid() && replaced.size() < max_replaced)
        make_watch();
      continue;
    }
    if (watch_stale) {
      watch_stale = false;
      logger_->info("the heartbeat watch shows this instance's heartbeat again; judging other instances after a "
                    "full timeout of watching");
    }
    // A turn takes at most about one heartbeat interval. A longer one means
    // this process was paused (or NATS answered very slowly): we were not
    // watching, and everyone else's heartbeat looks stale by our clock.
    // Judge afresh, from a full timeout of watching.
    if (now - turn_start > 2 * settings_.heartbeat_interval) {
      logger_->info("not watching heartbeats for {} ms (paused or busy); judging other instances afresh",
                    std::chrono::duration_cast<std::chrono::milliseconds>(now - turn_start).count());
      s.instances = domain::liveness(settings_.instance_timeout);
      s.healthy_since = now;
      continue;
    }
    counters_.instances_alive = static_cast<std::int64_t>(s.instances.alive_count(now));
    // Judging needs a full timeout of our own heartbeats going through, so
    // that every live instance has been seen beating.
    if (!beating || now - s.healthy_since < settings_.instance_timeout) continue;
    for (auto const& dead : s.instances.newly_dead(now)) {
      if (dead == settings_.instance_id) continue;
      logger_->warn("instance {} has not sent a heartbeat for {} ms: taking it for dead", dead,
                    settings_.instance_timeout.count());
      enqueue(dead);
    }
    if (!s.full_scan_done) {
      // Instances that died before this one came up, whose heartbeats may
      // be long gone: their records of rooms are all that is left.
      s.full_scan_done = true;
      {
        std::lock_guard lock(s.mutex);
        auto alive = s.instances.alive_instances(now);
        s.alive_at_scan = std::set<std::string>(alive.begin(), alive.end());
      }
      enqueue("");
    }
    std::vector<std::string> due;
    {
      std::lock_guard lock(s.mutex);
      for (auto const& [instance, at] : s.retry_at)
        if (at <= now) due.push_back(instance);
    }
    for (auto& instance : due) {
      {
        std::lock_guard lock(s.mutex);
        s.retry_at.erase(instance);
      }
      if (!s.instances.alive(instance, now)) enqueue(instance);
    }
  }
  state_->wake.notify_all();
  if (s.expirer.joinable()) s.expirer.join();
  if (!goodbye_) return;
  s.heartbeats->remove(settings_.instance_id);
  // Every room's peers left during the drain: the records have served.
  if (auto mine = s.holdings->entries(domain::holdings_key_prefix(settings_.instance_id) + "*"))
    for (auto const& e : *mine) s.holdings->remove(e.key);
}

// Every instance with records of rooms but no live heartbeat, found once
// this instance has watched heartbeats for a full timeout.
void liveness_monitor::scan_all_holdings() {
  auto& s = *state_;
  auto entries = s.holdings->entries(">");
  if (!entries) return;
  std::set<std::string> recorded;
  for (auto const& e : *entries) {
    auto dot = e.key.find('.');
    if (dot == std::string::npos) continue;
    if (auto instance = domain::base64url_decode(std::string_view(e.key).substr(0, dot))) recorded.insert(*instance);
  }
  std::set<std::string> alive;
  {
    std::lock_guard lock(s.mutex);
    alive = s.alive_at_scan;
  }
  for (auto const& instance : recorded) {
    if (instance == settings_.instance_id || alive.count(instance) != 0) continue;
    logger_->warn("instance {} has records of rooms but no live heartbeat: taking it for dead", instance);
    if (!expire_instance(instance, 0)) {
      std::lock_guard lock(s.mutex);
      s.retry_at[instance] = clock::now() + std::chrono::seconds(1);
    }
  }
}

bool liveness_monitor::expire_instance(std::string const& instance, std::uint64_t before_seq) {
  auto& s = *state_;
  bool ours = instance == settings_.instance_id;
  std::string prefix = domain::holdings_key_prefix(instance);
  auto entries = s.holdings->entries(prefix + "*");
  if (!entries) return false;
  bool all_stored = true;
  std::size_t peers = 0, recorded = 0, duplicates = 0, failed = 0;
  for (auto const& entry : *entries) {
    std::string token = entry.key.substr(prefix.size());
    std::string name = entry.value;
    if (name.empty() || domain::room_token(name) != token) {
      auto decoded = domain::room_name_from_token(token);
      if (!decoded) continue;  // not a key of ours
      name = *decoded;
    }
    auto subjects = control_.subjects(token);
    auto loaded = load_room(control_, cache_, token, subjects);
    if (!loaded) {
      all_stored = false;
      continue;
    }
    domain::room_state st = fold_loaded(control_.format(), *loaded, name);
    std::vector<std::pair<std::uint64_t, std::future<append_result>>> appends;
    domain::expiry_scope scope{.instance = instance};
    if (ours) {
      scope.this_run_from = before_seq;
      scope.held_here = [this](std::string const& peer) { return held_.holds(peer); };
    }
    for (auto& leave : domain::decide_expiry(st, scope)) {
      ++peers;
      auto id = domain::expiry_message_id(token, leave.peer, leave.join_seq);
      auto join_seq = leave.join_seq;
      domain::event e{0, now_ms(), settings_.instance_id, std::move(leave)};
      auto done = std::make_shared<std::promise<append_result>>();
      appends.emplace_back(join_seq, done->get_future());
      control_.append(subjects.events, control_.format().encode_event(name, e), std::move(id),
                      [done](append_result r) { done->set_value(std::move(r)); });
    }
    bool room_stored = true;
    std::size_t room_recorded = 0;
    for (auto& [join_seq, result] : appends) {
      if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
        ++failed, room_stored = false;
        continue;
      }
      auto r = result.get();
      if (!r.ok) ++failed, room_stored = false;
      else if (r.duplicate) ++duplicates;  // another survivor recorded it first
      else ++recorded, ++room_recorded;
    }
    if (!room_stored) {
      all_stored = false;
      continue;
    }
    // The dead instance's record of the room has served: the room's
    // members are all accounted for. Our own id's records belong to this
    // run now (it may follow the same rooms), so they stay.
    if (!ours) s.holdings->remove(entry.key);
    // Rooms no instance follows would otherwise keep the dead members in
    // the cache until someone replays them away.
    if (cache_ != nullptr && !appends.empty()) {
      if (auto after = load_room(control_, nullptr, token, subjects)) {
        auto state = fold_loaded(control_.format(), *after, name);
        cache_->store(token, after->head, control_.format().encode_snapshot(state, after->head));
        ++counters_.cache_repairs;
      }
    }
  }
  counters_.expired_peers += recorded;
  if (peers > 0) {
    if (ours)
      logger_->warn("{} peer{} recorded under this instance's id by an earlier run: recording the leave (expired)",
                    peers, peers == 1 ? "" : "s");
    else
      logger_->warn("instance {} is not alive: recording the leave (expired) of its {} peer{}", instance, peers,
                    peers == 1 ? "" : "s");
    logger_->info("expired peers: {} recorded here, {} already recorded by another instance, {} failed{}", recorded,
                  duplicates, failed, failed > 0 ? " (tried again)" : "");
  }
  return all_stored;
}

}  // namespace sig::service
