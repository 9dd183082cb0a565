#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "protocol/json.hpp"

namespace json = sig::protocol::json;
using json::error;
using json::kind;

namespace {

json::document parse(std::string_view text, std::size_t max_depth = 64) {
  return json::parse(text, max_depth);
}

error error_of(std::string_view text, std::size_t max_depth = 64) {
  return parse(text, max_depth).error;
}

// Decoded contents of a top-level JSON string.
std::string decoded(std::string_view text) {
  auto doc = parse(text);
  REQUIRE(doc.ok());
  REQUIRE(doc.root.kind == kind::string);
  return doc.root.text;
}

}  // namespace

TEST_CASE("json: scalars at the top level", "[json]") {
  struct sample {
    std::string_view text;
    kind expected;
  };
  for (auto [text, expected] : std::vector<sample>{{"null", kind::null},
                                                   {"true", kind::boolean},
                                                   {"false", kind::boolean},
                                                   {"0", kind::number},
                                                   {"-12.5e3", kind::number},
                                                   {"\"x\"", kind::string},
                                                   {"[]", kind::array},
                                                   {"{}", kind::object}}) {
    INFO(text);
    auto doc = parse(text);
    REQUIRE(doc.ok());
    CHECK(doc.root.kind == expected);
    CHECK(doc.root.raw == text);
  }
}

TEST_CASE("json: whitespace around the value is allowed, and not part of it", "[json]") {
  auto doc = parse(" \t\r\n[ 1 , 2 ]\n ");
  REQUIRE(doc.ok());
  CHECK(doc.root.raw == "[ 1 , 2 ]");
  CHECK(parse(" \t\r\n{ \"a\" : 1 }\n ").ok());
}

TEST_CASE("json: only the four RFC whitespace characters are whitespace", "[json]") {
  CHECK(error_of("\v1") == error::syntax);
  CHECK(error_of("1\f") == error::trailing);
  CHECK(error_of("\xC2\xA0" "1") == error::syntax);  // no-break space
}

TEST_CASE("json: numbers follow the RFC 8259 grammar", "[json]") {
  for (std::string_view good : {"0", "-0", "1", "-1", "10", "1.5", "-0.25", "1e5", "1E5", "1e+5",
                                "1e-5", "-0.0e0", "123456789012345678901234567890",
                                "1.7976931348623157e308"}) {
    INFO(good);
    auto doc = parse(good);
    CHECK(doc.ok());
    CHECK(doc.root.kind == kind::number);
    CHECK(doc.root.raw == good);
  }
  for (std::string_view bad : {"01", "-01", "00", "1.", "1.e5", "-", "1e", "1e+", "1E-", "-.5"}) {
    INFO(bad);
    CHECK(error_of(bad) == error::bad_number);
  }
  for (std::string_view bad : {".5", "+1", "NaN", "Infinity", "-Infinity"}) {
    INFO(bad);
    auto e = error_of(bad);
    CHECK((e == error::syntax || e == error::bad_number));
  }
  for (std::string_view bad : {"0x10", "1.5.5", "1e5e5", "--1", "1-"}) {
    INFO(bad);
    CHECK_FALSE(parse(bad).ok());
  }
  CHECK(error_of("[01]") == error::bad_number);
  CHECK(error_of("{\"a\":1.}") == error::bad_number);
}

TEST_CASE("json: literals are exact and lower case", "[json]") {
  for (std::string_view bad : {"tru", "nul", "fals", "True", "NULL", "t", "nulll", "truefalse"}) {
    INFO(bad);
    CHECK_FALSE(parse(bad).ok());
  }
  CHECK(error_of("[true,fals]") == error::syntax);
}

TEST_CASE("json: string escapes are decoded", "[json]") {
  CHECK(decoded(R"("plain")") == "plain");
  CHECK(decoded(R"("")") == "");
  CHECK(decoded(R"("\"\\\/\b\f\n\r\t")") == "\"\\/\b\f\n\r\t");
  CHECK(decoded(R"("\u0041\u00e9\u00E9")") == "A\xC3\xA9\xC3\xA9");
  CHECK(decoded(R"("\u20ac")") == "\xE2\x82\xAC");
  CHECK(decoded(R"("\uD83D\uDE00")") == "\xF0\x9F\x98\x80");  // surrogate pair
  CHECK(decoded(R"("\uDBFF\uDFFF")") == "\xF4\x8F\xBF\xBF");  // U+10FFFF
  CHECK(decoded(R"("a\u0000b")") == std::string("a\0b", 3));
  CHECK(decoded("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"") == "caf\xC3\xA9 \xF0\x9F\x98\x80");
  CHECK(decoded("\"\x7F\"") == "\x7F");  // DEL is not a control character for JSON
}

TEST_CASE("json: bad escapes are refused", "[json]") {
  for (std::string_view bad : {R"("\x41")", R"("\a")", R"("\U0041")", R"("\')", R"("\u12")",
                               R"("\u12G4")", R"("\u")", R"("\u00")"}) {
    INFO(bad);
    CHECK(error_of(bad) == error::bad_string);
  }
  CHECK(error_of(R"("\)") == error::syntax);  // unterminated
}

TEST_CASE("json: lone surrogates are refused", "[json]") {
  for (std::string_view bad : {R"("\uD800")", R"("\uDBFF")", R"("\uDC00")", R"("\uDFFF")",
                               R"("\uD800\u0041")", R"("\uD800\uD800")", R"("\uDE00\uD83D")",
                               R"("\uD800\n")", R"("\uD800x")", R"("\uD83D\uDE0")"}) {
    INFO(bad);
    CHECK(error_of(bad) == error::bad_string);
  }
  // The same surrogate inside a nested value and in a key.
  CHECK(error_of(R"({"a":["\uD800"]})") == error::bad_string);
  CHECK(error_of(R"({"\uDC00":1})") == error::bad_string);
}

TEST_CASE("json: raw bytes in strings must be UTF-8", "[json]") {
  for (std::string_view bad : {
           "\"\xFF\"",                  // never valid
           "\"\x80\"",                  // stray continuation byte
           "\"\xC3\"",                  // truncated at the quote
           "\"\xE2\x82\"",              // truncated three-byte sequence
           "\"\xE2\x82\\n\"",           // truncated before an escape
           "\"\xC0\x80\"",              // overlong NUL
           "\"\xE0\x80\xAF\"",          // overlong '/'
           "\"\xED\xA0\x80\"",          // UTF-8-encoded surrogate
           "\"\xF4\x90\x80\x80\"",      // past U+10FFFF
           "\"ok \xC3\xA9 then \xFE\"",  // bad byte after good ones
       }) {
    INFO(bad.size());
    CHECK(error_of(bad) == error::bad_string);
  }
  CHECK(error_of("{\"k\xFF\":1}") == error::bad_string);
  CHECK(error_of("{\"a\":{\"b\":\"\xC0\xAF\"}}") == error::bad_string);
}

TEST_CASE("json: unescaped control characters in strings are refused", "[json]") {
  for (char c = 0; c < 0x20; ++c) {
    std::string text = "\"a";
    text += c;
    text += "b\"";
    INFO(static_cast<int>(c));
    CHECK(error_of(text) == error::bad_string);
  }
}

TEST_CASE("json: unterminated strings are refused", "[json]") {
  CHECK(error_of("\"abc") == error::syntax);
  CHECK(error_of("{\"a\":\"abc}") == error::syntax);
  CHECK(error_of("\"") == error::syntax);
}

TEST_CASE("json: malformed structure is a syntax error", "[json]") {
  for (std::string_view bad :
       {"", " ", "{", "}", "[", "]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "[1,]", "[,1]",
        "[1 2]", "{\"a\":1 \"b\":2}", "{1:2}", "{'a':1}", "{a:1}", "{\"a\":[}", "{\"a\":{\"b\":1]}",
        "[{]}", "{\"a\" 1}", "{\"a\"::1}", "[1,,2]", "{\"a\":1,,\"b\":2}", "{\"a\":[1,2}",
        "[\"a\":1]", "{\"a\":1", "[[[]]"}) {
    INFO(bad);
    CHECK(error_of(bad) == error::syntax);
  }
}

TEST_CASE("json: anything after the top-level value is trailing garbage", "[json]") {
  for (std::string_view bad : {"{}{}", "{} {}", "{}x", "1 2", "[]]", "{}}", "null,",
                               "\"a\"\"b\"", "true false"}) {
    INFO(bad);
    CHECK(error_of(bad) == error::trailing);
  }
  CHECK(error_of(std::string_view("{}\0", 3)) == error::trailing);
}

TEST_CASE("json: a top-level object exposes its members", "[json]") {
  auto doc = parse(R"( {"type" : "join", "n":-1.5, "o": { "x" : [1, 2] } ,"b":true,"z":null,)"
                   R"("a\u0062":"\u00e9", "arr":[ ]} )");
  REQUIRE(doc.ok());
  REQUIRE(doc.root.kind == kind::object);
  auto const& obj = doc.object;
  REQUIRE(obj.members().size() == 7);
  CHECK(obj.members()[0].key == "type");
  CHECK(obj.members()[6].key == "arr");

  auto const* type = obj.find("type");
  REQUIRE(type);
  CHECK(type->kind == kind::string);
  CHECK(type->text == "join");
  CHECK(type->raw == "\"join\"");

  auto const* n = obj.find("n");
  REQUIRE(n);
  CHECK(n->kind == kind::number);
  CHECK(n->raw == "-1.5");

  auto const* o = obj.find("o");
  REQUIRE(o);
  CHECK(o->kind == kind::object);
  CHECK(o->raw == R"({ "x" : [1, 2] })");  // verbatim, inner whitespace kept

  CHECK(obj.find("b")->kind == kind::boolean);
  CHECK(obj.find("z")->kind == kind::null);
  CHECK(obj.find("arr")->kind == kind::array);
  CHECK(obj.find("arr")->raw == "[ ]");

  auto const* ab = obj.find("ab");  // key given with an escape
  REQUIRE(ab);
  CHECK(ab->text == "\xC3\xA9");
  CHECK(ab->raw == R"("\u00e9")");

  CHECK(obj.find("missing") == nullptr);
  CHECK(obj.find("Type") == nullptr);
}

TEST_CASE("json: with duplicate keys the last one wins", "[json]") {
  auto doc = parse(R"({"a":1,"b":2,"a":"three"})");
  REQUIRE(doc.ok());
  CHECK(doc.object.members().size() == 3);
  auto const* a = doc.object.find("a");
  REQUIRE(a);
  CHECK(a->kind == kind::string);
  CHECK(a->text == "three");
}

TEST_CASE("json: members are only exposed for a top-level object", "[json]") {
  auto doc = parse(R"([{"a":1}])");
  REQUIRE(doc.ok());
  CHECK(doc.root.kind == kind::array);
  CHECK(doc.object.members().empty());
  CHECK(doc.object.find("a") == nullptr);
}

TEST_CASE("json: nesting depth is bounded", "[json]") {
  CHECK(error_of("[[[]]]", 3) == error::none);
  CHECK(error_of("[[[[]]]]", 3) == error::too_deep);
  CHECK(error_of(R"({"a":[{}]})", 3) == error::none);
  CHECK(error_of(R"({"a":[{"b":[]}]})", 3) == error::too_deep);
  CHECK(error_of(R"({"a":[[1]],"b":2})", 3) == error::none);
  CHECK(error_of(R"({"a":[[[1]]],"b":2})", 3) == error::too_deep);
  CHECK(error_of("{}", 1) == error::none);
  CHECK(error_of("{}", 0) == error::too_deep);
  CHECK(error_of("[]", 0) == error::too_deep);
  CHECK(error_of("1", 0) == error::none);
  // Siblings do not add up: depth is nesting, not count.
  CHECK(error_of("[[],[],[[]],[]]", 3) == error::none);
}

TEST_CASE("json: hostile nesting is refused without deep recursion", "[json]") {
  std::string opens(100000, '[');
  CHECK(error_of(opens) == error::too_deep);
  CHECK(error_of(opens + std::string(100000, ']')) == error::too_deep);
  CHECK(error_of("{\"data\":" + opens) == error::too_deep);

  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  CHECK(error_of(objects) == error::too_deep);

  // Even with the limit lifted the parser keeps no call stack per level.
  CHECK(error_of(opens + std::string(100000, ']'), 1000000) == error::none);
  CHECK(error_of(opens, 1000000) == error::syntax);
}

TEST_CASE("json: error offset points at the problem", "[json]") {
  auto doc = parse("[1, 2, x]");
  CHECK(doc.error == error::syntax);
  CHECK(doc.error_offset == 7);
  CHECK(parse("{} x").error_offset == 3);
  CHECK(parse("\"ab\xFF\"").error_offset == 1);
}

TEST_CASE("json: random bytes never crash the parser", "[json]") {
  std::mt19937 rng(12345);
  std::string_view alphabet = "{}[]:,\"\\ 0123456789-+.eEtrufalsn\xC3\xA9\xFF\x01u";
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    std::size_t len = rng() % 24;
    for (std::size_t i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
    auto doc = parse(text, 8);
    if (doc.ok()) {
      // A valid document is exactly its root, minus surrounding whitespace.
      auto first = text.find_first_not_of(" ");
      auto last = text.find_last_not_of(" ");
      CHECK(doc.root.raw == std::string_view(text).substr(first, last - first + 1));
    } else {
      CHECK(doc.error_offset <= text.size());
    }
  }
}

TEST_CASE("json: mutations of a valid frame never crash the parser", "[json]") {
  std::string const base =
      R"({"type":"signal","to":"p1","data":{"sdp":"v=0\r\n","c":[1,-2.5e3,true,null,"\u00e9\uD83D\uDE00"]},"id":7})";
  REQUIRE(parse(base).ok());
  std::mt19937 rng(777);
  for (int round = 0; round < 20000; ++round) {
    std::string text = base;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[at] = static_cast<char>(rng() % 256); break;
        case 1: text.erase(at, 1); break;
        default: text.insert(at, 1, static_cast<char>(rng() % 256)); break;
      }
      if (text.empty()) text = "x";
    }
    auto doc = parse(text, 4);
    if (doc.ok() && doc.root.kind == kind::object) {
      for (auto const& m : doc.object.members()) {
        CHECK(json::parse(m.value.raw, 4).ok());  // every raw span is itself valid JSON
      }
    }
  }
}
