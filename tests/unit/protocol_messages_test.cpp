#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "domain/room_name.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"

using namespace sig::protocol;
using sig::domain::leave_reason;

namespace {

template <typename T>
T parse_ok(std::string_view frame, limits const& lim = {}) {
  auto result = parse_client_message(frame, lim);
  if (auto const* err = std::get_if<parse_error>(&result)) {
    INFO("frame: " << frame);
    FAIL("refused: " << to_string(err->code) << ": " << err->message);
  }
  auto const& message = std::get<client_message>(result);
  REQUIRE(std::holds_alternative<T>(message));
  return std::get<T>(message);
}

parse_error parse_err(std::string_view frame, limits const& lim = {}) {
  auto result = parse_client_message(frame, lim);
  INFO("frame: " << frame.substr(0, 200));
  REQUIRE(std::holds_alternative<parse_error>(result));
  return std::get<parse_error>(result);
}

void check_refused(std::string_view frame, error_code code, request_id const& id = std::nullopt,
                   limits const& lim = {}) {
  INFO("frame: " << frame.substr(0, 200));
  auto err = parse_err(frame, lim);
  CHECK(to_string(err.code) == to_string(code));
  CHECK(err.id == id);
  CHECK_FALSE(err.message.empty());
  CHECK(err.message.size() <= 80);
}

// A frame this codec produced, read back with the strict parser. It owns the
// text, on the heap so that moving it keeps the document's views valid.
struct read_back {
  explicit read_back(std::string frame)
      : text(std::make_unique<std::string>(std::move(frame))), doc(json::parse(*text, 64)) {
    INFO("frame: " << *text);
    REQUIRE(doc.ok());
    REQUIRE(doc.root.kind == json::kind::object);
  }
  std::unique_ptr<std::string> text;
  json::document doc;
};

std::string string_field(read_back const& frame, std::string_view key) {
  auto const* v = frame.doc.object.find(key);
  INFO("key: " << key);
  REQUIRE(v);
  REQUIRE(v->kind == json::kind::string);
  return v->text;
}

std::string_view raw_field(read_back const& frame, std::string_view key) {
  auto const* v = frame.doc.object.find(key);
  INFO("key: " << key);
  REQUIRE(v);
  return v->raw;
}

std::string join_frame(std::string_view room_json) {
  return R"({"type":"join","room":)" + std::string(room_json) + "}";
}

// `{"k":"xxx"}` of exactly `size` bytes (size >= 8).
std::string object_of_size(std::size_t size) {
  return R"({"k":")" + std::string(size - 8, 'x') + R"("})";
}

}  // namespace

// --- Frames that are not a request at all. --------------------------------

TEST_CASE("messages: a frame that is not JSON is a bad request", "[messages]") {
  for (std::string_view frame : {"", " ", "hello", "{", R"({"type":"join")", R"({"type":"leave"}x)",
                                 R"({"type":"leave"}{})", R"({type:"leave"})", R"({'type':'leave'})",
                                 R"({"type":"leave",})", "\xEF\xBB\xBF{\"type\":\"leave\"}"}) {
    check_refused(frame, error_code::bad_request);
  }
}

TEST_CASE("messages: a JSON value other than an object is a bad request", "[messages]") {
  for (std::string_view frame : {"[]", R"([{"type":"leave"}])", "42", "-1.5", R"("leave")", "null",
                                 "true", "false"}) {
    check_refused(frame, error_code::bad_request);
  }
}

TEST_CASE("messages: invalid UTF-8 anywhere in the frame is a bad request", "[messages]") {
  // A WebSocket text frame must be UTF-8, and the JSON parser refuses strings
  // that are not, so these never reach the room-name check.
  check_refused(join_frame("\"\xFF\""), error_code::bad_request);
  check_refused(join_frame("\"a\xC0\xAF\""), error_code::bad_request);
  check_refused(join_frame("\"\xED\xA0\x80\""), error_code::bad_request);
  check_refused(join_frame(R"("\uD800")"), error_code::bad_request);
  check_refused(join_frame(R"("a\uDC00b")"), error_code::bad_request);
  check_refused("{\"type\":\"signal\",\"data\":\"\xFE\"}", error_code::bad_request);
  check_refused(R"({"type":"signal","data":{"x":"\uDBFF"}})", error_code::bad_request);
  check_refused("{\"type\":\"leave\",\"junk\":\"\xC3\"}", error_code::bad_request);
}

TEST_CASE("messages: control characters inside strings must be escaped", "[messages]") {
  check_refused("{\"type\":\"join\",\"room\":\"a\nb\"}", error_code::bad_request);
  auto req = parse_ok<join_request>(R"({"type":"join","room":"a\nb"})");
  CHECK(req.room == "a\nb");
}

// --- type. ---------------------------------------------------------------

TEST_CASE("messages: type is required and must be a string", "[messages]") {
  check_refused("{}", error_code::bad_request);
  check_refused(R"({"room":"demo"})", error_code::bad_request);
  for (std::string_view type : {"1", "null", "true", "[]", R"(["join"])", R"({"join":1})"}) {
    check_refused(R"({"type":)" + std::string(type) + "}", error_code::bad_request);
  }
  check_refused(R"({"type":null,"id":5})", error_code::bad_request, "5");
  check_refused(R"({"id":"x"})", error_code::bad_request, "\"x\"");
  CHECK(parse_err("{}").message == "missing type");
}

TEST_CASE("messages: an unknown type is a bad request naming it", "[messages]") {
  for (std::string_view type : {"JOIN", "Join", "joined", "", "join ", "ping", "ack", "error"}) {
    auto err = parse_err(R"({"type":")" + std::string(type) + R"("})");
    CHECK(err.code == error_code::bad_request);
    CHECK(err.message == "unknown type: " + std::string(type));
  }
  check_refused(R"({"type":"nope","id":9})", error_code::bad_request, "9");
}

TEST_CASE("messages: an unknown type is truncated in the message", "[messages]") {
  std::string long_type(1000, 'q');
  auto err = parse_err(R"({"type":")" + long_type + R"("})");
  CHECK(err.message == "unknown type: " + std::string(40, 'q') + "...");

  // A 4-byte character straddling byte 40 is dropped whole, not cut.
  std::string type = std::string(38, 'a') + "\xF0\x9F\x98\x80" + "tail";
  err = parse_err(R"({"type":")" + type + R"("})");
  CHECK(err.message == "unknown type: " + std::string(38, 'a') + "...");
  CHECK(sig::domain::is_valid_utf8(err.message));

  // Exactly 40 bytes: shown whole.
  std::string forty(40, 'z');
  CHECK(parse_err(R"({"type":")" + forty + R"("})").message == "unknown type: " + forty);
}

TEST_CASE("messages: an unknown type with hostile characters stays json-safe", "[messages]") {
  auto err = parse_err(R"({"type":"a\"b\\c\n\u0000\u001b</script>"})");
  CHECK(err.code == error_code::bad_request);
  auto frame = error_message(err.id, err.code, err.message);
  read_back doc(frame);
  CHECK(string_field(doc, "message") == err.message);
  CHECK(string_field(doc, "code") == "bad-request");
}

// --- id. -----------------------------------------------------------------

TEST_CASE("messages: id is kept as the raw JSON the client wrote", "[messages]") {
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":1})").id == "1");
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":-1.5e3})").id == "-1.5e3");
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":"abc"})").id == "\"abc\"");
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":"a\u00e9\n"})").id == R"("a\u00e9\n")");
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":""})").id == "\"\"");
  CHECK(parse_ok<leave_request>(R"({"id":42,"type":"leave"})").id == "42");
  CHECK(parse_ok<leave_request>(R"({"type":"leave"})").id == std::nullopt);
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":1,"id":"two"})").id == "\"two\"");
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"r","id":7})").id == "7");
  CHECK(parse_ok<signal_request>(R"({"type":"signal","data":1,"id":"s1"})").id == "\"s1\"");
}

TEST_CASE("messages: an id of another type is a bad request without an id", "[messages]") {
  for (std::string_view id : {"null", "true", "false", "[]", "[1]", "{}", R"({"a":1})"}) {
    check_refused(R"({"type":"leave","id":)" + std::string(id) + "}", error_code::bad_request);
    check_refused(R"({"type":"join","room":"demo","id":)" + std::string(id) + "}",
                  error_code::bad_request);
    // The id check comes first, so a broken id is reported even with other errors.
    check_refused(R"({"type":"nope","id":)" + std::string(id) + "}", error_code::bad_request);
  }
}

TEST_CASE("messages: every error after the id is read carries the id", "[messages]") {
  check_refused(R"({"id":3})", error_code::bad_request, "3");
  check_refused(R"({"type":7,"id":3})", error_code::bad_request, "3");
  check_refused(R"({"type":"x","id":3})", error_code::bad_request, "3");
  check_refused(R"({"type":"join","id":"j"})", error_code::bad_request, "\"j\"");
  check_refused(R"({"type":"join","room":1,"id":"j"})", error_code::bad_request, "\"j\"");
  check_refused(R"({"type":"join","room":"","id":"j"})", error_code::invalid_room, "\"j\"");
  check_refused(R"({"type":"join","room":"r","meta":[],"id":"j"})", error_code::bad_request,
                "\"j\"");
  check_refused(R"({"type":"join","room":"r","token":1,"id":"j"})", error_code::bad_request,
                "\"j\"");
  check_refused(R"({"type":"join","room":"r","resume":{},"id":"j"})", error_code::bad_request,
                "\"j\"");
  check_refused(R"({"type":"signal","id":1})", error_code::bad_request, "1");
  check_refused(R"({"type":"signal","to":5,"data":1,"id":1})", error_code::bad_request, "1");
  check_refused(R"({"type":"signal","to":"","data":1,"id":1})", error_code::bad_request, "1");

  limits small;
  small.max_meta_bytes = 10;
  small.max_data_bytes = 10;
  check_refused(R"({"type":"join","room":"r","meta":{"a":"0123456789"},"id":2})",
                error_code::too_large, "2", small);
  check_refused(R"({"type":"signal","data":"0123456789","id":2})", error_code::too_large, "2",
                small);
}

TEST_CASE("messages: a frame that fails JSON validation carries no id", "[messages]") {
  // Nothing of a frame that could not be read is trusted, the id included.
  check_refused(R"({"type":"leave","id":1,})", error_code::bad_request);
  check_refused(R"({"type":"signal","data":[[[[[]]]]],"id":1})", error_code::bad_request,
                std::nullopt, limits{4096, 65536, 4});
}

// --- join. ---------------------------------------------------------------

TEST_CASE("messages: a minimal join", "[messages]") {
  auto req = parse_ok<join_request>(R"({"type":"join","room":"demo"})");
  CHECK(req.room == "demo");
  CHECK(req.meta_json == "{}");
  CHECK(req.token == std::nullopt);
  CHECK(req.resume == std::nullopt);
  CHECK(req.id == std::nullopt);
}

TEST_CASE("messages: the docs/protocol.md join example", "[messages]") {
  auto req = parse_ok<join_request>(R"({"type":"join","room":"demo","meta":{"name":"ana"},"id":1})");
  CHECK(req.room == "demo");
  CHECK(req.meta_json == R"({"name":"ana"})");
  CHECK(req.id == "1");
}

TEST_CASE("messages: a full join", "[messages]") {
  auto req = parse_ok<join_request>(
      R"({ "type" : "join" , "room":"d\u00e9mo", "meta": { "name" : "ana", "n": [1, 2] },)"
      R"( "token":"t\/k", "resume":"r-1", "extra":{"ignored":[true]}, "id":"j1" })");
  CHECK(req.room == "d\xC3\xA9mo");
  CHECK(req.meta_json == R"({ "name" : "ana", "n": [1, 2] })");  // verbatim
  CHECK(req.token == "t/k");
  CHECK(req.resume == "r-1");
  CHECK(req.id == "\"j1\"");
}

TEST_CASE("messages: hostile-looking room names are valid room names", "[messages]") {
  struct sample {
    std::string json;
    std::string name;
  };
  std::vector<sample> samples = {
      {R"("a.b")", "a.b"},
      {R"("*")", "*"},
      {R"(">")", ">"},
      {R"("a b")", "a b"},
      {R"("rooms.>")", "rooms.>"},
      {R"("a/b\\c")", "a/b\\c"},
      {R"("..")", ".."},
      {R"(" ")", " "},
      {R"("\t")", "\t"},
      {R"("\u0000")", std::string(1, '\0')},
      {"\"\xF0\x9F\x8E\x89 party\"", "\xF0\x9F\x8E\x89 party"},
      {R"("\ud83c\udf89")", "\xF0\x9F\x8E\x89"},
      {R"("$SYS.>")", "$SYS.>"},
  };
  for (auto const& s : samples) {
    INFO(s.json);
    CHECK(parse_ok<join_request>(join_frame(s.json)).room == s.name);
  }
}

TEST_CASE("messages: room names are 1 to 200 bytes", "[messages]") {
  CHECK(parse_ok<join_request>(join_frame("\"a\"")).room == "a");
  CHECK(parse_ok<join_request>(join_frame('"' + std::string(200, 'r') + '"')).room.size() == 200);
  check_refused(join_frame('"' + std::string(201, 'r') + '"'), error_code::invalid_room);
  check_refused(join_frame("\"\""), error_code::invalid_room);

  // Bytes, not characters: 100 two-byte characters fit, one more does not.
  std::string e_acute;
  for (int i = 0; i < 100; ++i) e_acute += "\xC3\xA9";
  CHECK(parse_ok<join_request>(join_frame('"' + e_acute + '"')).room == e_acute);
  check_refused(join_frame('"' + e_acute + "\xC3\xA9\""), error_code::invalid_room);
  check_refused(join_frame('"' + e_acute + "x\""), error_code::invalid_room);

  // Bytes after decoding: 200 escaped characters are 200 bytes, not 1200.
  std::string escaped;
  for (int i = 0; i < 200; ++i) escaped += "\\u0041";
  CHECK(parse_ok<join_request>(join_frame('"' + escaped + '"')).room == std::string(200, 'A'));
  check_refused(join_frame('"' + escaped + "\\u0041\""), error_code::invalid_room);

  // 50 emoji are 200 bytes.
  std::string emoji;
  for (int i = 0; i < 50; ++i) emoji += "\xF0\x9F\x98\x80";
  CHECK(parse_ok<join_request>(join_frame('"' + emoji + '"')).room == emoji);
  check_refused(join_frame('"' + emoji + "!\""), error_code::invalid_room);
}

TEST_CASE("messages: room is required and must be a string", "[messages]") {
  check_refused(R"({"type":"join"})", error_code::bad_request);
  check_refused(R"({"type":"join","meta":{}})", error_code::bad_request);
  for (std::string_view room : {"1", "null", "true", "[]", R"(["demo"])", R"({"name":"demo"})"}) {
    check_refused(join_frame(room), error_code::bad_request);
  }
}

TEST_CASE("messages: meta must be an object", "[messages]") {
  for (std::string_view meta : {"null", "1", R"("x")", "[]", R"([{"a":1}])", "true"}) {
    check_refused(R"({"type":"join","room":"r","meta":)" + std::string(meta) + "}",
                  error_code::bad_request);
  }
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"r","meta":{}})").meta_json == "{}");
}

TEST_CASE("messages: meta at its limit passes, one byte more is too large", "[messages]") {
  limits lim;
  std::string at_limit = object_of_size(lim.max_meta_bytes);
  REQUIRE(at_limit.size() == 4096);
  auto req = parse_ok<join_request>(R"({"type":"join","room":"r","meta":)" + at_limit + "}");
  CHECK(req.meta_json == at_limit);
  check_refused(R"({"type":"join","room":"r","meta":)" + object_of_size(4097) + "}",
                error_code::too_large);

  // Whitespace is part of the serialized size: it is forwarded verbatim.
  limits small;
  small.max_meta_bytes = 9;
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"r","meta":{"a":123}})", small).meta_json ==
        R"({"a":123})");
  check_refused(R"({"type":"join","room":"r","meta":{ "a":123}})", error_code::too_large,
                std::nullopt, small);
}

TEST_CASE("messages: token and resume are optional strings", "[messages]") {
  auto req = parse_ok<join_request>(R"({"type":"join","room":"r","token":"","resume":"abc"})");
  CHECK(req.token == "");
  CHECK(req.resume == "abc");
  for (std::string_view bad : {"null", "1", "{}", "[]", "false"}) {
    check_refused(R"({"type":"join","room":"r","token":)" + std::string(bad) + "}",
                  error_code::bad_request);
    check_refused(R"({"type":"join","room":"r","resume":)" + std::string(bad) + "}",
                  error_code::bad_request);
  }
}

TEST_CASE("messages: an empty resume is no resume; last_seq is a non-negative integer", "[messages][resume]") {
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"r","resume":""})").resume == std::nullopt);
  auto req = parse_ok<join_request>(R"({"type":"join","room":"r","resume":"t","last_seq":18446744073709551615})");
  CHECK(req.last_seq == 18446744073709551615ull);
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"r","last_seq":0})").last_seq == 0u);
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"r"})").last_seq == std::nullopt);
  for (std::string_view bad : {"-1", "1.5", "1e3", "18446744073709551616", "\"7\"", "null", "[]"})
    check_refused(R"({"type":"join","room":"r","resume":"t","last_seq":)" + std::string(bad) + "}",
                  error_code::bad_request);
}

// --- signal. -------------------------------------------------------------

TEST_CASE("messages: the docs/protocol.md signal example", "[messages]") {
  auto req = parse_ok<signal_request>(
      R"({"type":"signal","to":"p3Xz9","data":{"sdp":{"type":"offer","sdp":"v=0..."}}})");
  CHECK(req.to == "p3Xz9");
  CHECK(req.data_json == R"({"sdp":{"type":"offer","sdp":"v=0..."}})");
  CHECK(req.id == std::nullopt);
}

TEST_CASE("messages: signal data is any JSON value, kept verbatim", "[messages]") {
  for (std::string_view data : {"null", "true", "false", "0", "-1.5e-3", R"("text")", "[]",
                                R"([1, "two", {"three": 3}])", "{}", R"({ "a" : [ ] })",
                                R"("\u00e9\ud83d\ude00")"}) {
    auto req = parse_ok<signal_request>(R"({"type":"signal","data":)" + std::string(data) + "}");
    CHECK(req.data_json == data);
    CHECK(req.to == std::nullopt);
  }
}

TEST_CASE("messages: signal needs data", "[messages]") {
  check_refused(R"({"type":"signal"})", error_code::bad_request);
  check_refused(R"({"type":"signal","to":"p1"})", error_code::bad_request);
  check_refused(R"({"type":"signal","Data":1})", error_code::bad_request);
}

TEST_CASE("messages: signal to is an optional, non-empty string", "[messages]") {
  CHECK(parse_ok<signal_request>(R"({"type":"signal","to":"p1","data":1})").to == "p1");
  check_refused(R"({"type":"signal","to":"","data":1})", error_code::bad_request);
  for (std::string_view to : {"null", "1", "[]", R"(["p1"])", "{}", "true"}) {
    check_refused(R"({"type":"signal","to":)" + std::string(to) + R"(,"data":1})",
                  error_code::bad_request);
  }
}

TEST_CASE("messages: data at its limit passes, one byte more is too large", "[messages]") {
  limits lim;
  std::string at_limit = object_of_size(lim.max_data_bytes);
  REQUIRE(at_limit.size() == 65536);
  CHECK(parse_ok<signal_request>(R"({"type":"signal","data":)" + at_limit + "}").data_json ==
        at_limit);
  check_refused(R"({"type":"signal","data":)" + object_of_size(65537) + "}", error_code::too_large);

  std::string string_at_limit = '"' + std::string(65534, 's') + '"';
  CHECK(parse_ok<signal_request>(R"({"type":"signal","data":)" + string_at_limit + "}")
            .data_json.size() == 65536);
  check_refused(R"({"type":"signal","data":")" + std::string(65535, 's') + "\"}",
                error_code::too_large);
}

TEST_CASE("messages: a sender cannot claim another identity", "[messages]") {
  // `from` is not a request field: whatever the client puts there is ignored.
  auto req = parse_ok<signal_request>(R"({"type":"signal","from":"someone-else","data":1})");
  CHECK(req.data_json == "1");
  CHECK(req.to == std::nullopt);
}

// --- leave. ----------------------------------------------------------------

TEST_CASE("messages: leave has no fields", "[messages]") {
  CHECK(parse_ok<leave_request>(R"({"type":"leave"})").id == std::nullopt);
  CHECK(parse_ok<leave_request>(R"({"type":"leave","id":"bye"})").id == "\"bye\"");
  CHECK(parse_ok<leave_request>(R"({"type":"leave","room":123,"data":[]})").id == std::nullopt);
}

// --- Cross-cutting rules. --------------------------------------------------

TEST_CASE("messages: unknown fields are ignored", "[messages]") {
  CHECK(parse_ok<join_request>(
            R"({"v":2,"type":"join","room":"r","x":{"deep":[1,{"y":null}]},"meta":{},"z":"w"})")
            .room == "r");
  CHECK(parse_ok<signal_request>(R"({"type":"signal","data":1,"seq":99,"peers":[]})").data_json ==
        "1");
}

TEST_CASE("messages: the last of duplicate fields wins", "[messages]") {
  CHECK(parse_ok<join_request>(R"({"type":"join","room":"a","room":"b"})").room == "b");
  CHECK(std::holds_alternative<leave_request>(std::get<client_message>(
      parse_client_message(R"({"type":"join","type":"leave"})"))));
  check_refused(R"({"type":"join","room":"ok","room":1})", error_code::bad_request);
}

TEST_CASE("messages: nesting beyond max_nesting is a bad request", "[messages]") {
  limits lim;
  REQUIRE(lim.max_nesting == 64);
  // The frame's own object is one level, so data may nest 63 deep.
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(parse_ok<signal_request>(R"({"type":"signal","data":)" + nested(63) + "}").data_json ==
        nested(63));
  check_refused(R"({"type":"signal","data":)" + nested(64) + "}", error_code::bad_request);
  check_refused(R"({"type":"join","room":"r","meta":{"a":)" + nested(63) + "}}",
                error_code::bad_request);
  // Unknown fields are ignored, but still bounded.
  check_refused(R"({"type":"leave","junk":)" + nested(64) + "}", error_code::bad_request);
}

TEST_CASE("messages: hostile nesting does not crash", "[messages]") {
  std::string opens(100000, '[');
  check_refused(opens, error_code::bad_request);
  check_refused(R"({"type":"signal","data":)" + opens, error_code::bad_request);
  check_refused(R"({"type":"signal","data":)" + opens + std::string(100000, ']') + "}",
                error_code::bad_request);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  check_refused(objects, error_code::bad_request);
}

TEST_CASE("messages: error messages never echo client data", "[messages]") {
  std::string const secret = "s3cr3t";
  for (std::string frame : {
           R"({"type":"join","room":"s3cr3t)" + std::string(300, 'x') + R"("})",
           std::string(R"({"type":"join","room":"s3cr3t","meta":"s3cr3t"})"),
           std::string(R"({"type":"join","room":"s3cr3t","token":["s3cr3t"]})"),
           std::string(R"({"type":"signal","to":["s3cr3t"],"data":1})"),
           std::string(R"({"type":"signal","to":"s3cr3t"})"),
           std::string(R"({"type":["s3cr3t"]})"),
           std::string(R"({"s3cr3t":1})"),
           std::string(R"({"type":"leave","id":{"s3cr3t":1}})"),
           std::string(R"(["s3cr3t"])"),
           std::string(R"({"type":"s3cr3t)"),
       }) {
    auto err = parse_err(frame);
    INFO(frame.substr(0, 100) << " -> " << err.message);
    CHECK(err.message.find(secret) == std::string::npos);
  }
}

TEST_CASE("messages: parsing arbitrary frames never throws", "[messages]") {
  std::mt19937 rng(4242);
  std::vector<std::string> const seeds = {
      R"({"type":"join","room":"demo","meta":{"name":"ana"},"id":1})",
      R"({"type":"signal","to":"p3Xz9","data":{"sdp":{"type":"offer","sdp":"v=0..."}}})",
      R"({"type":"leave","id":"x"})",
  };
  limits small;
  small.max_meta_bytes = 12;
  small.max_data_bytes = 20;
  small.max_nesting = 3;
  for (int round = 0; round < 20000; ++round) {
    std::string frame = seeds[rng() % seeds.size()];
    for (int e = 0, edits = 1 + static_cast<int>(rng() % 3); e < edits; ++e) {
      std::size_t at = rng() % (frame.size() + 1);
      char c = "{}[]\",:\\ 0a\xFF"[rng() % 13];
      if (rng() % 2 && at < frame.size()) frame.erase(at, 1);
      else frame.insert(at, 1, c);
    }
    auto result = parse_client_message(frame, small);
    if (auto const* err = std::get_if<parse_error>(&result)) {
      // Whatever went wrong, the reply is a valid frame.
      read_back(error_message(err->id, err->code, err->message));
    }
  }
}

// --- Server to client. -----------------------------------------------------

TEST_CASE("messages: serializers match the docs/protocol.md example", "[messages]") {
  CHECK(joined_message("1", "demo", "p7Kq2", {{"p3Xz9", R"({"name":"bo"})"}}, 41, "...") ==
        R"({"type":"joined","id":1,"room":"demo","peer":"p7Kq2","peers":[{"peer":"p3Xz9","meta":{"name":"bo"}}],"seq":41,"resume":"..."})");
  CHECK(signal_message("p3Xz9", std::string("p7Kq2"), R"({"sdp":{"type":"answer","sdp":"v=0..."}})",
                       45) ==
        R"({"type":"signal","from":"p3Xz9","to":"p7Kq2","data":{"sdp":{"type":"answer","sdp":"v=0..."}},"seq":45})");
  CHECK(peer_left_message("p3Xz9", leave_reason::disconnect, 52) ==
        R"({"type":"peer-left","peer":"p3Xz9","reason":"disconnect","seq":52})");
}

TEST_CASE("messages: joined", "[messages]") {
  CHECK(joined_message(std::nullopt, "r", "me", {}, 0, "tok") ==
        R"({"type":"joined","room":"r","peer":"me","peers":[],"seq":0,"resume":"tok"})");
  CHECK(joined_message("\"a\"", "r", "me", {{"p1", "{}"}, {"p2", R"({"n":2})"}}, 7, "t") ==
        R"({"type":"joined","id":"a","room":"r","peer":"me","peers":[{"peer":"p1","meta":{}},{"peer":"p2","meta":{"n":2}}],"seq":7,"resume":"t"})");
}

TEST_CASE("messages: the instance extension adds fields only when known", "[messages]") {
  CHECK(joined_message("1", "r", "me", {{"p1", "{}", "i2"}, {"p2", "{}", ""}}, 9, "", "i1") ==
        R"({"type":"joined","id":1,"room":"r","peer":"me","instance":"i1","peers":[{"peer":"p1","meta":{},"instance":"i2"},{"peer":"p2","meta":{}}],"seq":9,"resume":""})");
  CHECK(peer_joined_message("p1", "{}", 3, "i2") == R"({"type":"peer-joined","peer":"p1","meta":{},"instance":"i2","seq":3})");
}

TEST_CASE("messages: peer-joined, peer-left, signal without to", "[messages]") {
  CHECK(peer_joined_message("p1", R"({"name":"ana"})", 3) ==
        R"({"type":"peer-joined","peer":"p1","meta":{"name":"ana"},"seq":3})");
  CHECK(peer_left_message("p1", leave_reason::leave, 4) ==
        R"({"type":"peer-left","peer":"p1","reason":"leave","seq":4})");
  CHECK(peer_left_message("p1", leave_reason::expired, 5) ==
        R"({"type":"peer-left","peer":"p1","reason":"expired","seq":5})");
  CHECK(signal_message("p1", std::nullopt, "[1,2]", 6) ==
        R"({"type":"signal","from":"p1","data":[1,2],"seq":6})");
}

TEST_CASE("messages: ack and error", "[messages]") {
  CHECK(ack_message("5", 10) == R"({"type":"ack","id":5,"seq":10})");
  CHECK(ack_message("\"x\"", 10) == R"({"type":"ack","id":"x","seq":10})");
  CHECK(ack_message(std::nullopt, 10) == R"({"type":"ack","seq":10})");
  CHECK(error_message("5", error_code::not_in_room, "join a room first") ==
        R"({"type":"error","id":5,"code":"not-in-room","message":"join a room first"})");
  CHECK(error_message(std::nullopt, error_code::rate_limited, "slow down") ==
        R"({"type":"error","code":"rate-limited","message":"slow down"})");
}

TEST_CASE("messages: every error code serializes to its docs/protocol.md name", "[messages]") {
  std::vector<std::pair<error_code, std::string>> codes = {
      {error_code::bad_request, "bad-request"},   {error_code::too_large, "too-large"},
      {error_code::invalid_room, "invalid-room"}, {error_code::not_in_room, "not-in-room"},
      {error_code::already_in_room, "already-in-room"}, {error_code::unknown_peer, "unknown-peer"},
      {error_code::unauthorized, "unauthorized"}, {error_code::room_full, "room-full"},
      {error_code::rate_limited, "rate-limited"}, {error_code::unavailable, "unavailable"},
  };
  for (auto const& [code, name] : codes) {
    auto doc = read_back(error_message(std::nullopt, code, "m"));
    CHECK(string_field(doc, "code") == name);
  }
}

TEST_CASE("messages: seq covers the whole uint64 range", "[messages]") {
  auto max = std::numeric_limits<std::uint64_t>::max();
  CHECK(ack_message("1", max) == R"({"type":"ack","id":1,"seq":18446744073709551615})");
  read_back left(peer_left_message("p", leave_reason::leave, max));
  CHECK(raw_field(left, "seq") == "18446744073709551615");
}

TEST_CASE("messages: server frames round-trip through the strict parser", "[messages]") {
  std::string const hostile = "ro\"om\\ \n\t\x01 \xF0\x9F\x98\x80 </script> \xFF";
  std::string const cleaned = "ro\"om\\ \n\t\x01 \xF0\x9F\x98\x80 </script> \xEF\xBF\xBD";

  auto joined = read_back(joined_message(R"("i\"d")", hostile, hostile,
                                         {{hostile, R"({"a":[1,{"b":null}]})"}}, 9, hostile));
  CHECK(string_field(joined, "type") == "joined");
  CHECK(raw_field(joined, "id") == R"("i\"d")");
  CHECK(string_field(joined, "room") == cleaned);
  CHECK(string_field(joined, "peer") == cleaned);
  CHECK(string_field(joined, "resume") == cleaned);
  CHECK(raw_field(joined, "seq") == "9");
  auto peers = json::parse(raw_field(joined, "peers"), 64);
  REQUIRE(peers.ok());
  CHECK(peers.root.kind == json::kind::array);
  CHECK(joined.doc.object.members()[0].key == "type");
  CHECK(joined.doc.object.members()[1].key == "id");

  auto pj = read_back(peer_joined_message(hostile, "{}", 1));
  CHECK(string_field(pj, "peer") == cleaned);

  auto pl = read_back(peer_left_message(hostile, leave_reason::expired, 2));
  CHECK(string_field(pl, "reason") == "expired");

  auto sig = read_back(signal_message(hostile, hostile, R"("payload")", 3));
  CHECK(string_field(sig, "from") == cleaned);
  CHECK(string_field(sig, "to") == cleaned);
  CHECK(string_field(sig, "data") == "payload");

  auto err = read_back(error_message("1.5", error_code::unknown_peer, hostile));
  CHECK(raw_field(err, "id") == "1.5");
  CHECK(string_field(err, "message") == cleaned);

  auto ack = read_back(ack_message("-0", 4));
  CHECK(raw_field(ack, "id") == "-0");
}

TEST_CASE("messages: what a client sends comes back out verbatim", "[messages]") {
  auto join = parse_ok<join_request>(
      R"({"type":"join","room":"r\u00e9","meta":{"name":"ana","tags":["a","\u00e9"]},"id":"q-1"})");
  auto joined = read_back(joined_message(join.id, join.room, "p1", {{"p0", join.meta_json}}, 1, "t"));
  CHECK(raw_field(joined, "id") == R"("q-1")");
  CHECK(string_field(joined, "room") == "r\xC3\xA9");

  auto pj = read_back(peer_joined_message("p1", join.meta_json, 2));
  CHECK(raw_field(pj, "meta") == R"({"name":"ana","tags":["a","\u00e9"]})");

  auto signal = parse_ok<signal_request>(R"({"type":"signal","to":"p0","data":[ 1 , "x" ],"id":8})");
  auto out = read_back(signal_message("p1", signal.to, signal.data_json, 3));
  CHECK(raw_field(out, "data") == R"([ 1 , "x" ])");
  CHECK(string_field(out, "to") == "p0");
  read_back ack(ack_message(signal.id, 3));
  CHECK(raw_field(ack, "id") == "8");
}

TEST_CASE("messages: an empty splice still yields valid JSON", "[messages]") {
  CHECK(peer_joined_message("p", "", 1) == R"({"type":"peer-joined","peer":"p","meta":{},"seq":1})");
  CHECK(signal_message("p", std::nullopt, "", 1) ==
        R"({"type":"signal","from":"p","data":null,"seq":1})");
}

// --- json_quote. -------------------------------------------------------------

TEST_CASE("json_quote: plain text is only wrapped in quotes", "[json_quote]") {
  CHECK(json_quote("") == R"("")");
  CHECK(json_quote("abc") == R"("abc")");
  CHECK(json_quote("a/b <tag> 'x' \x7F") == "\"a/b <tag> 'x' \x7F\"");
  CHECK(json_quote("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST_CASE("json_quote: quotes, backslashes and control characters are escaped", "[json_quote]") {
  CHECK(json_quote("a\"b") == R"("a\"b")");
  CHECK(json_quote("a\\b") == R"("a\\b")");
  CHECK(json_quote("\b\f\n\r\t") == R"("\b\f\n\r\t")");
  CHECK(json_quote(std::string_view("\0", 1)) == R"("\u0000")");
  CHECK(json_quote("\x01\x1f\x1b") == R"("\u0001\u001f\u001b")");
  for (int c = 0; c < 0x20; ++c) {
    std::string s(1, static_cast<char>(c));
    auto doc = json::parse(json_quote(s), 1);
    INFO(c);
    REQUIRE(doc.ok());
    CHECK(doc.root.text == s);
  }
}

TEST_CASE("json_quote: invalid UTF-8 bytes become U+FFFD", "[json_quote]") {
  std::string const fffd = "\xEF\xBF\xBD";
  CHECK(json_quote("\xFF") == '"' + fffd + '"');
  CHECK(json_quote("a\xFF" "b") == "\"a" + fffd + "b\"");
  CHECK(json_quote("\x80") == '"' + fffd + '"');
  CHECK(json_quote("\xC3") == '"' + fffd + '"');                      // truncated at the end
  CHECK(json_quote("\xC3" "A") == '"' + fffd + "A\"");                // bad continuation
  CHECK(json_quote("\xE2\x82") == '"' + fffd + fffd + '"');          // truncated, byte by byte
  CHECK(json_quote("\xC0\x80") == '"' + fffd + fffd + '"');          // overlong
  CHECK(json_quote("\xED\xA0\x80") == '"' + fffd + fffd + fffd + '"');  // surrogate
  CHECK(json_quote("\xF4\x90\x80\x80") == '"' + fffd + fffd + fffd + fffd + '"');
  CHECK(json_quote("\xFF\xC3\xA9") == '"' + fffd + "\xC3\xA9\"");  // recovers right after
}

TEST_CASE("json_quote: any byte string gives a valid JSON string", "[json_quote]") {
  std::mt19937 rng(99);
  for (int round = 0; round < 5000; ++round) {
    std::string s;
    std::size_t len = rng() % 16;
    for (std::size_t i = 0; i < len; ++i) s += static_cast<char>(rng() % 256);
    auto doc = json::parse(json_quote(s), 1);
    REQUIRE(doc.ok());
    REQUIRE(doc.root.kind == json::kind::string);
    CHECK(sig::domain::is_valid_utf8(doc.root.text));
    if (sig::domain::is_valid_utf8(s)) CHECK(doc.root.text == s);
  }
}

TEST_CASE("event_frame: the frame each kind of stored event becomes; a resume becomes none", "[messages]") {
  using namespace sig;
  domain::event joined{7, 1000, "i2", domain::peer_joined{"pa", R"({"name":"Ann"})"}};
  CHECK(protocol::event_frame(joined) == protocol::peer_joined_message("pa", R"({"name":"Ann"})", 7, "i2"));
  domain::event left{8, 1001, "i1", domain::peer_left{"pa", domain::leave_reason::expired, "i2"}};
  CHECK(protocol::event_frame(left) == protocol::peer_left_message("pa", domain::leave_reason::expired, 8));
  domain::event signal{9, 1002, "i1", domain::signal_sent{"pb", std::string("pa"), R"({"sdp":"x"})"}};
  CHECK(protocol::event_frame(signal) == protocol::signal_message("pb", std::string("pa"), R"({"sdp":"x"})", 9));
  domain::event broadcast{10, 1003, "i1", domain::signal_sent{"pb", std::nullopt, "1"}};
  CHECK(protocol::event_frame(broadcast) == protocol::signal_message("pb", std::nullopt, "1", 10));
  domain::event resumed{11, 1004, "i3", domain::peer_resumed{"pa"}};
  CHECK_FALSE(protocol::event_frame(resumed).has_value());
}
