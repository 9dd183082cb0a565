#include "domain/message_id.hpp"

#include <cstdio>

namespace sig::domain {

namespace {

// FNV-1a, 64 bits, over each part with its length before it (so that no two
// different splits of the same bytes hash alike). Two passes with different
// offset bases make 128 bits: collisions between different signals of one
// member within the duplicate window are out of reach. Stable across
// builds and hosts: the copy sent again may reach another instance.
struct fnv1a {
  std::uint64_t h;
  void bytes(std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  }
  void part(std::string_view s) {
    std::uint64_t n = s.size();
    for (int k = 0; k < 8; ++k) {
      h ^= static_cast<unsigned char>(n >> (8 * k));
      h *= 0x100000001b3ULL;
    }
    bytes(s);
  }
};

}  // namespace

std::string signal_message_id(std::string_view room_token, std::string_view peer, std::uint64_t join_seq,
                              std::string_view request_id, std::optional<std::string> const& to,
                              std::string_view data_json) {
  std::string seq = std::to_string(join_seq);
  fnv1a a{0xcbf29ce484222325ULL}, b{0x84222325cbf29ce4ULL};
  for (auto* f : {&a, &b}) {
    f->part(request_id);
    f->part(to ? std::string_view("1") : std::string_view("0"));
    f->part(to ? std::string_view(*to) : std::string_view());
    f->part(data_json);
  }
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(a.h),
                static_cast<unsigned long long>(b.h));
  std::string id = "req.";
  id += room_token;
  id += '.';
  id += peer;
  id += '.';
  id += seq;
  id += '.';
  id += hex;
  return id;
}

}  // namespace sig::domain
