// RFC 6455 on the server side, without a socket: the handshake key, UTF-8,
// frame headers, and a client's frames read into messages, whole or cut
// into pieces at every byte, with every protocol violation ws_session must
// answer with a close code.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "client_frames.hpp"
#include "server/websocket_codec.hpp"
#include "domain/room_name.hpp"

using namespace sig::server;

namespace {

using sig::test::client_frame;
using sig::test::close_payload;

// What the reader reported, in a form a test can compare.
struct seen {
  std::string kind;
  std::string payload;
  std::uint64_t number = 0;  // a close code, a too_big size
  bool flag = false;         // binary, too_big complete
  bool operator==(seen const&) const = default;
};

std::ostream& operator<<(std::ostream& out, seen const& s) {
  return out << s.kind << "(" << s.payload.substr(0, 40) << ", " << s.number << ", " << s.flag << ")";
}

// Feeds `bytes` to a reader `piece` bytes at a time, the way ws_session
// does: unconsumed bytes are kept and the next piece appended to them.
std::vector<seen> read_all(frame_reader& reader, std::string const& bytes, std::size_t piece) {
  std::vector<seen> events;
  std::string inbox;
  for (std::size_t at = 0; at < bytes.size() || !inbox.empty();) {
    std::size_t take = std::min(piece, bytes.size() - at);
    inbox.append(bytes, at, take);
    at += take;
    std::size_t used = 0;
    for (;;) {
      auto step = reader.next(inbox.data() + used, inbox.size() - used);
      used += step.consumed;
      bool stop = false;
      std::visit(
          [&](auto const& e) {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, read_event::need_more>) stop = step.consumed == 0;
            else if constexpr (std::is_same_v<T, read_event::message>) events.push_back({"message", std::string(e.payload), 0, e.binary});
            else if constexpr (std::is_same_v<T, read_event::ping>) events.push_back({"ping", std::string(e.payload)});
            else if constexpr (std::is_same_v<T, read_event::pong>) events.push_back({"pong"});
            else if constexpr (std::is_same_v<T, read_event::close>) events.push_back({"close", std::string(e.reason), e.code});
            else if constexpr (std::is_same_v<T, read_event::too_big>) events.push_back({"too_big", "", e.bytes, e.complete});
            else {
              events.push_back({"violation", "", e.code});
              stop = true;
            }
          },
          step.event);
      if (stop) break;
    }
    inbox.erase(0, used);
    if (!events.empty() && events.back().kind == "violation") break;
    if (at == bytes.size() && used == 0) break;  // the rest is an incomplete frame
  }
  return events;
}

std::vector<seen> read_all(std::string const& bytes, std::size_t limit = 1000, std::size_t give_up = 4000) {
  // Every way of cutting the bytes gives the same events.
  frame_reader whole(limit, give_up);
  auto expected = read_all(whole, bytes, bytes.size() + 1);
  for (std::size_t piece : {1, 2, 3, 7, 64}) {
    frame_reader reader(limit, give_up);
    INFO("read " << piece << " bytes at a time");
    CHECK(read_all(reader, bytes, piece) == expected);
  }
  return expected;
}

std::uint16_t violation_code(std::string const& bytes) {
  auto events = read_all(bytes);
  REQUIRE(!events.empty());
  REQUIRE(events.back().kind == "violation");
  return static_cast<std::uint16_t>(events.back().number);
}

constexpr std::uint8_t text = 1, binary = 2, continuation = 0, close_op = 8, ping_op = 9, pong_op = 10;

}  // namespace

TEST_CASE("the opening handshake's accept key is RFC 6455's example") {
  CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK_FALSE(valid_websocket_key(""));
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ"));      // not 16 bytes
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25j!Q=="));    // not base64
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ==AAAA"));
}

TEST_CASE("UTF-8: valid text passes; truncated, overlong, surrogate and out-of-range sequences do not") {
  CHECK(sig::domain::is_valid_utf8(""));
  CHECK(sig::domain::is_valid_utf8("plain ascii, longer than eight bytes"));
  CHECK(sig::domain::is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));  // é € 😀 U+10FFFF
  CHECK(sig::domain::is_valid_utf8("\xed\x9f\xbf"));                                            // U+D7FF, below the surrogates
  CHECK_FALSE(sig::domain::is_valid_utf8("\xe2\x82"));                   // truncated
  CHECK_FALSE(sig::domain::is_valid_utf8("abcdefghij\xe2\x82"));         // truncated after an ASCII run
  CHECK_FALSE(sig::domain::is_valid_utf8("\xc0\xaf"));                   // overlong '/'
  CHECK_FALSE(sig::domain::is_valid_utf8("\xe0\x80\xaf"));               // overlong, three bytes
  CHECK_FALSE(sig::domain::is_valid_utf8("\xf0\x80\x80\xaf"));           // overlong, four bytes
  CHECK_FALSE(sig::domain::is_valid_utf8("\xed\xa0\x80"));               // UTF-16 surrogate
  CHECK_FALSE(sig::domain::is_valid_utf8("\xf4\x90\x80\x80"));           // past U+10FFFF
  CHECK_FALSE(sig::domain::is_valid_utf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(sig::domain::is_valid_utf8("\x80"));                       // a continuation byte first
  CHECK_FALSE(sig::domain::is_valid_utf8("\xc3\x28"));                   // a lead byte without its continuation
  CHECK_FALSE(sig::domain::is_valid_utf8("\xff\xfe"));
  CHECK_FALSE(sig::domain::is_valid_utf8("0123456789abcdef\xe2\x28\xa1"));
}

TEST_CASE("close codes a client may send") {
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999})
    CHECK(valid_close_code(code));
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000})
    CHECK_FALSE(valid_close_code(code));
}

TEST_CASE("server frame headers: the shortest length form, final, unmasked") {
  auto small = server_frame_header(opcode::text, 125);
  CHECK(small.size == 2);
  CHECK(small.bytes[0] == 0x81);
  CHECK(small.bytes[1] == 125);
  auto medium = server_frame_header(opcode::text, 126);
  CHECK(medium.size == 4);
  CHECK(medium.bytes[1] == 126);
  CHECK(medium.bytes[2] == 0);
  CHECK(medium.bytes[3] == 126);
  CHECK(server_frame_header(opcode::text, 65535).size == 4);
  auto large = server_frame_header(opcode::binary, 65536);
  CHECK(large.size == 10);
  CHECK(large.bytes[0] == 0x82);
  CHECK(large.bytes[1] == 127);
  CHECK(large.bytes[7] == 1);  // 65536 = 0x00 0x00 0x00 0x00 0x00 0x01 0x00 0x00
  CHECK(large.bytes[8] == 0);
  CHECK(server_frame_header(opcode::ping, 0).bytes[0] == 0x89);
}

TEST_CASE("server close frames: the code, a reason cut at a character, or no payload for 'no status'") {
  auto frame = server_close_frame({close_code::too_big, "frame over the size limit"});
  CHECK(static_cast<unsigned char>(frame[0]) == 0x88);
  CHECK(frame[1] == 2 + 25);
  CHECK(frame.substr(2, 2) == close_payload(1009));
  CHECK(frame.substr(4) == "frame over the size limit");

  // 61 two-byte characters: 122 bytes fit, the 62nd would need 124.
  std::string accents;
  for (int i = 0; i < 62; ++i) accents += "\xc3\xa9";
  auto cut = server_close_frame({close_code::going_away, accents});
  CHECK(cut.size() == 2 + 2 + 122);
  CHECK(sig::domain::is_valid_utf8(cut.substr(4)));

  auto empty = server_close_frame({close_code::no_status, "ignored"});
  CHECK(empty == std::string("\x88\x00", 2));
}

TEST_CASE("messages: whole, cut at any byte, back to back, text and binary") {
  std::string sdp(300, 's');
  auto bytes = client_frame(text, R"({"type":"join","room":"r"})") + client_frame(binary, "\x01\x02") +
               client_frame(text, sdp) + client_frame(text, "");
  auto events = read_all(bytes);
  REQUIRE(events.size() == 4);
  CHECK(events[0] == seen{"message", R"({"type":"join","room":"r"})", 0, false});
  CHECK(events[1] == seen{"message", "\x01\x02", 0, true});
  CHECK(events[2] == seen{"message", sdp, 0, false});
  CHECK(events[3] == seen{"message", "", 0, false});
}

TEST_CASE("a 64-bit length, and the largest message the limit allows") {
  std::string big(70'000, 'b');
  auto events = read_all(client_frame(text, big), 70'000, 280'000);
  REQUIRE(events.size() == 1);
  CHECK(events[0].payload == big);
}

TEST_CASE("fragments are assembled, with control frames between them, and UTF-8 split across them") {
  // "é" split between two fragments.
  auto bytes = client_frame(text, "caf\xc3", false) + client_frame(ping_op, "are you there") +
               client_frame(continuation, "\xa9 au ", false) + client_frame(pong_op, "") +
               client_frame(continuation, "lait", true) + client_frame(text, "next");
  auto events = read_all(bytes);
  REQUIRE(events.size() == 4);
  CHECK(events[0] == seen{"ping", "are you there"});
  CHECK(events[1] == seen{"pong"});
  CHECK(events[2] == seen{"message", "caf\xc3\xa9 au lait", 0, false});
  CHECK(events[3] == seen{"message", "next", 0, false});
}

TEST_CASE("close frames: code and reason, or none") {
  auto events = read_all(client_frame(close_op, close_payload(1001, "tab closed")));
  REQUIRE(events.size() == 1);
  CHECK(events[0] == seen{"close", "tab closed", 1001});
  events = read_all(client_frame(close_op, ""));
  REQUIRE(events.size() == 1);
  CHECK(events[0] == seen{"close", "", close_code::no_status});
}

TEST_CASE("protocol violations give 1002, bad UTF-8 1007, and the reader stays failed") {
  CHECK(violation_code(client_frame(text, "hello", true, false)) == close_code::protocol_error);  // not masked
  CHECK(violation_code(client_frame(text, "hello", true, true, 4)) == close_code::protocol_error);  // RSV1: no deflate agreed
  CHECK(violation_code(client_frame(3, "x")) == close_code::protocol_error);       // unknown data opcode
  CHECK(violation_code(client_frame(11, "x")) == close_code::protocol_error);      // unknown control opcode
  CHECK(violation_code(client_frame(continuation, "x")) == close_code::protocol_error);  // nothing to continue
  CHECK(violation_code(client_frame(text, "a", false) + client_frame(text, "b")) == close_code::protocol_error);
  CHECK(violation_code(client_frame(ping_op, "x", false)) == close_code::protocol_error);  // fragmented control
  CHECK(violation_code(client_frame(ping_op, std::string(126, 'p'))) == close_code::protocol_error);
  CHECK(violation_code(client_frame(close_op, "x")) == close_code::protocol_error);  // a one-byte close payload
  CHECK(violation_code(client_frame(close_op, close_payload(1005))) == close_code::protocol_error);
  CHECK(violation_code(client_frame(close_op, close_payload(1000, "\xff"))) == close_code::bad_payload);
  CHECK(violation_code(client_frame(text, "short", true, true, 0, 2)) == close_code::protocol_error);  // 16-bit length for 5
  CHECK(violation_code(client_frame(text, std::string(200, 'x'), true, true, 0, 8)) == close_code::protocol_error);
  CHECK(violation_code(client_frame(text, "{\"data\":\"\xff\xfe\"}")) == close_code::bad_payload);
  CHECK(violation_code(client_frame(text, "\xe2\x82", false) + client_frame(continuation, "")) == close_code::bad_payload);
  // A binary message is not UTF-8's business.
  CHECK(read_all(client_frame(binary, "\xff\xfe")).front().kind == "message");

  std::string bytes = client_frame(text, "ok", true, false) + client_frame(text, "more");
  frame_reader reader(1000, 4000);
  auto first = reader.next(bytes.data(), bytes.size());
  CHECK(std::holds_alternative<read_event::violation>(first.event));
  auto again = reader.next(bytes.data(), bytes.size());
  CHECK(std::holds_alternative<read_event::violation>(again.event));
}

TEST_CASE("a message over the limit is dropped as it comes and reported once, when it ends") {
  auto bytes = client_frame(text, std::string(150, 'x')) + client_frame(text, "after");
  auto events = read_all(bytes, 100, 400);
  REQUIRE(events.size() == 2);
  CHECK(events[0] == seen{"too_big", "", 150, true});
  CHECK(events[1] == seen{"message", "after"});

  // Over the limit by its fragments together.
  bytes = client_frame(text, std::string(60, 'a'), false) + client_frame(continuation, std::string(60, 'b'), false) +
          client_frame(ping_op, "p") + client_frame(continuation, "", true);
  events = read_all(bytes, 100, 400);
  REQUIRE(events.size() == 2);
  CHECK(events[0] == seen{"ping", "p"});
  CHECK(events[1] == seen{"too_big", "", 120, true});
}

TEST_CASE("a message far over the limit is given up on early and the rest still dropped") {
  // Read as it arrives, in pieces: reported after a little over 400 bytes.
  auto bytes = client_frame(text, std::string(5000, 'x')) + client_frame(text, "after");
  frame_reader reader(100, 400);
  auto events = read_all(reader, bytes, 64);
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == "too_big");
  CHECK_FALSE(events[0].flag);
  CHECK(events[0].number > 400);
  CHECK(events[0].number <= 400 + 64);
  CHECK(events[1] == seen{"message", "after"});
  // All of it at once: it ended within the same read, so it is complete.
  frame_reader at_once(100, 400);
  events = read_all(at_once, bytes, bytes.size());
  REQUIRE(events.size() == 2);
  CHECK(events[0] == seen{"too_big", "", 5000, true});
}

TEST_CASE("a frame cut by a read says how much it still needs") {
  auto bytes = client_frame(text, std::string(900, 'x'));
  frame_reader reader(1000, 4000);
  auto step = reader.next(bytes.data(), 10);
  CHECK(step.consumed == 0);
  CHECK(std::holds_alternative<read_event::need_more>(step.event));
  CHECK(reader.wanted() == bytes.size());
}
