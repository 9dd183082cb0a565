#include "admission/client_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sig::admission {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// IPv4 as IPv4-mapped IPv6. Nullopt if not an address.
std::optional<std::array<std::uint8_t, 16>> parse_address(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buffer[INET6_ADDRSTRLEN] = {0};
  std::memcpy(buffer, text.data(), text.size());
  std::array<std::uint8_t, 16> out{};
  unsigned char v4[4];
  if (inet_pton(AF_INET, buffer, v4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, v4, 4);
    return out;
  }
  if (inet_pton(AF_INET6, buffer, out.data()) == 1) return out;
  return std::nullopt;
}

bool is_v4_mapped(std::array<std::uint8_t, 16> const& a) {
  return std::all_of(a.begin(), a.begin() + 10, [](std::uint8_t b) { return b == 0; }) && a[10] == 0xff && a[11] == 0xff;
}

bool in_network(network const& net, std::array<std::uint8_t, 16> const& a) {
  int bits = net.prefix_bits;
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (net.address[i] & mask)) return false;
  }
  return true;
}

bool trusted_address(std::vector<network> const& trusted, std::array<std::uint8_t, 16> const& a) {
  return std::any_of(trusted.begin(), trusted.end(), [&](network const& n) { return in_network(n, a); });
}

std::string to_text(std::array<std::uint8_t, 16> const& a) {
  char buffer[INET6_ADDRSTRLEN] = {0};
  if (is_v4_mapped(a)) inet_ntop(AF_INET, a.data() + 12, buffer, sizeof buffer);
  else inet_ntop(AF_INET6, a.data(), buffer, sizeof buffer);
  return buffer;
}

}  // namespace

std::vector<std::string_view> comma_list(std::string_view text) {
  std::vector<std::string_view> items;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::optional<std::vector<network>> parse_networks(std::string_view text, std::string* error) {
  std::vector<network> out;
  for (auto item : comma_list(text)) {
    auto slash = item.find('/');
    auto address = parse_address(item.substr(0, slash));
    if (!address) {
      if (error) *error = "'" + std::string(item.substr(0, 64)) + "' is not an IP address or ADDRESS/PREFIX";
      return std::nullopt;
    }
    bool v4 = is_v4_mapped(*address);
    int prefix = v4 ? 32 : 128;
    if (slash != std::string_view::npos) {
      auto digits = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
      if (ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 || prefix > (v4 ? 32 : 128)) {
        if (error) *error = "'" + std::string(item.substr(0, 64)) + "' has a bad prefix length";
        return std::nullopt;
      }
    }
    out.push_back(network{*address, v4 ? prefix + 96 : prefix});
  }
  return out;
}

std::optional<std::string> canonical_address(std::string_view text) {
  auto address = parse_address(trim(text));
  if (!address) return std::nullopt;
  return to_text(*address);
}

bool is_trusted(std::vector<network> const& trusted, std::string_view address) {
  auto parsed = parse_address(trim(address));
  return parsed && trusted_address(trusted, *parsed);
}

std::string client_address(std::string_view peer, std::string_view forwarded_for, std::vector<network> const& trusted) {
  auto peer_address = parse_address(peer);
  if (!peer_address) return std::string(peer);
  auto client = *peer_address;
  // Walk the entries from the right (the caller joins several
  // X-Forwarded-For header lines, in order, with commas).
  while (trusted_address(trusted, client) && !forwarded_for.empty()) {
    auto comma = forwarded_for.rfind(',');
    auto entry = trim(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view{} : forwarded_for.substr(0, comma);
    if (entry.empty()) continue;
    auto hop = parse_address(entry);
    if (!hop) break;  // the hop that wrote this is the last one we can believe
    client = *hop;
  }
  return to_text(client);
}

}  // namespace sig::admission
