#include "history/summary.hpp"

#include <optional>
#include <unordered_set>
#include <vector>

#include "protocol/json.hpp"

namespace sig::history {
namespace {

namespace json = protocol::json;

// The client frame limit allows deeper nesting than any signal shape needs;
// deeper payloads are summarized by size like any other unknown shape.
constexpr std::size_t max_json_depth = 64;

// How many wrapper objects ({"ice":{"candidate":{...}}}) are unwrapped before
// giving up: the known shapes need two.
constexpr int max_unwrap_depth = 3;

std::string byte_count(std::string_view text) { return std::to_string(text.size()) + " bytes"; }

bool is_blank(char c) { return c == ' ' || c == '\t'; }

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Summaries end up on terminals and in log lines: control characters from the
// payload never reach them.
std::string printable(std::string_view token) {
  std::string out(token);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string printable_lower(std::string_view token) {
  std::string out = printable(token);
  for (char& c : out) c = to_lower(c);
  return out;
}

// Blank-separated tokens of one SDP or candidate line.
std::vector<std::string_view> tokens_of(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && is_blank(line[at])) ++at;
    std::size_t end = at;
    while (end < line.size() && !is_blank(line[end])) ++end;
    if (end > at) tokens.push_back(line.substr(at, end - at));
    at = end;
  }
  return tokens;
}

bool all_digits(std::string_view token) {
  if (token.empty()) return false;
  for (char c : token)
    if (c < '0' || c > '9') return false;
  return true;
}

// --- SDP. -------------------------------------------------------------------

struct media_section {
  std::string_view kind;  // audio, video, application, ...
  bool rejected = false;  // port 0
  std::vector<std::string_view> names;  // codec or protocol names, first seen first
  std::unordered_set<std::string_view> seen;  // a set, so a hostile SDP stays linear

  void add(std::string_view name) {
    if (!name.empty() && seen.insert(name).second) names.push_back(name);
  }
};

media_section section_from_m_line(std::string_view line) {
  // m=<media> <port>[/<count>] <proto> <fmt> ...
  auto tokens = tokens_of(line.substr(2));
  media_section section;
  section.kind = tokens.empty() ? std::string_view("unknown") : tokens[0];
  if (tokens.size() > 1) {
    std::string_view port = tokens[1].substr(0, tokens[1].find('/'));
    section.rejected = all_digits(port) && port.find_first_not_of('0') == std::string_view::npos;
  }
  // Application sections name their protocol in the format list
  // ("UDP/DTLS/SCTP webrtc-datachannel"); the older "DTLS/SCTP 5000" form
  // names it in a=sctpmap instead, and numbers are not names.
  if (section.kind == "application")
    for (std::size_t i = 3; i < tokens.size(); ++i)
      if (!all_digits(tokens[i])) section.add(tokens[i]);
  return section;
}

// "a=rtpmap:111 opus/48000/2" -> "opus"; "a=sctpmap:5000 webrtc-datachannel 1024"
// -> "webrtc-datachannel".
std::string_view name_after_payload_type(std::string_view attribute_value) {
  std::size_t start = attribute_value.find(' ');
  if (start == std::string_view::npos) return {};
  while (start < attribute_value.size() && is_blank(attribute_value[start])) ++start;
  std::size_t end = start;
  while (end < attribute_value.size() && !is_blank(attribute_value[end]) &&
         attribute_value[end] != '/')
    ++end;
  return attribute_value.substr(start, end - start);
}

std::string summarize_sdp(std::string_view type, std::string_view sdp) {
  std::vector<media_section> sections;
  std::size_t at = 0;
  while (at <= sdp.size()) {
    // Lines end in CRLF by the RFC, in LF in the wild, and a lone CR would
    // otherwise land in a one-line summary.
    // (A plain scan: find_first_of calls memchr once per byte, which showed
    // as half the CPU of replaying a room's history to jsonl.)
    std::size_t end = at;
    while (end < sdp.size() && sdp[end] != '\r' && sdp[end] != '\n') ++end;
    std::string_view line = sdp.substr(at, end - at);
    at = end + 1;

    if (line.starts_with("m=")) {
      sections.push_back(section_from_m_line(line));
    } else if (sections.empty()) {
      continue;  // session-level lines name no codecs
    } else if (line.starts_with("a=rtpmap:")) {
      sections.back().add(name_after_payload_type(line.substr(9)));
    } else if (line.starts_with("a=sctpmap:")) {
      sections.back().add(name_after_payload_type(line.substr(10)));
    }
  }

  std::string out = printable(type) + ":";
  if (sections.empty()) return out + " no media";
  for (media_section const& section : sections) {
    out += ' ';
    out += printable(section.kind);
    if (section.rejected) {
      out += "(rejected)";
    } else if (!section.names.empty()) {
      out += '(';
      for (std::size_t i = 0; i < section.names.size(); ++i) {
        if (i > 0) out += ',';
        out += printable(section.names[i]);
      }
      out += ')';
    }
  }
  return out;
}

bool is_description_type(std::string_view type) {
  return type == "offer" || type == "answer" || type == "pranswer";
}

// --- ICE candidates. -----------------------------------------------------------

// "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx ..."
// -> "candidate: srflx udp". A line that does not have that grammar is not
// summarized (the caller falls back to the size).
std::optional<std::string> summarize_candidate(std::string_view line) {
  auto tokens = tokens_of(line);
  if (tokens.empty()) return "end-of-candidates";
  std::string_view first = tokens[0];
  if (first.starts_with("a=")) first.remove_prefix(2);
  if (tokens.size() == 1 && first == "end-of-candidates") return "end-of-candidates";
  if (!first.starts_with("candidate:")) return std::nullopt;

  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
  constexpr std::size_t transport_index = 2;
  constexpr std::size_t typ_index = 6;
  if (tokens.size() <= typ_index + 1 || tokens[typ_index] != "typ") return std::nullopt;
  return "candidate: " + printable_lower(tokens[typ_index + 1]) + " " +
         printable_lower(tokens[transport_index]);
}

// --- Payload shapes. ---------------------------------------------------------

std::optional<std::string> summarize_object(json::object_view const& object, int depth);

std::optional<std::string> summarize_nested(json::value const* value, int depth) {
  if (!value || value->kind != json::kind::object || depth >= max_unwrap_depth) return std::nullopt;
  json::document nested = json::parse(value->raw, max_json_depth);
  if (!nested.ok() || nested.root.kind != json::kind::object) return std::nullopt;
  return summarize_object(nested.object, depth + 1);
}

std::optional<std::string> summarize_object(json::object_view const& object, int depth) {
  // {"type":"offer","sdp":"v=0..."}: an RTCSessionDescriptionInit.
  json::value const* type = object.find("type");
  json::value const* sdp = object.find("sdp");
  if (type && type->kind == json::kind::string) {
    if (type->text == "rollback") return "rollback";
    if (is_description_type(type->text) && sdp && sdp->kind == json::kind::string)
      return summarize_sdp(type->text, sdp->text);
  }

  // {"candidate":"candidate:..."} (an RTCIceCandidateInit) or a wrapper around
  // one. A null candidate is what JSON.stringify gives for the browser's
  // end-of-candidates event.
  if (json::value const* candidate = object.find("candidate")) {
    if (candidate->kind == json::kind::string) return summarize_candidate(candidate->text);
    if (candidate->kind == json::kind::null) return "end-of-candidates";
    return summarize_nested(candidate, depth);
  }

  // Wrappers: {"description":{...}}, {"sdp":{...}}, {"ice":{...}}.
  for (std::string_view wrapper : {"description", "sdp", "ice"})
    if (auto summary = summarize_nested(object.find(wrapper), depth)) return summary;
  return std::nullopt;
}

}  // namespace

std::string summarize_signal(std::string_view data_json) {
  json::document doc = json::parse(data_json, max_json_depth);
  if (!doc.ok() || doc.root.kind != json::kind::object) return byte_count(data_json);
  return summarize_object(doc.object, 0).value_or(byte_count(data_json));
}

}  // namespace sig::history
