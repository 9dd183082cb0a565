#pragma once
// The phases of `sigstream-bench`, run in order from the calling thread while
// one or two io threads drive every WebSocket client. Every wait is bounded.
#include "bench/bench_results.hpp"

namespace sig::bench {

// Fills `results`; returns the process exit code (0 when the run completed,
// even if targets were missed; 1 when the cluster could not be driven).
int run(bench_settings const& settings, bench_results& results);

}  // namespace sig::bench
