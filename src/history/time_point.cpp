#include "history/time_point.hpp"

#include <fmt/format.h>

#include <limits>

namespace sig::history {
namespace {

constexpr std::int64_t ms_per_second = 1000;
constexpr std::int64_t ms_per_minute = 60 * ms_per_second;
constexpr std::int64_t ms_per_hour = 60 * ms_per_minute;
constexpr std::int64_t ms_per_day = 24 * ms_per_hour;
constexpr std::int64_t max_ms = std::numeric_limits<std::int64_t>::max();

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (!is_digit(c)) return false;
  return true;
}

// --- Civil dates (proleptic Gregorian, Howard Hinnant's algorithms). --------

std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  std::int64_t const era = (year >= 0 ? year : year - 399) / 400;
  auto const year_of_era = static_cast<unsigned>(year - era * 400);
  unsigned const day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  unsigned const day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<std::int64_t>(day_of_era) - 719468;
}

struct civil_date {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

civil_date civil_from_days(std::int64_t days) {
  days += 719468;
  std::int64_t const era = (days >= 0 ? days : days - 146096) / 146097;
  auto const day_of_era = static_cast<unsigned>(days - era * 146097);
  unsigned const year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  unsigned const day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  unsigned const shifted_month = (5 * day_of_year + 2) / 153;  // March is 0
  unsigned const day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  unsigned const month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
  return {static_cast<std::int64_t>(year_of_era) + era * 400 + (month <= 2), month, day};
}

bool is_leap_year(std::int64_t year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

unsigned days_in_month(std::int64_t year, unsigned month) {
  constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

// --- RFC 3339. ------------------------------------------------------------

// Reads exactly `count` digits at `at`.
std::optional<unsigned> digits_at(std::string_view text, std::size_t& at, std::size_t count) {
  if (at + count > text.size()) return std::nullopt;
  unsigned value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    char c = text[at + i];
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  at += count;
  return value;
}

bool char_at(std::string_view text, std::size_t& at, std::string_view allowed) {
  if (at >= text.size() || allowed.find(text[at]) == std::string_view::npos) return false;
  ++at;
  return true;
}

// full-date time-delim partial-time time-offset, e.g. 2026-11-22T10:00:00.250+01:00.
// Seconds may be 60 (a leap second, which the grammar allows); Unix time has
// none, so it counts as the first second of the next minute.
std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  std::size_t at = 0;
  auto year = digits_at(text, at, 4);
  if (!year || !char_at(text, at, "-")) return std::nullopt;
  auto month = digits_at(text, at, 2);
  if (!month || !char_at(text, at, "-")) return std::nullopt;
  auto day = digits_at(text, at, 2);
  if (!day || !char_at(text, at, "Tt ")) return std::nullopt;
  auto hour = digits_at(text, at, 2);
  if (!hour || !char_at(text, at, ":")) return std::nullopt;
  auto minute = digits_at(text, at, 2);
  if (!minute || !char_at(text, at, ":")) return std::nullopt;
  auto second = digits_at(text, at, 2);
  if (!second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month) || *hour > 23 ||
      *minute > 59 || *second > 60)
    return std::nullopt;

  // Any number of fraction digits; milliseconds are kept, the rest truncated.
  std::int64_t fraction_ms = 0;
  if (char_at(text, at, ".")) {
    std::size_t const start = at;
    while (at < text.size() && is_digit(text[at])) {
      if (at - start < 3) fraction_ms = fraction_ms * 10 + (text[at] - '0');
      ++at;
    }
    if (at == start) return std::nullopt;
    for (std::size_t kept = at - start; kept < 3; ++kept) fraction_ms *= 10;
  }

  std::int64_t offset_minutes = 0;
  if (!char_at(text, at, "Zz")) {
    if (at >= text.size() || (text[at] != '+' && text[at] != '-')) return std::nullopt;
    int const sign = text[at++] == '-' ? -1 : 1;
    auto offset_hours = digits_at(text, at, 2);
    if (!offset_hours || !char_at(text, at, ":")) return std::nullopt;
    auto offset_mins = digits_at(text, at, 2);
    if (!offset_mins || *offset_hours > 23 || *offset_mins > 59) return std::nullopt;
    offset_minutes = sign * static_cast<std::int64_t>(*offset_hours * 60 + *offset_mins);
  }
  if (at != text.size()) return std::nullopt;

  std::int64_t const local_ms = days_from_civil(*year, *month, *day) * ms_per_day +
                                *hour * ms_per_hour + *minute * ms_per_minute +
                                *second * ms_per_second + fraction_ms;
  return local_ms - offset_minutes * ms_per_minute;
}

// --- Durations. -------------------------------------------------------------

enum class duration_parse { not_a_duration, too_long, ok };

// <number><unit> repeated, units ms, s, m, h, d: "90s", "1h30m", "500ms".
duration_parse parse_duration(std::string_view text, std::int64_t& total_ms) {
  total_ms = 0;
  if (text.empty()) return duration_parse::not_a_duration;
  std::size_t at = 0;
  bool too_long = false;
  while (at < text.size()) {
    std::size_t const start = at;
    std::int64_t number = 0;
    while (at < text.size() && is_digit(text[at])) {
      int const digit = text[at++] - '0';
      if (number > (max_ms - digit) / 10) too_long = true;
      else number = number * 10 + digit;
    }
    if (at == start || at == text.size()) return duration_parse::not_a_duration;

    std::int64_t unit_ms = 0;
    if (text.substr(at, 2) == "ms") {
      unit_ms = 1;
      at += 2;
    } else {
      switch (text[at++]) {
        case 's': unit_ms = ms_per_second; break;
        case 'm': unit_ms = ms_per_minute; break;
        case 'h': unit_ms = ms_per_hour; break;
        case 'd': unit_ms = ms_per_day; break;
        default: return duration_parse::not_a_duration;
      }
    }
    // Keep reading after an overflow: "99999999999999999999d" is too long, but
    // "99999999999999999999x" is not a duration at all.
    if (number > max_ms / unit_ms || total_ms > max_ms - number * unit_ms) too_long = true;
    else total_ms += number * unit_ms;
  }
  return too_long ? duration_parse::too_long : duration_parse::ok;
}

std::optional<point> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<point> parse_point(std::string_view text, std::int64_t now_ms, std::string* error) {
  if (all_digits(text)) {
    std::uint64_t seq = 0;
    for (char c : text) {
      auto const digit = static_cast<std::uint64_t>(c - '0');
      if (seq > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
        return fail(error, fmt::format("\"{}\" is too large for a sequence", text));
      seq = seq * 10 + digit;
    }
    if (seq == 0) return fail(error, fmt::format("\"{}\" is not a sequence: sequences start at 1", text));
    return point{point::kind::sequence, seq, 0};
  }

  if (auto time_ms = parse_rfc3339(text)) return point{point::kind::time, 0, *time_ms};

  std::int64_t duration_ms = 0;
  switch (parse_duration(text, duration_ms)) {
    case duration_parse::ok:
      if (duration_ms == 0)
        return fail(error, fmt::format("\"{}\" is not a duration longer than zero", text));
      // now_ms is a clock reading, so this only overflows with a made-up now.
      if (now_ms < std::numeric_limits<std::int64_t>::min() + duration_ms)
        return fail(error, fmt::format("\"{}\" is too long a duration", text));
      return point{point::kind::time, 0, now_ms - duration_ms};
    case duration_parse::too_long:
      return fail(error, fmt::format("\"{}\" is too long a duration", text));
    case duration_parse::not_a_duration:
      break;
  }
  return fail(error, fmt::format("\"{}\" is not a sequence, an RFC 3339 time or a duration such as 10m",
                                 text));
}

std::string rfc3339(std::int64_t unix_ms) {
  // Floor division: -1 ms is 23:59:59.999 on the day before the epoch.
  std::int64_t seconds = unix_ms / ms_per_second;
  std::int64_t milliseconds = unix_ms % ms_per_second;
  if (milliseconds < 0) {
    seconds -= 1;
    milliseconds += ms_per_second;
  }
  std::int64_t days = seconds / 86400;
  std::int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    days -= 1;
    second_of_day += 86400;
  }
  civil_date const date = civil_from_days(days);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", date.year, date.month, date.day,
                     second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60, milliseconds);
}

}  // namespace sig::history
