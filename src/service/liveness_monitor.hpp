#pragma once
// Dead instances leave no ghosts. Every instance writes a heartbeat to the
// heartbeat bucket and watches everyone else's (domain::liveness decides who
// is dead by its own clock). A sweep then records a `left` event with reason
// `expired` for every member held by an instance that is not alive, found in
// the room_index's fold of the whole stream. Each leave carries a message id
// derived from the member (room, peer, join seq), so however many survivors
// sweep at once, JetStream stores it once. The same sweep, run by the first
// instance up after a total outage, cleans up after every dead instance.
// Members recorded under this instance's own id that no connection here
// holds (left by an earlier run under the same id, or whose leave failed
// while NATS was away) are expired too, once two sweeps in a row find them.
// Runs on a thread of its own: every call here blocks on NATS.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace spdlog { class logger; }
namespace sig::nats { class event_log; }
namespace sig::redis { class presence_cache; }

namespace sig::service {

class room_index;
class held_peers;
struct metrics;

struct liveness_settings {
  std::string instance_id;
  std::string version;
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds instance_timeout{10000};
};

class liveness_monitor {
 public:
  // `held`: this instance's connections, to find members recorded under its
  // own id that nothing here holds any more.
  liveness_monitor(liveness_settings settings, nats::event_log& log, room_index& index, held_peers const& held,
                   redis::presence_cache* cache, metrics& counters, std::shared_ptr<spdlog::logger> logger);
  ~liveness_monitor();
  liveness_monitor(liveness_monitor const&) = delete;
  liveness_monitor& operator=(liveness_monitor const&) = delete;

  void start();
  // Stops the thread; with `goodbye`, removes this instance's heartbeat so
  // that nobody waits for it to time out (a clean shutdown).
  void stop(bool goodbye);

 private:
  void run();
  void sweep();

  liveness_settings settings_;
  nats::event_log& log_;
  room_index& index_;
  held_peers const& held_;
  redis::presence_cache* cache_;
  metrics& counters_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> stopping_{false};
  bool goodbye_ = false;
  std::thread thread_;
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace sig::service
