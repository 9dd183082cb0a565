#include "domain/message_id.hpp"

#include "domain/room_name.hpp"

namespace sig::domain {

namespace {

// FNV-1a, 64 bits, over each part with its length before it (so that no two
// different splits of the same bytes hash alike). Two of them with different
// offset bases make 128 bits: collisions between different signals of one
// member within the duplicate window are out of reach. Stable across
// builds and hosts: the copy sent again may reach another instance. Both
// run in one pass (their multiplications overlap): this is on the I/O
// thread for every signal with an id.
struct fnv1a_pair {
  static constexpr std::uint64_t prime = 0x100000001b3ULL;
  std::uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
  void byte(unsigned char c) {
    a = (a ^ c) * prime;
    b = (b ^ c) * prime;
  }
  void part(std::string_view s) {
    std::uint64_t n = s.size();
    for (int k = 0; k < 8; ++k) byte(static_cast<unsigned char>(n >> (8 * k)));
    for (unsigned char c : s) byte(c);
  }
};

}  // namespace

std::string signal_message_id(std::uint64_t join_seq, std::string_view request_id,
                              std::optional<std::string> const& to, std::string_view data_json) {
  fnv1a_pair h;
  h.part(request_id);
  h.part(to ? std::string_view("1") : std::string_view("0"));
  h.part(to ? std::string_view(*to) : std::string_view());
  h.part(data_json);
  // The 128 bits, a's bytes then b's, most significant first, in base64url:
  // 22 characters.
  char bytes[16];
  for (int k = 0; k < 8; ++k) {
    bytes[k] = static_cast<char>(h.a >> (56 - 8 * k));
    bytes[8 + k] = static_cast<char>(h.b >> (56 - 8 * k));
  }
  std::string id = "s.";
  id += std::to_string(join_seq);
  id += '.';
  id += base64url(std::string_view(bytes, sizeof bytes));
  return id;
}

std::string snapshot_message_id(std::string_view room_token, std::uint64_t seq) {
  std::string id = "snap.";
  id.append(room_token);
  id += '.';
  id += std::to_string(seq);
  return id;
}

}  // namespace sig::domain
