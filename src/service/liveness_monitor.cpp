#include "service/liveness_monitor.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <set>
#include <vector>

#include "adapters/codec/event_codec.hpp"
#include "adapters/nats/event_log.hpp"
#include "adapters/redis/presence_cache.hpp"
#include "domain/liveness.hpp"
#include "domain/room_name.hpp"
#include "protocol/messages.hpp"
#include "service/metrics.hpp"
#include "service/held_peers.hpp"
#include "service/room_history.hpp"

namespace sig::service {

namespace {

using clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


}  // namespace

struct liveness_monitor::state {
  explicit state(clock::duration timeout) : instances(timeout) {}
  domain::liveness instances;
  std::set<std::string> unheld_last_sweep;  // own-id members no connection held, by expiry id
  clock::time_point healthy_since;  // our own heartbeats have gone through since
  std::int64_t started_ms = now_ms();
};

liveness_monitor::liveness_monitor(liveness_settings settings, nats::event_log& log, room_index& index,
                                   held_peers const& held, redis::presence_cache* cache, metrics& counters,
                                   std::shared_ptr<spdlog::logger> logger)
    : settings_(std::move(settings)),
      log_(log),
      index_(index),
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
  thread_.join();
}

void liveness_monitor::run() {
  auto& s = *state_;
  while (!stopping_ && !log_.ready()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Entries of instances gone for good are collected after a while; judging
  // liveness never waits for that (see domain::liveness).
  auto ttl = std::max(std::chrono::seconds(60),
                      std::chrono::duration_cast<std::chrono::seconds>(settings_.instance_timeout * 6));
  while (!stopping_ && !log_.open_heartbeats(ttl)) std::this_thread::sleep_for(std::chrono::seconds(1));
  if (stopping_) return;
  logger_->info("heartbeat every {} ms; instances silent for {} ms are taken for dead and their peers expired",
                settings_.heartbeat_interval.count(), settings_.instance_timeout.count());

  auto next_beat = clock::now();
  auto next_sweep = clock::now() + settings_.heartbeat_interval;
  bool beating = false;
  s.healthy_since = clock::now();
  while (!stopping_) {
    auto now = clock::now();
    auto turn_start = now;
    if (now >= next_beat) {
      next_beat = now + settings_.heartbeat_interval;
      std::string value = fmt::format(
          R"({{"instance":{},"version":{},"started":{},"peers":{},"rooms":{}}})", protocol::json_quote(settings_.instance_id),
          protocol::json_quote(settings_.version), s.started_ms, counters_.joined_peers.load(), counters_.active_rooms.load());
      bool ok = log_.put_heartbeat(settings_.instance_id, value);
      if (!ok && beating) {
        // Cut off from NATS, we cannot tell who else is alive: everyone's
        // heartbeat stands still from here. Start judging afresh once ours
        // goes through again, instead of expiring the whole cluster.
        logger_->warn("cannot write this instance's heartbeat; not judging other instances until it can");
        s.instances = domain::liveness(settings_.instance_timeout);
      }
      if (ok && !beating) s.healthy_since = clock::now();
      beating = ok;
    }
    auto wait = std::min<clock::duration>(next_beat - clock::now(), std::chrono::milliseconds(200));
    auto wait_ms = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(wait), std::chrono::milliseconds(1));
    // Everything the watcher holds is taken in before anyone is judged.
    for (int taken = 0; taken < 10'000; ++taken) {
      auto entry = log_.next_heartbeat(taken == 0 ? wait_ms : std::chrono::milliseconds(1));
      if (!entry) break;
      if (entry->removed) {
        if (s.instances.alive(entry->instance, clock::now()))
          logger_->info("instance {} stopped cleanly (heartbeat removed)", entry->instance);
        s.instances.goodbye(entry->instance);
      } else {
        s.instances.heartbeat(entry->instance, entry->revision, clock::now());
      }
    }
    now = clock::now();
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
    counters_.instances_alive = static_cast<std::int64_t>(s.instances.alive_instances(now).size());
    for (auto const& dead : s.instances.newly_dead(now))
      if (dead != settings_.instance_id)
        logger_->warn("instance {} has not sent a heartbeat for {} ms: taking it for dead", dead,
                      settings_.instance_timeout.count());
    // Sweeping needs a full timeout of our own heartbeats going through, so
    // that every live instance has been seen beating.
    if (beating && now >= next_sweep && now - s.healthy_since >= settings_.instance_timeout) {
      sweep();
      next_sweep = clock::now() + settings_.heartbeat_interval;
    }
  }
  if (goodbye_) log_.remove_heartbeat(settings_.instance_id);
}

void liveness_monitor::sweep() {
  auto& s = *state_;
  if (!index_.catch_up(log_, stopping_)) {
    if (index_.stream_went_back())
      logger_->error("the stream's sequences went back (it was deleted and made again, or restored from an older "
                     "backup): rooms followed here may miss events and no peer is expired. Restart every instance "
                     "(docs/operations.md, 'NATS comes back empty or from a backup')");
    return;
  }
  auto now = clock::now();
  auto orphans = index_.members_where([&](domain::member const& m) {
    return m.instance != settings_.instance_id && !s.instances.alive(m.instance, now);
  });
  // Under our own id, a member nothing here holds: only once two sweeps in a
  // row found it, since a join just stored is held a moment later.
  std::set<std::string> unheld;
  for (auto& o : index_.members_where([&](domain::member const& m) {
         return m.instance == settings_.instance_id && !held_.holds(m.peer);
       })) {
    auto id = domain::expiry_message_id(domain::room_token(o.room), o.member.peer, o.member.join_seq);
    if (s.unheld_last_sweep.count(id) != 0) orphans.push_back(std::move(o));
    unheld.insert(std::move(id));
  }
  s.unheld_last_sweep = std::move(unheld);
  if (orphans.empty()) return;

  std::map<std::string, std::size_t> per_instance;
  std::vector<std::pair<std::string, std::future<nats::append_result>>> appends;  // room, result
  for (auto const& o : orphans) {
    ++per_instance[o.member.instance];
    std::string token = domain::room_token(o.room);
    domain::event e{0, now_ms(), settings_.instance_id, domain::leave_of(o.member, domain::leave_reason::expired)};
    auto done = std::make_shared<std::promise<nats::append_result>>();
    appends.emplace_back(o.room, done->get_future());
    log_.append(log_.subjects(token).events, codec::encode_event(o.room, e),
                domain::expiry_message_id(token, o.member.peer, o.member.join_seq),
                [done](nats::append_result r) { done->set_value(std::move(r)); });
  }
  for (auto const& [instance, peers] : per_instance) {
    if (instance == settings_.instance_id)
      logger_->warn("{} peer{} recorded under this instance's id but held by no connection here (an earlier run, or "
                    "a leave lost while NATS was away): recording the leave (expired)", peers, peers == 1 ? "" : "s");
    else
      logger_->warn("instance {} is not alive: recording the leave (expired) of its {} peer{}", instance, peers,
                    peers == 1 ? "" : "s");
  }

  std::set<std::string> rooms;
  std::size_t recorded = 0, duplicates = 0, failed = 0;
  for (auto& [room, result] : appends) {
    if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ++failed;
      continue;
    }
    auto r = result.get();
    if (!r.ok) ++failed;
    else if (r.duplicate) ++duplicates;  // another survivor recorded it first
    else ++recorded;
    if (r.ok) rooms.insert(room);
  }
  counters_.expired_peers += recorded;
  logger_->info("expired peers: {} recorded here, {} already recorded by another instance, {} failed (retried next sweep)",
                recorded, duplicates, failed);

  // The cache of each room touched: rooms no instance follows would
  // otherwise keep the dead members until someone replays them away.
  if (cache_ == nullptr || !index_.catch_up(log_, stopping_)) return;
  for (auto const& room : rooms) {
    auto st = index_.state_of(room);
    cache_->store(domain::room_token(room), st.last_seq, codec::encode_snapshot(st, st.last_seq));
    ++counters_.cache_repairs;
  }
}

}  // namespace sig::service
