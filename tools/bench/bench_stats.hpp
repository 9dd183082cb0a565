#pragma once
// Figures for `sigstream-bench`: latency percentiles and the counters an
// instance exposes at /metrics. Pure functions.
#include <cstdint>
#include <map>
#include <optional>
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

// One second of a step, by send schedule: signal n (from 1) of a step at
// rate r is due in second (n - 1) / r.
struct step_window {
  std::uint64_t second = 0, sent = 0, received = 0;  // received: within the step and its drain
  double p99_ms = 0;
};
// `latencies_ns[i]` is the latency of signal `numbers[i]`; `total` signals
// were due at `rate` per second.
std::vector<step_window> per_second(std::vector<std::int64_t> const& latencies_ns,
                                    std::vector<std::uint64_t> const& numbers, double rate, std::uint64_t total);
// The first second from which on every second had all its signals received
// and p99 under `p99_limit_ms`; nullopt if the last second had not.
std::optional<double> back_to_normal(std::vector<step_window> const& windows, double p99_limit_ms);

// "sigstream_frames_sent_total 42" -> {"sigstream_frames_sent_total": 42}.
// Labels are dropped and the series of one name summed:
// sigstream_events_appended_total{kind="join"} and {kind="signal"} give
// every event appended. Each labelled series is also kept whole, under its
// name and labels as written: sigstream_peers_expired_total{reason="instance_dead"}.
using metric_values = std::map<std::string, double>;
metric_values parse_prometheus(std::string_view text);
double metric(metric_values const& values, std::string const& name);

}  // namespace sig::bench
