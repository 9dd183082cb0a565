#include "history/redact.hpp"

#include <optional>

namespace sig::history {
namespace {

// What counts as an address literal, in one place:
//  - IPv4: four dot-separated octets of 1-3 decimal digits, each 0-255.
//  - IPv6: at most 8 groups of 1-4 hex digits separated by ':', with at most
//    one "::" (and then at most 7 groups), or exactly 8 groups without it; the
//    last two groups may be written as an IPv4 (::ffff:192.0.2.1). A zone
//    ("%eth0") is part of the literal and masked with it.
// A literal is masked only when it stands alone: it must not start right
// after a letter, digit or '.' (nor, for IPv6, after ':'), and must not be
// followed by a letter or digit, nor by '.' or ':' followed by one. So version
// strings (1.2.3.4.5, v1.2.3.4), SHA fingerprints (32 hex groups), times
// (10:00:00), MAC addresses (6 groups) and UUIDs stay, while "1.2.3.4:5000"
// (a port), "[::1]" and "at 10.0.0.1." (end of a sentence) are masked.
//
// Text can be JSON, so backslash escapes are skipped whole: "\n1.2.3.4" is a
// newline then an address, and "\fe80::1" a form feed then "e80::1". Masks
// contain no quote or backslash and literals never span one, so JSON stays
// valid. Every match attempt reads a bounded number of characters, so the
// scan is linear.
constexpr std::string_view ipv4_mask = "x.x.x.x";
constexpr std::string_view ipv6_mask = "x:x::x";

constexpr std::size_t ipv6_groups = 8;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 6874 zone identifiers are unreserved characters.
bool is_zone_char(char c) { return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

bool is_json_escape_letter(char c) {
  switch (c) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': case 'u':
      return true;
    default:
      return false;
  }
}

// 1-3 digits worth at most 255. Reads at most 4 digits, so a long digit run
// fails without being read to its end.
std::optional<std::size_t> octet_end(std::string_view text, std::size_t at) {
  std::size_t end = at;
  int value = 0;
  while (end < text.size() && is_digit(text[end]) && end - at < 4) value = value * 10 + (text[end++] - '0');
  if (end == at || end - at > 3 || value > 255) return std::nullopt;
  return end;
}

std::optional<std::size_t> ipv4_end(std::string_view text, std::size_t at) {
  auto end = octet_end(text, at);
  for (int dots = 0; dots < 3 && end; ++dots) {
    if (*end >= text.size() || text[*end] != '.') return std::nullopt;
    end = octet_end(text, *end + 1);
  }
  return end;
}

bool is_double_colon(std::string_view text, std::size_t at) {
  return at + 1 < text.size() && text[at] == ':' && text[at + 1] == ':';
}

std::optional<std::size_t> ipv6_end(std::string_view text, std::size_t at) {
  std::size_t groups = 0;
  bool compressed = false;  // seen "::"
  if (is_double_colon(text, at)) {
    compressed = true;
    at += 2;
  }
  while (at < text.size()) {
    // An IPv4 tail is the last two groups and ends the literal.
    if (auto v4 = ipv4_end(text, at)) {
      groups += 2;
      at = *v4;
      break;
    }
    std::size_t digits = 0;
    while (at + digits < text.size() && digits < 5 && is_hex(text[at + digits])) ++digits;
    if (digits == 0) break;  // after a trailing "::", as in "fe80::"
    if (digits > 4 || ++groups > ipv6_groups) return std::nullopt;
    at += digits;
    if (is_double_colon(text, at)) {
      if (compressed) return std::nullopt;
      compressed = true;
      at += 2;
    } else if (at + 1 < text.size() && text[at] == ':' && is_hex(text[at + 1])) {
      at += 1;
    } else {
      break;
    }
  }
  if (compressed ? groups >= ipv6_groups : groups != ipv6_groups) return std::nullopt;
  return at;
}

// Whether the literal ending at `end` is the whole of its run: no letter or
// digit follows, nor a '.' (or, after IPv6, a ':') that the run goes on after.
// A '.' that ends a sentence stays fine, and so does the ':' of an IPv4's port.
bool stands_alone(std::string_view text, std::size_t end, bool is_ipv6) {
  if (end >= text.size()) return true;
  char next = text[end];
  if (is_alnum(next)) return false;
  bool continues = end + 1 < text.size() && (is_alnum(text[end + 1]) || text[end + 1] == ':');
  if (next == '.') return !continues;
  if (next == ':' && is_ipv6) return !continues;
  return true;
}

// What the character before a position means to a literal starting there.
enum class before_kind { boundary, colon, word };

before_kind kind_of(char c) {
  if (is_alnum(c) || c == '.') return before_kind::word;
  return c == ':' ? before_kind::colon : before_kind::boundary;
}

}  // namespace

std::string redact_addresses(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  before_kind before = before_kind::boundary;
  std::size_t at = 0;
  while (at < text.size()) {
    char c = text[at];
    if (c == '\\' && at + 1 < text.size() && is_json_escape_letter(text[at + 1])) {
      std::size_t length = 2;
      if (text[at + 1] == 'u')
        while (length < 6 && at + length < text.size() && is_hex(text[at + length])) ++length;
      out.append(text.substr(at, length));
      at += length;
      before = before_kind::boundary;  // the escaped character is a quote, a control or similar
      continue;
    }
    if (before == before_kind::boundary && (is_hex(c) || c == ':')) {
      if (auto end = ipv6_end(text, at); end && stands_alone(text, *end, true)) {
        std::size_t stop = *end;
        if (stop + 1 < text.size() && text[stop] == '%' && is_zone_char(text[stop + 1])) {
          ++stop;
          while (stop < text.size() && is_zone_char(text[stop])) ++stop;
        }
        out += ipv6_mask;
        at = stop;
        before = before_kind::word;
        continue;
      }
    }
    if (before != before_kind::word && is_digit(c)) {
      if (auto end = ipv4_end(text, at); end && stands_alone(text, *end, false)) {
        out += ipv4_mask;
        at = *end;
        before = before_kind::word;
        continue;
      }
    }
    out += c;
    before = kind_of(c);
    ++at;
  }
  return out;
}

}  // namespace sig::history
