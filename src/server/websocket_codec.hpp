#pragma once
// The server side of RFC 6455 as pure functions over bytes: the opening
// handshake's key, a client's frames read incrementally into messages, and
// the headers of the frames a server writes. No socket here, so every rule
// (masking, fragments, control frames, UTF-8, close codes, the size limit)
// has a unit test; ws_session does the I/O.
//
// Why not Beast's websocket::stream: it keeps about 3.3 KiB per connection
// (an inline 1.5 KiB read buffer fixed at compile time, a timer, saved
// handlers, a pending read operation), most of an idle peer's cost, and it
// writes one message per system call. docs/benchmarks.md has the profile.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace sig::server {

// Close codes the server sends (RFC 6455 section 7.4.1, and 1012/1013 from
// the IANA registry).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005;  // never on the wire: "the close frame had no code"
inline constexpr std::uint16_t bad_payload = 1007;
inline constexpr std::uint16_t policy_error = 1008;
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
}  // namespace close_code

struct close_reason {
  std::uint16_t code = close_code::normal;
  std::string reason;  // at most 123 bytes go on the wire
};

// Sec-WebSocket-Accept for a request's Sec-WebSocket-Key.
std::string websocket_accept_key(std::string_view client_key);
// A Sec-WebSocket-Key must be the base64 of 16 bytes.
bool valid_websocket_key(std::string_view client_key);

// Codes a peer may send in a close frame (1004-1006, 1015 and 1016-2999
// are reserved).
bool valid_close_code(std::uint16_t code);

enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// The header of an unmasked server frame, final, with that payload size.
struct frame_header {
  std::array<unsigned char, 10> bytes{};
  std::size_t size = 0;
};
frame_header server_frame_header(opcode op, std::size_t payload_size);
// A whole close frame (header and payload) for `reason`.
std::string server_close_frame(close_reason const& reason);

// What the reader found in the bytes it was given.
namespace read_event {
struct need_more {};  // nothing complete: keep what was not consumed, read more
struct message {
  bool binary = false;
  std::string_view payload;  // valid until the next call to next()
};
struct ping {
  std::string_view payload;
};
struct pong {};
struct close {
  std::uint16_t code = close_code::no_status;
  std::string_view reason;
};
// A message over the size limit. Its bytes are dropped as they come;
// reported once, when the message ends or when `give_up_bytes` of it have
// been dropped (`complete` false: the rest is still on its way).
struct too_big {
  std::size_t bytes = 0;
  bool complete = false;
};
// The client broke the protocol: close with `code` (1002 or 1007).
struct violation {
  std::uint16_t code = close_code::protocol_error;
  std::string_view why;
};
}  // namespace read_event

using frame_event = std::variant<read_event::need_more, read_event::message, read_event::ping, read_event::pong,
                                 read_event::close, read_event::too_big, read_event::violation>;

// Reads a client's frames into messages, one event per call. Frames within
// the limit are taken whole from the caller's bytes (unmasked in place);
// a fragmented message is assembled here; a message over the limit is
// dropped piece by piece without being held. After a violation the reader
// is spent: the connection must close.
class frame_reader {
 public:
  // `max_message_bytes`: the largest message payload accepted; larger ones
  // are reported too_big after the whole of them, or after
  // `give_up_bytes`, whichever comes first.
  frame_reader(std::size_t max_message_bytes, std::size_t give_up_bytes);

  struct step {
    std::size_t consumed = 0;  // bytes of the input used up (drop them before the next call)
    frame_event event;
  };
  // Looks at `data` (which it may unmask in place) and returns what the
  // first frame or piece in it amounts to.
  step next(char* data, std::size_t size);

  // Bytes a frame still needs before next() can take it whole (0: unknown
  // or none); lets the caller reserve room once for a large frame.
  std::size_t wanted() const { return wanted_; }

 private:
  step drop(std::size_t size);
  step end_of_message(std::size_t consumed, std::string_view payload, bool binary);

  std::size_t max_message_bytes_;
  std::size_t give_up_bytes_;
  std::size_t wanted_ = 0;
  // A fragmented message in progress.
  bool in_message_ = false;
  bool message_binary_ = false;
  std::string assembled_;
  bool assembled_delivered_ = false;
  // A message over the limit, being dropped.
  bool dropping_ = false;
  bool drop_reported_ = false;
  bool drop_frame_final_ = false;
  std::uint64_t drop_left_in_frame_ = 0;
  std::size_t dropped_bytes_ = 0;
  bool failed_ = false;
};

}  // namespace sig::server
