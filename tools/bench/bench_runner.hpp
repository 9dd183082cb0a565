#pragma once
// The phases of `sigstream-bench`, run in order from the calling thread while
// one or two io threads drive every WebSocket client. Every wait is bounded.
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_protocol.hpp"
#include "bench/bench_results.hpp"
#include "bench/bench_system.hpp"

namespace sig::bench {

// The system one run drives, reached through its load balancer.
struct system_target {
  std::string name;  // as --systems names it
  wire_protocol const* protocol = nullptr;
  std::string url;  // ws://127.0.0.1:PORT/PATH of the load balancer, in the protocol's path
  // Set: the server processes to watch (a cluster the bench started, with
  // roles known). Unset: from --pids or --pid-dir, as for sigstream.
  std::optional<std::vector<watched_process>> processes;
  std::string process_source;
  // Per-instance /metrics (sigstream's): traffic, trouble signs, peers.
  bool instance_metrics = true;
};

// Fills `results`; returns the process exit code (0 when the run completed,
// even if targets were missed; 1 when the cluster could not be driven).
int run(bench_settings const& settings, system_target const& target, bench_results& results);

}  // namespace sig::bench
