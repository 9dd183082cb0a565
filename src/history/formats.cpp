#include "history/formats.hpp"

#include <fmt/format.h>

#include <ostream>
#include <unordered_map>
#include <vector>

#include "history/assets.hpp"
#include "history/redact.hpp"
#include "history/selection.hpp"
#include "history/summary.hpp"
#include "history/time_point.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"

namespace sig::history {

using protocol::json_quote;

std::optional<format> parse_format(std::string_view text, std::string* error) {
  if (text == "table") return format::table;
  if (text == "jsonl") return format::jsonl;
  if (text == "mermaid") return format::mermaid;
  if (text == "html") return format::html;
  if (error) *error = "\"" + std::string(text) + "\" is not a format (table, jsonl, mermaid, html)";
  return std::nullopt;
}

namespace {

std::string shown(std::string_view json, bool redact) { return redact ? redact_addresses(json) : std::string(json); }

std::string signal_summary(domain::signal_sent const& s, bool redact) {
  // Summaries name kinds, codecs and sizes, never addresses; redacting the
  // input keeps a size summary equal to what the output shows.
  return summarize_signal(redact ? redact_addresses(s.data_json) : s.data_json);
}

}  // namespace

namespace {

// Appends JSON text as it is, or with its addresses masked.
void append_shown(std::string& out, std::string_view json, bool redact) {
  if (redact) out += redact_addresses(json);
  else out.append(json);
}

}  // namespace

// Built in one buffer, without a copy of the payload: a long replay spends
// much of its time here (docs/benchmarks.md, "History reads at scale").
std::string jsonl_record(std::string_view room, domain::event const& e, bool redact) {
  std::string out;
  std::size_t payload = 0;
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) payload = j->meta_json.size();
  else if (auto const* s = std::get_if<domain::signal_sent>(&e.body)) payload = s->data_json.size();
  out.reserve(256 + room.size() + payload);
  auto to = std::back_inserter(out);
  fmt::format_to(to, "{{\"seq\":{},\"time\":", e.seq);
  out += json_quote(rfc3339(e.time_ms));
  out += ",\"room\":";
  out += json_quote(room);
  out += ",\"instance\":";
  out += json_quote(e.instance);
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) {
    out += ",\"kind\":\"join\",\"peer\":";
    out += json_quote(j->peer);
    out += ",\"meta\":";
    append_shown(out, j->meta_json, redact);
  } else if (auto const* l = std::get_if<domain::peer_left>(&e.body)) {
    out += ",\"kind\":\"leave\",\"peer\":";
    out += json_quote(l->peer);
    fmt::format_to(to, ",\"reason\":\"{}\"", domain::to_string(l->reason));
  } else if (auto const* r = std::get_if<domain::peer_resumed>(&e.body)) {
    // The peer's connection moved to `instance`.
    out += ",\"kind\":\"resume\",\"peer\":";
    out += json_quote(r->peer);
  } else {
    auto const& s = std::get<domain::signal_sent>(e.body);
    out += ",\"kind\":\"signal\",\"from\":";
    out += json_quote(s.from);
    if (s.to) {
      out += ",\"to\":";
      out += json_quote(*s.to);
    }
    out += ",\"summary\":";
    out += json_quote(signal_summary(s, redact));
    out += ",\"data\":";
    append_shown(out, s.data_json, redact);
  }
  out += '}';
  return out;
}

std::string unreadable_record(std::uint64_t seq, std::size_t size) {
  return fmt::format("{{\"seq\":{},\"kind\":\"unreadable\",\"size\":{}}}", seq, size);
}

namespace {

// The `name` string of a join's meta, if it has one.
std::string meta_display_name(std::string_view meta_json) {
  if (meta_json.empty()) return {};
  auto doc = protocol::json::parse(meta_json, 64);
  if (!doc.ok() || doc.root.kind != protocol::json::kind::object) return {};
  auto const* name = doc.object.find("name");
  return name != nullptr && name->kind == protocol::json::kind::string ? name->text : std::string();
}

// --- table ------------------------------------------------------------------

// One row per event, for a terminal: times as MM-DD HH:MM:SS.mmm (UTC),
// peers by the name of their join's meta and the first characters of their
// id (`ana (pX3kq9)`), so that a row fits about 100 columns before its
// details. --format jsonl has every field whole.
class table_writer final : public history_writer {
 public:
  static constexpr std::size_t id_shown = 6;  // "p" and 5 random characters
  static constexpr std::size_t name_shown = 10;
  static constexpr std::size_t peer_width = name_shown + id_shown + 3;

  table_writer(std::ostream& out, format_options o) : out_(out), o_(std::move(o)) {
    out_ << fmt::format("{:>8}  {:<18}  {:<11}  {:<{}}  {:<{}}  {}\n", "SEQ", "TIME (UTC)", "KIND", "PEER", peer_width,
                        "TARGET", peer_width, "DETAILS");
  }

  void event(domain::event const& e, domain::room_state const& before) override {
    for (auto const& m : before.members) learn(m.peer, m.meta_json);
    std::string kind, peer, target, details;
    if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) {
      learn(j->peer, j->meta_json);
      bool own = !o_.as_peer.empty() && j->peer == o_.as_peer;
      kind = o_.as_peer.empty() ? "join" : own ? "joined" : "peer-joined";
      peer = label(j->peer);
      details = fmt::format("meta={} via {}", shown(j->meta_json, o_.redact), e.instance);
      if (own) details += fmt::format("; peers: {}", peer_list(before));
    } else if (auto const* l = std::get_if<domain::peer_left>(&e.body)) {
      kind = o_.as_peer.empty() ? "leave" : "peer-left";
      peer = label(l->peer);
      details = fmt::format("reason={}", domain::to_string(l->reason));
    } else if (auto const* r = std::get_if<domain::peer_resumed>(&e.body)) {
      kind = "resume";
      peer = label(r->peer);
      details = fmt::format("reconnected, now via {}", e.instance);
    } else {
      auto const& s = std::get<domain::signal_sent>(e.body);
      kind = "signal";
      peer = label(s.from);
      target = s.to ? label(*s.to) : "(everyone)";
      details = signal_summary(s, o_.redact);
    }
    out_ << fmt::format("{:>8}  {:<18}  {:<11}  {:<{}}  {:<{}}  {}\n", e.seq, short_time(e.time_ms), kind, peer,
                        peer_width, target, peer_width, details);
    if (o_.flush_each) out_.flush();
  }

  void unreadable(std::uint64_t seq, std::size_t size) override {
    out_ << fmt::format("{:>8}  {:<18}  {:<11}  {:<{}}  {:<{}}  {} bytes this version cannot decode (skipped)\n", seq,
                        "", "unreadable", "", peer_width, "", peer_width, size);
  }

  void finish() override { out_.flush(); }

 private:
  void learn(std::string const& peer, std::string_view meta_json) {
    if (names_.count(peer) != 0) return;
    names_.emplace(peer, meta_display_name(meta_json));
  }

  std::string label(std::string const& peer) const {
    std::string id = peer.size() > id_shown ? peer.substr(0, id_shown) : peer;
    auto it = names_.find(peer);
    if (it == names_.end() || it->second.empty()) return printable(id);
    std::string name = it->second;
    // Whole characters only: a UTF-8 name is cut before a continuation byte.
    if (name.size() > name_shown) {
      std::size_t cut = name_shown;
      while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
      name = name.substr(0, cut);
      while (!name.empty() && name.back() == ' ') name.pop_back();
    }
    return fmt::format("{} ({})", printable(name), printable(id));
  }

  // A name is whatever a client put in its join's meta: control characters
  // (a line break, a terminal's escape sequences) are not printed as such.
  static std::string printable(std::string text) {
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return text;
  }

  // "2026-12-03T21:53:33.123Z" -> "12-03 21:53:33.123"
  static std::string short_time(std::int64_t time_ms) {
    std::string full = rfc3339(time_ms);
    if (full.size() < 23) return full;
    return full.substr(5, 5) + " " + full.substr(11, 12);
  }

  std::string peer_list(domain::room_state const& before) const {
    if (before.members.empty()) return "(none)";
    std::string out;
    for (auto const& m : before.members) out += (out.empty() ? "" : ", ") + label(m.peer);
    return out;
  }

  std::ostream& out_;
  format_options o_;
  std::unordered_map<std::string, std::string> names_;  // peer -> the name of its join's meta ("" if none)
};

// --- jsonl ------------------------------------------------------------------

class jsonl_writer final : public history_writer {
 public:
  jsonl_writer(std::ostream& out, format_options o) : out_(out), o_(std::move(o)) {}

  void event(domain::event const& e, domain::room_state const& before) override {
    if (o_.as_peer.empty()) {
      std::string line = jsonl_record(o_.room, e, o_.redact);
      line += '\n';
      out_.write(line.data(), static_cast<std::streamsize>(line.size()));
    } else if (auto frame = message_sent_to(e, before, o_.room, o_.as_peer)) {
      out_ << shown(*frame, o_.redact) << '\n';
    }
    if (o_.flush_each) out_.flush();
  }

  void unreadable(std::uint64_t seq, std::size_t size) override {
    out_ << unreadable_record(seq, size) << '\n';
    if (o_.flush_each) out_.flush();
  }

  void finish() override { out_.flush(); }

 private:
  std::ostream& out_;
  format_options o_;
};

// --- mermaid ----------------------------------------------------------------

// Mermaid reads ';' as a line break and '#' as the start of an entity code:
// both become entity codes, and line breaks become spaces.
std::string mermaid_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '#') out += "#35;";
    else if (c == ';') out += "#59;";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

class mermaid_writer final : public history_writer {
 public:
  mermaid_writer(std::ostream& out, format_options o) : out_(out), o_(std::move(o)) {}

  void event(domain::event const& e, domain::room_state const& before) override {
    if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) {
      std::string p = lane(j->peer, j->meta_json, e.instance);
      body_.push_back(fmt::format("  Note over {}: seq {} join via {}", p, e.seq, mermaid_text(e.instance)));
    } else if (auto const* l = std::get_if<domain::peer_left>(&e.body)) {
      std::string p = lane(l->peer);
      body_.push_back(fmt::format("  Note over {}: seq {} leave ({})", p, e.seq, domain::to_string(l->reason)));
    } else if (auto const* r = std::get_if<domain::peer_resumed>(&e.body)) {
      std::string p = lane(r->peer);
      body_.push_back(fmt::format("  Note over {}: seq {} resumed via {}", p, e.seq, mermaid_text(e.instance)));
    } else {
      auto const& s = std::get<domain::signal_sent>(e.body);
      std::string summary = mermaid_text(signal_summary(s, o_.redact));
      // SDP as solid arrows, everything else (candidates, app data) dotted.
      bool sdp = summary.starts_with("offer") || summary.starts_with("answer") || summary.starts_with("pranswer");
      char const* arrow = sdp ? "->>" : "-->>";
      std::string from = lane(s.from);
      if (s.to) {
        body_.push_back(fmt::format("  {}{}{}: seq {} {}", from, arrow, lane(*s.to), e.seq, summary));
      } else {
        bool anyone = false;
        for (auto const& m : before.members) {
          if (m.peer == s.from) continue;
          anyone = true;
          body_.push_back(fmt::format("  {}{}{}: seq {} to all: {}", from, arrow, lane(m.peer, m.meta_json, m.instance),
                                      e.seq, summary));
        }
        if (!anyone) body_.push_back(fmt::format("  Note over {}: seq {} to all (nobody else here): {}", from, e.seq, summary));
      }
    }
  }

  void unreadable(std::uint64_t seq, std::size_t size) override {
    body_.push_back(fmt::format("  %% seq {}: {} bytes this version cannot decode (skipped)", seq, size));
  }

  void finish() override {
    out_ << "sequenceDiagram\n";
    out_ << "  %% sigstream history of room " << mermaid_text(o_.room) << (o_.as_peer.empty() ? "" : " as " + o_.as_peer)
         << "\n";
    for (auto const& p : participants_) out_ << p << '\n';
    for (auto const& line : body_) out_ << line << '\n';
    out_.flush();
  }

 private:
  // The alias of a peer's lane (P1, P2, ... in order of appearance).
  std::string lane(std::string const& peer, std::string_view meta_json = {}, std::string_view instance = {}) {
    auto it = aliases_.find(peer);
    if (it != aliases_.end()) return it->second;
    std::string alias = fmt::format("P{}", aliases_.size() + 1);
    aliases_.emplace(peer, alias);
    std::string name = meta_display_name(meta_json);
    std::string label = name.empty() ? peer : name + " · " + peer;
    if (!instance.empty()) label += fmt::format(" ({})", instance);
    participants_.push_back(fmt::format("  participant {} as {}", alias, mermaid_text(label)));
    return alias;
  }

  std::ostream& out_;
  format_options o_;
  std::unordered_map<std::string, std::string> aliases_;
  std::vector<std::string> participants_;
  std::vector<std::string> body_;
};

// --- html -------------------------------------------------------------------

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      // Braces too, so no text put into the page reads as a placeholder.
      case '{': out += "&#123;"; break;
      case '}': out += "&#125;"; break;
      default: out += c;
    }
  }
  return out;
}

void replace_all(std::string& text, std::string_view what, std::string_view with) {
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
}

class html_writer final : public history_writer {
 public:
  html_writer(std::ostream& out, format_options o) : out_(out), o_(std::move(o)) {
    std::string page(assets::report_html);
    std::string title = "sigstream · room " + o_.room + (o_.as_peer.empty() ? "" : " as " + o_.as_peer);
    replace_all(page, "{{TITLE}}", html_escape(title));
    replace_all(page, "{{SUMMARY}}", html_escape(o_.subtitle));
    replace_all(page, "/*{{TIMELINE_CSS}}*/", assets::timeline_css);
    std::size_t events = page.find("{{EVENTS}}");
    tail_ = page.substr(events + std::string_view("{{EVENTS}}").size());
    // The script comes after the events in the template; substituted last so
    // that nothing in the library's text is taken for a placeholder.
    replace_all(tail_, "/*{{TIMELINE_JS}}*/", assets::timeline_js);
    out_ << page.substr(0, events) << '[';
  }

  void event(domain::event const& e, domain::room_state const& /*before*/) override {
    element(jsonl_record(o_.room, e, o_.redact));
  }

  void unreadable(std::uint64_t seq, std::size_t size) override { element(unreadable_record(seq, size)); }

  void finish() override {
    out_ << ']' << tail_;
    out_.flush();
  }

 private:
  // Inside <script type="application/json">, '<' may only appear within
  // JSON strings, where \u003c means the same and cannot close the element.
  void element(std::string json) {
    replace_all(json, "<", "\\u003c");
    out_ << (first_ ? "" : ",\n") << json;
    first_ = false;
  }

  std::ostream& out_;
  format_options o_;
  std::string tail_;
  bool first_ = true;
};

}  // namespace

std::unique_ptr<history_writer> make_writer(format f, std::ostream& out, format_options options) {
  switch (f) {
    case format::table: return std::make_unique<table_writer>(out, std::move(options));
    case format::jsonl: return std::make_unique<jsonl_writer>(out, std::move(options));
    case format::mermaid: return std::make_unique<mermaid_writer>(out, std::move(options));
    case format::html: return std::make_unique<html_writer>(out, std::move(options));
  }
  return nullptr;
}

}  // namespace sig::history
