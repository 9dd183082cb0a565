#include "bench/bench_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace sig::bench {

latency_summary summarize(std::vector<std::int64_t> samples) {
  latency_summary out;
  if (samples.empty()) return out;
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double q) {
    auto index = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
    index = std::clamp<std::size_t>(index, 1, samples.size());
    return static_cast<double>(samples[index - 1]) / 1e6;
  };
  out.count = samples.size();
  out.p50_ms = rank(0.50);
  out.p90_ms = rank(0.90);
  out.p99_ms = rank(0.99);
  out.max_ms = static_cast<double>(samples.back()) / 1e6;
  long double sum = 0;
  for (auto s : samples) sum += static_cast<long double>(s);
  out.mean_ms = static_cast<double>(sum / static_cast<long double>(samples.size()) / 1e6L);
  return out;
}

std::vector<step_window> per_second(std::vector<std::int64_t> const& latencies_ns,
                                    std::vector<std::uint64_t> const& numbers, double rate, std::uint64_t total) {
  if (rate <= 0 || total == 0) return {};
  auto second_of = [&](std::uint64_t n) { return static_cast<std::size_t>(static_cast<double>(n - 1) / rate); };
  std::vector<step_window> out(second_of(total) + 1);
  std::vector<std::vector<std::int64_t>> latencies(out.size());
  for (std::uint64_t n = 1; n <= total; ++n) ++out[second_of(n)].sent;
  for (std::size_t i = 0; i < latencies_ns.size() && i < numbers.size(); ++i) {
    if (numbers[i] == 0 || numbers[i] > total) continue;
    auto w = second_of(numbers[i]);
    ++out[w].received;
    latencies[w].push_back(latencies_ns[i]);
  }
  for (std::size_t w = 0; w < out.size(); ++w) {
    out[w].second = w;
    out[w].p99_ms = summarize(std::move(latencies[w])).p99_ms;
  }
  return out;
}

std::optional<double> back_to_normal(std::vector<step_window> const& windows, double p99_limit_ms) {
  std::optional<double> since;
  for (auto const& w : windows) {
    bool normal = w.received >= w.sent && w.received > 0 && w.p99_ms < p99_limit_ms;
    if (!normal) since.reset();
    else if (!since) since = static_cast<double>(w.second);
  }
  return since;
}

metric_values parse_prometheus(std::string_view text) {
  metric_values out;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    auto name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) continue;
    auto value_start = line.rfind(' ');
    if (value_start == std::string_view::npos || value_start + 1 >= line.size()) continue;
    std::string value(line.substr(value_start + 1));
    char* parsed_end = nullptr;
    double value_number = std::strtod(value.c_str(), &parsed_end);
    if (parsed_end == value.c_str()) continue;
    out[std::string(line.substr(0, name_end))] += value_number;
    if (line[name_end] == '{') out[std::string(line.substr(0, value_start))] = value_number;
  }
  return out;
}

double metric(metric_values const& values, std::string const& name) {
  auto it = values.find(name);
  return it == values.end() ? 0.0 : it->second;
}

}  // namespace sig::bench
