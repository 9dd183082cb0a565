#pragma once
// A strict JSON (RFC 8259) reader for untrusted client frames.
//
// The protocol only ever needs the members of one top-level object, and
// forwards nested values (`meta`, `data`) as they were written. So the parser
// builds no tree: it validates the whole text, and for a top-level object
// records each member's decoded key, its kind, its raw text and, for strings,
// the decoded string. Nested values are validated, never materialized.
//
// Nesting is tracked on an explicit stack bounded by max_depth, so hostile
// input costs a few bytes of heap, never call-stack frames.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sig::protocol::json {

enum class kind { null, boolean, number, string, array, object };

enum class error {
  none,
  syntax,    // unexpected character or end of input
  too_deep,  // arrays/objects nested beyond max_depth
  bad_string,  // control character, bad escape, lone surrogate, invalid UTF-8
  bad_number,  // number outside the RFC 8259 grammar (leading zero, "1.", "-", ...)
  trailing,    // something after the top-level value
};

std::string_view to_string(error e);

struct value {
  json::kind kind = json::kind::null;
  std::string_view raw;  // the value's exact text, a span of the parsed input
  std::string text;      // decoded contents (valid UTF-8) when kind == string
};

struct member {
  std::string key;  // decoded
  json::value value;
};

class object_view {
 public:
  // With duplicate keys the last one wins, as in JavaScript's JSON.parse.
  value const* find(std::string_view key) const;
  std::vector<member> const& members() const { return members_; }

 private:
  friend class parser;
  std::vector<member> members_;
};

// Views into the parsed text: it must outlive the document.
struct document {
  json::error error = json::error::none;
  std::size_t error_offset = 0;  // byte offset where the error was found
  value root;
  object_view object;  // the members of root when root.kind == object

  bool ok() const { return error == json::error::none; }
};

// max_depth counts containers: `{}` has depth 1, `{"a":[1]}` depth 2.
document parse(std::string_view text, std::size_t max_depth);

}  // namespace sig::protocol::json
