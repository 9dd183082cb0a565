#include "protocol/json.hpp"

#include <cstdint>

#include "domain/room_name.hpp"

namespace sig::protocol::json {

std::string_view to_string(error e) {
  switch (e) {
    case error::none: return "none";
    case error::syntax: return "syntax error";
    case error::too_deep: return "nesting too deep";
    case error::bad_string: return "invalid string";
    case error::bad_number: return "invalid number";
    case error::trailing: return "trailing data";
  }
  return "syntax error";
}

value const* object_view::find(std::string_view key) const {
  for (auto it = members_.rbegin(); it != members_.rend(); ++it)
    if (it->key == key) return &it->value;
  return nullptr;
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char closer(char open) { return open == '{' ? '}' : ']'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

// Not in the anonymous namespace: object_view befriends it by this name.
class parser {
 public:
  parser(std::string_view text, std::size_t max_depth) : in_(text), max_depth_(max_depth) {}

  document run() {
    document doc;
    skip_space();
    if (!at_end() && in_[pos_] == '{') {
      top_object(doc);
    } else {
      read_value(0, doc.root);
    }
    if (ok()) {
      skip_space();
      if (!at_end()) fail(error::trailing);
    }
    doc.error = error_;
    doc.error_offset = error_offset_;
    return doc;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  std::size_t max_depth_;
  error error_ = error::none;
  std::size_t error_offset_ = 0;

  bool at_end() const { return pos_ >= in_.size(); }
  bool ok() const { return error_ == error::none; }

  bool fail(error e) {
    if (ok()) {
      error_ = e;
      error_offset_ = pos_;
    }
    return false;
  }

  void skip_space() {
    while (!at_end() && is_space(in_[pos_])) ++pos_;
  }

  bool expect(char c) {
    skip_space();
    if (at_end() || in_[pos_] != c) return fail(error::syntax);
    ++pos_;
    return true;
  }

  // The one place that keeps what it reads: members of the top-level object.
  void top_object(document& doc) {
    std::size_t start = pos_;
    doc.root.kind = kind::object;
    if (max_depth_ < 1) {
      fail(error::too_deep);
      return;
    }
    ++pos_;
    skip_space();
    if (!at_end() && in_[pos_] == '}') {
      ++pos_;
    } else {
      for (;;) {
        member m;
        skip_space();
        if (at_end() || in_[pos_] != '"') {
          fail(error::syntax);
          return;
        }
        if (!read_string(&m.key) || !expect(':') || !read_value(1, m.value)) return;
        doc.object.members_.push_back(std::move(m));
        skip_space();
        if (at_end()) {
          fail(error::syntax);
          return;
        }
        char c = in_[pos_++];
        if (c == '}') break;
        if (c != ',') {
          --pos_;
          fail(error::syntax);
          return;
        }
      }
    }
    doc.root.raw = in_.substr(start, pos_ - start);
  }

  // One value with `depth` containers already open around it.
  bool read_value(std::size_t depth, value& v) {
    skip_space();
    if (at_end()) return fail(error::syntax);
    std::size_t start = pos_;
    char c = in_[pos_];
    bool good;
    switch (c) {
      case '"': v.kind = kind::string; good = read_string(&v.text); break;
      case '{': v.kind = kind::object; good = skip_container(depth); break;
      case '[': v.kind = kind::array; good = skip_container(depth); break;
      case 't': v.kind = kind::boolean; good = read_literal("true"); break;
      case 'f': v.kind = kind::boolean; good = read_literal("false"); break;
      case 'n': v.kind = kind::null; good = read_literal("null"); break;
      default:
        if (c != '-' && !is_digit(c)) return fail(error::syntax);
        v.kind = kind::number;
        good = read_number();
    }
    if (good) v.raw = in_.substr(start, pos_ - start);
    return good;
  }

  bool read_scalar() {
    switch (in_[pos_]) {
      case '"': return read_string(nullptr);
      case 't': return read_literal("true");
      case 'f': return read_literal("false");
      case 'n': return read_literal("null");
      default:
        if (in_[pos_] != '-' && !is_digit(in_[pos_])) return fail(error::syntax);
        return read_number();
    }
  }

  // An object key and its colon, inside a skipped container.
  bool skip_key() {
    skip_space();
    if (at_end() || in_[pos_] != '"') return fail(error::syntax);
    return read_string(nullptr) && expect(':');
  }

  // Validates the array or object at pos_ without keeping anything. `open`
  // holds one byte per open container: that is the whole parser state, so
  // nesting needs no recursion.
  bool skip_container(std::size_t depth) {
    std::string open;
    for (;;) {
      skip_space();
      if (at_end()) return fail(error::syntax);
      char c = in_[pos_];
      if (c == '{' || c == '[') {
        if (depth + open.size() >= max_depth_) return fail(error::too_deep);
        ++pos_;
        skip_space();
        if (at_end() || in_[pos_] != closer(c)) {
          open += c;
          if (c == '{' && !skip_key()) return false;
          continue;  // read the first element
        }
        ++pos_;  // empty container: a complete value
      } else if (!read_scalar()) {
        return false;
      }
      // A value is complete: close the containers it completes, then move on
      // to the next element.
      for (;;) {
        if (open.empty()) return true;
        skip_space();
        if (at_end()) return fail(error::syntax);
        char next = in_[pos_];
        if (next == closer(open.back())) {
          ++pos_;
          open.pop_back();
          continue;
        }
        if (next != ',') return fail(error::syntax);
        ++pos_;
        if (open.back() == '{' && !skip_key()) return false;
        break;
      }
    }
  }

  bool read_literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return fail(error::syntax);
    pos_ += word.size();
    return true;
  }

  bool read_digits() {
    if (at_end() || !is_digit(in_[pos_])) return fail(error::bad_number);
    while (!at_end() && is_digit(in_[pos_])) ++pos_;
    return true;
  }

  bool read_number() {
    if (in_[pos_] == '-') ++pos_;
    if (at_end()) return fail(error::bad_number);
    if (in_[pos_] == '0') {
      ++pos_;
      if (!at_end() && is_digit(in_[pos_])) return fail(error::bad_number);
    } else if (!read_digits()) {
      return false;
    }
    if (!at_end() && in_[pos_] == '.') {
      ++pos_;
      if (!read_digits()) return false;
    }
    if (!at_end() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (!at_end() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (!read_digits()) return false;
    }
    return true;
  }

  bool read_hex4(std::uint32_t& cp) {
    if (in_.size() - pos_ < 4) return fail(error::bad_string);
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex_value(in_[pos_ + i]);
      if (h < 0) return fail(error::bad_string);
      cp = (cp << 4) | static_cast<std::uint32_t>(h);
    }
    pos_ += 4;
    return true;
  }

  // pos_ is just after "\u". Escaped surrogates must come as a pair: a lone
  // one has no UTF-8 form.
  bool read_unicode_escape(std::string* out) {
    std::uint32_t cp;
    if (!read_hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(error::bad_string);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      std::uint32_t low;
      if (in_.substr(pos_, 2) != "\\u") return fail(error::bad_string);
      pos_ += 2;
      if (!read_hex4(low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return fail(error::bad_string);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (out) append_utf8(*out, cp);
    return true;
  }

  // pos_ is at the opening quote. With out == nullptr the string is only
  // validated.
  bool read_string(std::string* out) {
    ++pos_;
    for (;;) {
      // Copy plain bytes in runs; escapes and quotes are ASCII, so a run
      // boundary never splits a valid UTF-8 sequence.
      std::size_t run = pos_;
      bool non_ascii = false;
      while (!at_end()) {
        auto c = static_cast<unsigned char>(in_[pos_]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        non_ascii |= c >= 0x80;
        ++pos_;
      }
      std::string_view plain = in_.substr(run, pos_ - run);
      if (non_ascii && !domain::is_valid_utf8(plain)) {
        pos_ = run;
        return fail(error::bad_string);
      }
      if (out) out->append(plain);
      if (at_end()) return fail(error::syntax);
      char c = in_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c != '\\') return fail(error::bad_string);  // raw control character
      ++pos_;
      if (at_end()) return fail(error::syntax);
      char escaped = in_[pos_++];
      char decoded;
      switch (escaped) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case '/': decoded = '/'; break;
        case 'b': decoded = '\b'; break;
        case 'f': decoded = '\f'; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        case 'u':
          if (!read_unicode_escape(out)) return false;
          continue;
        default:
          --pos_;
          return fail(error::bad_string);
      }
      if (out) *out += decoded;
    }
  }
};

document parse(std::string_view text, std::size_t max_depth) {
  return parser(text, max_depth).run();
}

}  // namespace sig::protocol::json
