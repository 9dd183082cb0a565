#pragma once
// Counters an operator (and the benchmark) reads at /metrics. One instance
// per process, owned by the instance and passed by reference: no globals.
#include <atomic>
#include <cstdint>
#include <string>

namespace sig::service {

struct metrics {
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> joined_peers{0};
  std::atomic<std::int64_t> active_rooms{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> live_messages_received{0};  // NATS traffic this instance follows
  std::atomic<std::uint64_t> live_bytes_received{0};
  std::atomic<std::uint64_t> events_appended{0};
  std::atomic<std::uint64_t> append_failures{0};
  std::atomic<std::int64_t> appends_in_flight{0};
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> client_errors{0};
  std::atomic<std::uint64_t> room_syncs_from_cache{0};
  std::atomic<std::uint64_t> room_syncs_by_replay{0};
  std::atomic<std::uint64_t> replayed_events{0};
  std::atomic<std::uint64_t> gaps_detected{0};
  std::atomic<std::uint64_t> live_dropped_by_fault_injection{0};
  std::atomic<std::uint64_t> catch_ups{0};
  std::atomic<std::uint64_t> ignored_events{0};
  std::atomic<std::uint64_t> slow_consumers{0};
  std::atomic<std::uint64_t> expired_peers{0};      // leaves recorded for peers of dead instances
  std::atomic<std::int64_t> instances_alive{0};     // by heartbeat, this one included

  std::string prometheus_text(std::string const& instance_id) const;
};

}  // namespace sig::service
