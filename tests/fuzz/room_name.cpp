// Fuzz target: room names -> NATS subject tokens (src/domain/room_name.hpp).
// A room name is any UTF-8 of 1 to 200 bytes; it reaches NATS only as its
// base64url token, so no name can address another room's subjects.
//
// Properties, for the input taken as a name:
// - its token is a valid NATS subject token: non-empty (for a non-empty
//   name), only [A-Za-z0-9_-], so no '.', '*', '>' or whitespace, and of
//   base64url's length;
// - room_name_from_token(room_token(name)) == name;
// - the subjects of a valid name are plain subjects of the expected shape;
// - two distinct names (the input split in two) never share a token;
// and for the input taken as a token: whatever decodes is canonical
// (encoding it again gives the input back), so two tokens never name one
// room. is_valid_utf8 is compared with a table-driven oracle (Unicode
// Table 3-7, well-formed byte sequences).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/room_name.hpp"
#include "fuzz_check.hpp"

using namespace sig;

namespace {

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// A NATS subject token as a client library accepts it, and stricter:
// nothing but the base64url alphabet.
void check_subject_token(std::string_view token) {
  FUZZ_CHECK(!token.empty());
  for (char c : token) {
    FUZZ_CHECK(c != '.' && c != '*' && c != '>');
    FUZZ_CHECK(c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\0');
    FUZZ_CHECK(is_token_char(c));
  }
}

std::vector<std::string_view> split(std::string_view subject) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = subject.find('.', start);
    out.push_back(subject.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// Well-formed UTF-8 after Unicode Table 3-7: the independent oracle.
bool well_formed_utf8(std::string_view text) {
  auto const* s = reinterpret_cast<unsigned char const*>(text.data());
  std::size_t n = text.size(), i = 0;
  auto in = [&](std::size_t at, unsigned lo, unsigned hi) { return at < n && s[at] >= lo && s[at] <= hi; };
  while (i < n) {
    unsigned c = s[i];
    if (c <= 0x7F) { i += 1; continue; }
    if (c >= 0xC2 && c <= 0xDF) {
      if (!in(i + 1, 0x80, 0xBF)) return false;
      i += 2;
      continue;
    }
    unsigned lo = 0x80, hi = 0xBF;
    std::size_t len;
    if (c == 0xE0) { lo = 0xA0; len = 3; }
    else if (c == 0xED) { hi = 0x9F; len = 3; }
    else if (c >= 0xE1 && c <= 0xEF) { len = 3; }
    else if (c == 0xF0) { lo = 0x90; len = 4; }
    else if (c == 0xF4) { hi = 0x8F; len = 4; }
    else if (c >= 0xF1 && c <= 0xF3) { len = 4; }
    else return false;
    if (!in(i + 1, lo, hi)) return false;
    for (std::size_t k = 2; k < len; ++k)
      if (!in(i + k, 0x80, 0xBF)) return false;
    i += len;
  }
  return true;
}

void check_name(std::string_view name) {
  std::string token = domain::room_token(name);
  FUZZ_CHECK(token.size() == (name.size() * 4 + 2) / 3);
  if (!name.empty()) check_subject_token(token);
  auto back = domain::room_name_from_token(token);
  FUZZ_CHECK(back.has_value() && *back == name);

  FUZZ_CHECK(domain::is_valid_utf8(name) == well_formed_utf8(name));
  if (!domain::is_valid_room_name(name)) {
    FUZZ_CHECK(name.empty() || name.size() > domain::max_room_name_bytes || !well_formed_utf8(name));
    return;
  }
  FUZZ_CHECK(!name.empty() && name.size() <= domain::max_room_name_bytes);

  domain::room_subjects subjects = domain::subjects_for("sig.test", name);
  FUZZ_CHECK(domain::is_valid_subject_prefix(subjects.events));
  FUZZ_CHECK(domain::is_valid_subject_prefix(subjects.snapshot));
  FUZZ_CHECK(domain::is_valid_subject_prefix(subjects.live));
  auto events = split(subjects.events);
  FUZZ_CHECK(events.size() == 5 && events[2] == "room" && events[3] == token && events[4] == "e");
  auto all = split(subjects.all);
  FUZZ_CHECK(all.size() == 5 && all[3] == token && all[4] == ">");
  auto live = split(subjects.live);
  FUZZ_CHECK(live.size() == 5 && live[2] == "live" && live[3] == token && live[4] == "e");
  auto by_token = domain::subjects_for_token("sig.test", token);
  FUZZ_CHECK(by_token.events == subjects.events && by_token.all == subjects.all);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<char const*>(data), size);
  check_name(input);

  // Two names from one input: the first byte says where to cut the rest.
  if (size >= 1) {
    std::string_view rest = input.substr(1);
    std::size_t cut = data[0] % (rest.size() + 1);
    std::string_view a = rest.substr(0, cut), b = rest.substr(cut);
    check_name(a);
    check_name(b);
    if (a != b) FUZZ_CHECK(domain::room_token(a) != domain::room_token(b));
    if (a == b) FUZZ_CHECK(domain::room_token(a) == domain::room_token(b));
  }

  // The input as a token, e.g. a subject read back from the stream.
  if (auto name = domain::room_name_from_token(input)) {
    FUZZ_CHECK(domain::room_token(*name) == input);
    FUZZ_CHECK(domain::base64url(*name) == input);
  } else {
    bool alphabet_only = true;
    for (char c : input) alphabet_only = alphabet_only && is_token_char(c);
    // Refused: a character outside the alphabet, an impossible length, or
    // stray bits in the last character.
    FUZZ_CHECK(!alphabet_only || input.size() % 4 != 0);
  }
  FUZZ_CHECK(!domain::base64url_decode(input).has_value() || input.size() % 4 != 1);
  return 0;
}
