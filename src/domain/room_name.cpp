#include "domain/room_name.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace sig::domain {

// Unicode Table 3-7 (well-formed byte sequences): the second byte's range
// depends on the first; overlong forms, surrogates and code points past
// U+10FFFF are not UTF-8.
bool is_valid_utf8(std::string_view text) {
  auto const* p = reinterpret_cast<unsigned char const*>(text.data());
  auto const* end = p + text.size();
  while (p < end) {
    // ASCII runs are most of every message: eight bytes at a time.
    while (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p == end) break;
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t length;
    unsigned char low = 0x80, high = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // past U+10FFFF
    } else {
      return false;  // a continuation byte first, an overlong lead (C0, C1) or past F4
    }
    if (static_cast<std::size_t>(end - p) < length) return false;
    if (p[1] < low || p[1] > high) return false;
    for (std::size_t i = 2; i < length; ++i)
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    p += length;
  }
  return true;
}

bool is_valid_room_name(std::string_view name) {
  return !name.empty() && name.size() <= max_room_name_bytes && is_valid_utf8(name);
}

namespace {
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}
}  // namespace

std::string room_token(std::string_view name) { return base64url(name); }

std::string base64url(std::string_view name) {
  std::string out;
  out.reserve((name.size() * 4 + 2) / 3);
  auto const* s = reinterpret_cast<unsigned char const*>(name.data());
  std::size_t i = 0;
  for (; i + 3 <= name.size(); i += 3) {
    std::uint32_t v = (s[i] << 16) | (s[i + 1] << 8) | s[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = name.size() - i;
  if (rest == 1) {
    std::uint32_t v = s[i] << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    std::uint32_t v = (s[i] << 16) | (s[i + 1] << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> room_name_from_token(std::string_view token) { return base64url_decode(token); }

std::optional<std::string> base64url_decode(std::string_view token) {
  if (token.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : token) {
    int v = decode_char(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero, or two tokens would decode to one name.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool is_valid_subject_prefix(std::string_view prefix) {
  if (prefix.empty()) return false;
  bool token_empty = true;
  for (char c : prefix) {
    if (c == '.') {
      if (token_empty) return false;
      token_empty = true;
    } else if (decode_char(c) >= 0) {
      token_empty = false;
    } else {
      return false;
    }
  }
  return !token_empty;
}

room_subjects subjects_for(std::string_view prefix, std::string_view room_name) {
  return subjects_for_token(prefix, room_token(room_name));
}

room_subjects subjects_for_token(std::string_view prefix, std::string_view token) {
  std::string base = std::string(prefix) + ".room." + std::string(token);
  return room_subjects{base + ".e", base + ".s", base + ".>", std::string(prefix) + ".live." + std::string(token) + ".e"};
}

std::string holdings_key_prefix(std::string_view instance_id) { return base64url(instance_id) + "."; }

}  // namespace sig::domain
