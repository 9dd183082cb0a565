#pragma once
// Counters an operator (and the benchmark) reads at /metrics. One instance
// per process, owned by the instance and passed by reference: no globals.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace sig::service {

// A Prometheus histogram of durations, exported in seconds. Lock-free: any
// thread may observe.
struct latency_histogram {
  static constexpr std::array<double, 12> bounds_seconds{0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,   0.25,  0.5,   1,    2.5,   10};
  std::array<std::atomic<std::uint64_t>, bounds_seconds.size() + 1> buckets{};  // the last: above every bound
  std::atomic<std::uint64_t> sum_us{0};
  void observe(std::chrono::microseconds elapsed);
  // `name` with its HELP, TYPE, buckets, sum and count.
  void render(std::string& out, char const* name, char const* help) const;
};

struct metrics {
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> joined_peers{0};
  std::atomic<std::int64_t> active_rooms{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> live_messages_received{0};  // NATS traffic this instance follows
  std::atomic<std::uint64_t> live_bytes_received{0};
  std::atomic<std::uint64_t> append_failures{0};
  std::atomic<std::int64_t> appends_in_flight{0};
  std::atomic<std::uint64_t> appends_refused_for_load{0};  // over --max-appends-in-flight: answered `unavailable`
  std::atomic<std::uint64_t> append_retries{0};
  std::atomic<std::uint64_t> duplicate_requests{0};  // a signal sent again with its id, found stored already
  std::atomic<std::uint64_t> phantom_duplicates{0};  // appends answered as stored where the stream does not have them
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> room_syncs_from_cache{0};
  std::atomic<std::uint64_t> room_syncs_by_replay{0};
  std::atomic<std::uint64_t> replayed_events{0};
  std::atomic<std::uint64_t> stream_snapshots{0};  // room snapshots written to the stream (rollups)
  std::atomic<std::uint64_t> gaps_detected{0};
  std::atomic<std::uint64_t> live_dropped_by_fault_injection{0};  // exported only with a --fault-* flag set
  bool fault_injection = false;
  std::atomic<std::uint64_t> catch_ups{0};
  std::atomic<std::uint64_t> short_reads{0};  // rebuilds and catch-ups read by direct gets, without a worker
  std::atomic<std::uint64_t> joins_before_rebuild{0};  // first joins appended without waiting for the rebuild
  std::atomic<std::uint64_t> ignored_events{0};
  std::atomic<std::uint64_t> slow_consumers{0};
  std::atomic<std::uint64_t> refused_upgrades{0};    // origin not allowed, or --max-connections reached
  std::atomic<std::uint64_t> rate_limited{0};        // signals refused by the per-connection rate limit
  std::atomic<std::uint64_t> joins_rate_limited{0};  // joins refused by the per-address rate limit
  std::atomic<std::uint64_t> abusive_closes{0};      // connections closed with 1008 (kept going over a limit, never joined)
  std::atomic<std::uint64_t> expired_peers{0};      // leaves recorded for peers of dead instances
  std::atomic<std::uint64_t> cache_repairs{0};      // snapshots rewritten because Redis was stale, empty or ahead
  // Resume (docs/protocol.md `resume`): peers whose connection dropped and who
  // are kept for the grace period; resumes that worked and those refused;
  // events replayed to resumed peers; peers expired after the grace period.
  std::atomic<std::int64_t> detached_peers{0};
  std::atomic<std::uint64_t> resumes{0};
  std::atomic<std::uint64_t> resumes_refused{0};
  std::atomic<std::uint64_t> resume_replayed_events{0};
  std::atomic<std::uint64_t> grace_expired_peers{0};
  // By event kind (join, leave, signal, resume): appended here, and delivered to local peers.
  static constexpr std::size_t event_kinds = 4;
  std::array<std::atomic<std::uint64_t>, event_kinds> appended_by_kind{};
  std::array<std::atomic<std::uint64_t>, event_kinds> delivered_by_kind{};
  // Error replies by protocol code (index: the code's number).
  std::array<std::atomic<std::uint64_t>, 16> errors_by_code{};
  // Append (the appending instance's clock) to fold here, for live events.
  latency_histogram delivery_latency;
  // A join request read to its `joined` sent: what a user waits for.
  latency_histogram join_latency;
  // A room's rebuild: following it here to ready for its first join.
  latency_histogram room_sync_latency;
  // An error reply with this protocol code (its number) went to a client.
  void count_error(int code) {
    if (code > 0 && static_cast<std::size_t>(code) < errors_by_code.size()) ++errors_by_code[static_cast<std::size_t>(code)];
  }
  // Filled in at scrape time.
  std::atomic<std::int64_t> nats_connected{0};
  std::atomic<std::int64_t> redis_connected{-1};  // -1: running without Redis
  std::atomic<std::int64_t> instances_alive{0};     // by heartbeat, this one included
  std::atomic<std::int64_t> stream_replicas{0};     // as last read (start, then every --stream-check-interval)

  // Series carry no `instance` label (Prometheus adds the scrape target's);
  // sigstream_build_info names the instance id and version.
  std::string prometheus_text(std::string const& instance_id, std::string const& version) const;
};

}  // namespace sig::service
