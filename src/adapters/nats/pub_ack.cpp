#include "adapters/nats/pub_ack.hpp"

#include <cctype>

namespace sig::nats {

namespace {

// The value after `"key":` (spaces allowed around the colon), or npos. A
// quoted string equal to the key but not followed by a colon is a value
// (a stream named "seq"), so the search goes on past it.
std::size_t value_of(std::string_view json, std::string_view key) {
  std::string quoted;
  quoted.reserve(key.size() + 2);
  quoted += '"';
  quoted += key;
  quoted += '"';
  for (auto at = json.find(quoted); at != std::string_view::npos; at = json.find(quoted, at + 1)) {
    auto colon = at + quoted.size();
    while (colon < json.size() && std::isspace(static_cast<unsigned char>(json[colon]))) ++colon;
    if (colon >= json.size() || json[colon] != ':') continue;
    auto value = colon + 1;
    while (value < json.size() && std::isspace(static_cast<unsigned char>(json[value]))) ++value;
    return value < json.size() ? value : std::string_view::npos;
  }
  return std::string_view::npos;
}

bool number_at(std::string_view json, std::size_t at, std::uint64_t& out) {
  if (at == std::string_view::npos || at >= json.size() || !std::isdigit(static_cast<unsigned char>(json[at])))
    return false;
  std::uint64_t value = 0;
  for (; at < json.size() && std::isdigit(static_cast<unsigned char>(json[at])); ++at) {
    auto digit = static_cast<std::uint64_t>(json[at] - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

std::string string_at(std::string_view json, std::size_t at) {
  if (at == std::string_view::npos || at >= json.size() || json[at] != '"') return {};
  std::string out;
  for (++at; at < json.size() && json[at] != '"'; ++at) {
    if (json[at] == '\\' && at + 1 < json.size()) ++at;
    out += json[at];
  }
  return out;
}

}  // namespace

pub_ack parse_pub_ack(std::string_view json) {
  pub_ack ack;
  if (auto error = value_of(json, "error"); error != std::string_view::npos) {
    std::string_view object = json.substr(error);
    std::uint64_t code = 0;
    if (number_at(object, value_of(object, "err_code"), code)) ack.error_code = static_cast<int>(code);
    ack.error = string_at(object, value_of(object, "description"));
    if (ack.error.empty()) ack.error = "JetStream refused the append";
    return ack;
  }
  if (!number_at(json, value_of(json, "seq"), ack.seq) || ack.seq == 0) {
    ack.error = json.empty() ? "empty answer (no stream took the subject?)" : "unreadable answer from JetStream";
    return ack;
  }
  ack.stream = string_at(json, value_of(json, "stream"));
  auto duplicate = value_of(json, "duplicate");
  ack.duplicate = duplicate != std::string_view::npos && json.substr(duplicate).starts_with("true");
  ack.ok = true;
  return ack;
}

}  // namespace sig::nats
