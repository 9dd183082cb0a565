#pragma once
// Figures for `sigstream-bench`: latency percentiles and the counters an
// instance exposes at /metrics. Pure functions.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sig::bench {

// Latencies in nanoseconds; percentiles by nearest rank on the sorted samples.
struct latency_summary {
  std::uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};
latency_summary summarize(std::vector<std::int64_t> samples);

// "sigstream_frames_sent_total{instance="i1"} 42" -> {"sigstream_frames_sent_total": 42}.
// Labels are dropped: each instance's /metrics holds one series per name.
using metric_values = std::map<std::string, double>;
metric_values parse_prometheus(std::string_view text);
double metric(metric_values const& values, std::string const& name);

}  // namespace sig::bench
