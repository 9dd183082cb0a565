#include "history/time_point.hpp"

#include <ctime>
#include <fmt/format.h>

namespace sig::history {

std::optional<point> parse_point(std::string_view text, std::int64_t, std::string* error) {
  if (error) *error = "TODO " + std::string(text);  // TODO(helper)
  return std::nullopt;
}

std::string rfc3339(std::int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

}  // namespace sig::history
