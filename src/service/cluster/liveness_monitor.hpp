#pragma once
// Dead instances leave no ghosts, and finding them costs nothing per signal.
//
// Every instance writes a heartbeat to the heartbeat bucket and watches
// everyone else's (domain::liveness decides who is dead by its own clock).
// Each instance also records which rooms it follows (room_holdings), at the
// rate rooms come and go. When an instance is taken for dead, the survivors
// read that record, rebuild only those rooms (snapshot + recent events),
// and record a `left` with reason `expired` for each member the dead
// instance held. Each leave carries a message id derived from the member
// (room, peer, join seq), so however many survivors do it, JetStream
// stores it once. The first instance up after a total outage does the same
// for every dead instance it finds records of.
//
// An instance restarted under the same id expires its earlier run's peers
// itself, before it takes any join: the members its records point at that
// were recorded under its id before this run started.
//
// Runs on a thread of its own, over a NATS connection of its own, so that
// heartbeats never wait behind room traffic, neither here nor in the
// server's per-connection read loop.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "ports/cluster_store.hpp"
#include "ports/presence_store.hpp"

namespace spdlog { class logger; }

namespace sig::service {

class held_peers;
struct metrics;

struct liveness_settings {
  std::string instance_id;
  std::string version;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds instance_timeout{3000};
};

class liveness_monitor {
 public:
  // `control`: a connection of the monitor's own (heartbeats, the holdings
  // bucket, the reads and leaves of an expiry). `held`: this instance's
  // connections, to tell an earlier run's members from this run's.
  liveness_monitor(liveness_settings settings, cluster_store& control, held_peers const& held,
                   presence_store* cache, metrics& counters, std::shared_ptr<spdlog::logger> logger);
  ~liveness_monitor();
  liveness_monitor(liveness_monitor const&) = delete;
  liveness_monitor& operator=(liveness_monitor const&) = delete;

  void start();
  // The peers an earlier run under this id left behind are expired (or
  // there were none): joins may be taken from now on.
  bool settled() const { return settled_; }
  // Stops the thread; with `goodbye`, removes this instance's heartbeat so
  // that nobody waits for it to time out (a clean shutdown).
  void stop(bool goodbye);

 private:
  void run();
  struct state;
  // Expires the members `instance` holds in the rooms it recorded; with
  // `before_seq` (an earlier run of this id), only those that joined before
  // it. False if something failed (tried again later).
  bool expire_instance(std::string const& instance, std::uint64_t before_seq);
  void scan_all_holdings();

  liveness_settings settings_;
  cluster_store& control_;
  held_peers const& held_;
  presence_store* cache_;
  metrics& counters_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> settled_{false};
  bool goodbye_ = false;
  std::thread thread_;
  std::unique_ptr<state> state_;
};

}  // namespace sig::service
