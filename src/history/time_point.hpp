#pragma once
// Points in a room's history as the history tools accept them: a stream
// sequence, an RFC 3339 time, or a duration back from now. Pure: `now` is a
// parameter.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sig::history {

struct point {
  enum class kind { sequence, time } what = kind::sequence;
  std::uint64_t seq = 0;     // kind::sequence
  std::int64_t time_ms = 0;  // kind::time: Unix milliseconds
  friend bool operator==(point const&, point const&) = default;
};

// "1234" (a sequence >= 1), "2026-11-22T10:00:00Z" / "2026-11-22T10:00:00.250+01:00"
// (RFC 3339, 'T' or 't' or ' ', 'Z' or offset), or a duration back from now_ms:
// "90s", "10m", "2h", "1d", "1h30m", "500ms". On failure, nullopt and `error`
// says why, naming the text.
std::optional<point> parse_point(std::string_view text, std::int64_t now_ms, std::string* error);

// 2026-11-22T10:00:00.250Z (UTC, milliseconds).
std::string rfc3339(std::int64_t unix_ms);

}  // namespace sig::history
