#pragma once
// Frames as a WebSocket client writes them (masked, as RFC 6455 requires of
// clients), for the tests of the codec and of the session.
#include <cstdint>
#include <string>
#include <string_view>

namespace sig::test {

// `masked`, `rsv` and `force_length_bytes` (1, 2 or 8: a length in a longer
// form than needed) let a test write frames a client must not.
inline std::string client_frame(std::uint8_t op, std::string_view payload, bool fin = true, bool masked = true,
                                std::uint8_t rsv = 0, int force_length_bytes = 0) {
  std::string frame;
  frame += static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | op);
  std::uint8_t mask_bit = masked ? 0x80 : 0;
  auto size = payload.size();
  if ((size < 126 && force_length_bytes == 0) || force_length_bytes == 1) {
    frame += static_cast<char>(mask_bit | size);
  } else if ((size <= 0xFFFF && force_length_bytes == 0) || force_length_bytes == 2) {
    frame += static_cast<char>(mask_bit | 126);
    frame += static_cast<char>(size >> 8);
    frame += static_cast<char>(size & 0xFF);
  } else {
    frame += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) frame += static_cast<char>((static_cast<std::uint64_t>(size) >> (8 * i)) & 0xFF);
  }
  unsigned char const mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (masked) frame.append(reinterpret_cast<char const*>(mask), 4);
  for (std::size_t i = 0; i < size; ++i)
    frame += masked ? static_cast<char>(payload[i] ^ mask[i & 3]) : payload[i];
  return frame;
}

// A close frame's payload: the code, big-endian, then the reason.
inline std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xFF);
  payload += reason;
  return payload;
}

}  // namespace sig::test
