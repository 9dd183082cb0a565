// Fuzz target: a client's bytes into the server's WebSocket frame reader
// (src/server/websocket_codec.hpp), fed in pieces the way ws_session
// feeds it: whatever a read did not consume is kept and the next piece is
// appended. The first input byte picks the piece size (1 to 64).
//
// Properties: the reader never consumes more than it was given and never
// stalls (every call either consumes bytes or asks for more, bounded); a
// message is never over the limit; a text message is valid UTF-8; a close
// code it reports is one a client may send, its reason UTF-8; a ping's
// payload is at most 125 bytes; a message over the limit is reported as
// larger than the limit; after a violation it reports only violations.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "server/websocket_codec.hpp"
#include "domain/room_name.hpp"
#include "fuzz_check.hpp"

using namespace sig::server;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t const piece = 1 + data[0] % 64;
  ++data;
  --size;
  constexpr std::size_t limit = 1024;
  frame_reader reader(limit, 4 * limit);
  std::string inbox;
  bool failed = false;
  for (std::size_t at = 0; at < size && !failed;) {
    std::size_t take = std::min(piece, size - at);
    inbox.append(reinterpret_cast<char const*>(data + at), take);
    at += take;
    std::size_t used = 0;
    for (int calls = 0;; ++calls) {
      FUZZ_CHECK(calls <= static_cast<int>(inbox.size()) + 2);  // each call consumes, or the loop ends
      auto step = reader.next(inbox.data() + used, inbox.size() - used);
      FUZZ_CHECK(step.consumed <= inbox.size() - used);
      used += step.consumed;
      if (auto const* m = std::get_if<read_event::message>(&step.event)) {
        FUZZ_CHECK(m->payload.size() <= limit);
        if (!m->binary) FUZZ_CHECK(sig::domain::is_valid_utf8(m->payload));
      } else if (auto const* c = std::get_if<read_event::close>(&step.event)) {
        FUZZ_CHECK(c->code == close_code::no_status || valid_close_code(c->code));
        FUZZ_CHECK(sig::domain::is_valid_utf8(c->reason));
      } else if (auto const* p = std::get_if<read_event::ping>(&step.event)) {
        FUZZ_CHECK(p->payload.size() <= 125);
      } else if (auto const* t = std::get_if<read_event::too_big>(&step.event)) {
        FUZZ_CHECK(t->bytes > limit);
      } else if (auto const* v = std::get_if<read_event::violation>(&step.event)) {
        FUZZ_CHECK(v->code == close_code::protocol_error || v->code == close_code::bad_payload);
        FUZZ_CHECK(step.consumed == 0 || v->code == close_code::bad_payload);
        auto again = reader.next(inbox.data() + used, inbox.size() - used);
        FUZZ_CHECK(std::holds_alternative<read_event::violation>(again.event));
        failed = true;
        break;
      } else if (std::holds_alternative<read_event::need_more>(step.event) && step.consumed == 0) {
        break;
      }
    }
    inbox.erase(0, used);
  }
  return 0;
}
