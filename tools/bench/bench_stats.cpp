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
    out[std::string(line.substr(0, name_end))] = value_number;
  }
  return out;
}

double metric(metric_values const& values, std::string const& name) {
  auto it = values.find(name);
  return it == values.end() ? 0.0 : it->second;
}

}  // namespace sig::bench
