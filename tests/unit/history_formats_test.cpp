// The history tools' selection (--peer, --as, ranges, kinds) and output
// formats, on a small scripted room; and HTTP target decoding for the admin API.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "domain/room_state.hpp"
#include "history/formats.hpp"
#include "history/selection.hpp"
#include "protocol/http_target.hpp"

using namespace sig;
using history::point;

namespace {

domain::event at(std::uint64_t seq, domain::event_body body, std::string instance = "i1") {
  return domain::event{seq, 1'000'000 + static_cast<std::int64_t>(seq) * 1000, std::move(instance), std::move(body)};
}

// ana joins, bo joins, ana offers to bo, ana broadcasts, cy joins, bo leaves, cy signals everyone.
std::vector<domain::event> call() {
  return {
      at(10, domain::peer_joined{"ana", R"({"name":"ana"})"}),
      at(11, domain::peer_joined{"bo", "{}"}, "i2"),
      at(12, domain::signal_sent{"ana", "bo", R"({"type":"offer","sdp":"v=0\r\nc=IN IP4 192.0.2.7\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"})"}),
      at(13, domain::signal_sent{"ana", std::nullopt, R"({"chat":"hi; #1"})"}),
      at(14, domain::peer_joined{"cy", "{}"}),
      at(15, domain::peer_left{"bo", domain::leave_reason::disconnect}, "i2"),
      at(16, domain::signal_sent{"cy", std::nullopt, "1"}),
  };
}

// Runs the selection over the call, as read_history does: returns the seqs shown.
std::vector<std::uint64_t> shown(history::selection const& s) {
  std::vector<std::uint64_t> out;
  domain::room_state state;
  for (auto const& e : call()) {
    if (!history::past_until(s, e) && history::after_since(s, e) && history::selected(s, e, state)) out.push_back(e.seq);
    state = domain::evolve(std::move(state), e);
  }
  return out;
}

std::string render(history::format f, history::format_options o, std::vector<domain::event> const& events = call()) {
  std::ostringstream out;
  auto w = history::make_writer(f, out, std::move(o));
  domain::room_state state;
  for (auto const& e : events) {
    w->event(e, state);
    state = domain::evolve(std::move(state), e);
  }
  w->finish();
  return out.str();
}

}  // namespace

TEST_CASE("kinds parse from a comma list and name a bad word", "[history]") {
  std::string error;
  auto k = history::parse_kinds("signal,join", &error);
  REQUIRE(k);
  CHECK((k->join && k->signal && !k->leave));
  CHECK_FALSE(history::parse_kinds("join,wave", &error));
  CHECK(error.find("\"wave\"") != std::string::npos);
  CHECK_FALSE(history::parse_kinds("", &error));
  CHECK_FALSE(history::parse_kinds("join,", &error));
}

TEST_CASE("ranges by sequence and by time are inclusive", "[history]") {
  history::selection s;
  s.since = point{point::kind::sequence, 12, 0};
  s.until = point{point::kind::sequence, 14, 0};
  CHECK(shown(s) == std::vector<std::uint64_t>{12, 13, 14});
  s.since = point{point::kind::time, 0, 1'000'000 + 13'000};
  s.until = point{point::kind::time, 0, 1'000'000 + 15'000};
  CHECK(shown(s) == std::vector<std::uint64_t>{13, 14, 15});
}

TEST_CASE("selection by kind and by peer: a peer's own events and the signals it received", "[history]") {
  history::selection s;
  s.kind = {false, false, true};
  CHECK(shown(s) == std::vector<std::uint64_t>{12, 13, 16});
  s = {};
  s.peer = "bo";
  // Its join, the offer to it, ana's broadcast while it was in, its leave;
  // not cy's join, nor cy's broadcast after bo left.
  CHECK(shown(s) == std::vector<std::uint64_t>{11, 12, 13, 15});
  s.peer = "cy";
  CHECK(shown(s) == std::vector<std::uint64_t>{14, 16});
}

TEST_CASE("selection as a peer: what it was sent, by the instances' recipient rule", "[history]") {
  history::selection s;
  s.as_peer = "bo";
  CHECK(shown(s) == std::vector<std::uint64_t>{11, 12, 13, 14});
  s.as_peer = "ana";
  CHECK(shown(s) == std::vector<std::uint64_t>{10, 11, 14, 15, 16});
  s.as_peer = "nobody";
  CHECK(shown(s).empty());
}

TEST_CASE("frames sent to a peer are the protocol's, joined listing the members before it", "[history]") {
  auto events = call();
  domain::room_state state;
  std::vector<std::string> frames;
  for (auto const& e : events) {
    if (auto f = history::message_sent_to(e, state, "r", "cy")) frames.push_back(*f);
    state = domain::evolve(std::move(state), e);
  }
  REQUIRE(frames.size() == 2);
  CHECK(frames[0] ==
        R"({"type":"joined","room":"r","peer":"cy","instance":"i1","peers":[{"peer":"ana","meta":{"name":"ana"},"instance":"i1"},{"peer":"bo","meta":{},"instance":"i2"}],"seq":14,"resume":""})");
  CHECK(frames[1] == R"({"type":"peer-left","peer":"bo","reason":"disconnect","seq":15})");
}

TEST_CASE("jsonl: one object per event, with summaries, redaction on request", "[history]") {
  auto out = render(history::format::jsonl, {"r"});
  auto line = out.substr(out.find(R"({"seq":12,)"));
  CHECK(line.rfind(R"x({"seq":12,"time":"1970-01-01T00:16:52.000Z","room":"r","instance":"i1","kind":"signal","from":"ana","to":"bo","summary":"offer: audio(opus)","data":{"type":"offer")x", 0) == 0);
  CHECK(out.find("192.0.2.7") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 7);
  history::format_options redacted{"r"};
  redacted.redact = true;
  auto masked = render(history::format::jsonl, redacted);
  CHECK(masked.find("192.0.2.7") == std::string::npos);
  CHECK(masked.find("x.x.x.x") != std::string::npos);
  CHECK(history::unreadable_record(9, 57) == R"({"seq":9,"kind":"unreadable","size":57})");
}

TEST_CASE("table: names from the join's meta with the start of the id, short times, one row per event", "[history]") {
  std::vector<domain::event> events{
      at(10, domain::peer_joined{"pAnaAnaAnaAnaAnaAnaAna1", R"({"name":"ana"})"}),
      at(11, domain::peer_joined{"pBoBoBoBoBoBoBoBoBoBoB", "{}"}, "i2"),
      at(12, domain::signal_sent{"pAnaAnaAnaAnaAnaAnaAna1", "pBoBoBoBoBoBoBoBoBoBoB", R"({"type":"offer","sdp":"v=0"})"}),
      at(13, domain::peer_joined{"pLongLongLongLongLong12", R"({"name":"Bartholomew-Xavier"})"}),
      at(14, domain::peer_joined{"pUtf8Utf8Utf8Utf8Utf81", R"({"name":"Zoë Zoë Zoë"})"}),
      at(15, domain::peer_left{"pAnaAnaAnaAnaAnaAnaAna1", domain::leave_reason::leave}),
  };
  auto out = render(history::format::table, {"r"}, events);
  std::vector<std::string> lines;
  for (std::size_t start = 0, end; (end = out.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(out.substr(start, end - start));
  REQUIRE(lines.size() == 7);
  CHECK(lines[0].find("TIME (UTC)") != std::string::npos);
  CHECK(lines[1].find("01-01 00:16:50.000  join         ana (pAnaAn)") != std::string::npos);
  CHECK(lines[2].find("pBoBoB ") != std::string::npos);        // no name: the start of the id
  CHECK(lines[3].find("ana (pAnaAn)") != std::string::npos);
  CHECK(lines[3].find("pBoBoB ") != std::string::npos);
  CHECK(lines[3].find("pAnaAnaAnaAna") == std::string::npos);  // never the whole id
  CHECK(lines[4].find("Bartholome (pLongL)") != std::string::npos);
  CHECK(lines[5].find("Zoë Zoë (pUtf8U)") != std::string::npos);  // cut at a whole character
  CHECK(lines[6].find("leave        ana (pAnaAn)") != std::string::npos);
  CHECK(lines[3].find("offer") < 90);
  // A name with a line break and a terminal escape sequence stays on its row, inert.
  auto hostile = render(history::format::table, {"r"},
                        {at(20, domain::peer_joined{"pEvilEvilEvilEvilEvil1", "{\"name\":\"a\\nb\\u001b[2J\"}"})});
  CHECK(std::count(hostile.begin(), hostile.end(), '\n') == 2);
  CHECK(hostile.find('\x1b') == std::string::npos);
  CHECK(hostile.find("a?b?[2J (pEvilE)") != std::string::npos);
}

TEST_CASE("mermaid: lanes in order of appearance, arrows per recipient, text made safe", "[history]") {
  auto out = render(history::format::mermaid, {"r"});
  CHECK(out.rfind("sequenceDiagram\n", 0) == 0);
  CHECK(out.find("  participant P1 as ana · ana (i1)\n") != std::string::npos);
  CHECK(out.find("  participant P2 as bo (i2)\n") != std::string::npos);
  CHECK(out.find("  P1->>P2: seq 12 offer: audio(opus)\n") != std::string::npos);
  CHECK(out.find("  P1-->>P2: seq 13 to all: ") != std::string::npos);  // bo only: cy was not in yet
  CHECK(out.find("P1-->>P3: seq 13") == std::string::npos);
  CHECK(out.find("  P3-->>P1: seq 16 to all: 1 bytes\n") != std::string::npos);  // bo had left
  CHECK(out.find("Note over P2: seq 15 leave (disconnect)") != std::string::npos);
  // ';' and '#' would end a statement or start an entity: never raw in labels.
  auto odd = render(history::format::mermaid, {"r"}, {at(1, domain::peer_joined{"p;1#", R"({"name":"a;b#c"})"})});
  CHECK(odd.find("a#59;b#35;c · p#59;1#35;") != std::string::npos);
}

TEST_CASE("html: the template filled, events escaped, no placeholder left even for hostile names", "[history]") {
  history::format_options o{"{{EVENTS}} </script>"};
  o.subtitle = "{{SUMMARY}}";
  auto out = render(history::format::html, o,
                    {at(1, domain::peer_joined{"a", R"({"name":"</script><script>alert(1)</script>"})"})});
  auto open = out.find(R"(<script type="application/json" id="sigstream-events">)");
  REQUIRE(open != std::string::npos);
  auto close = out.find("</script>", open);
  REQUIRE(close != std::string::npos);
  // Outside the events' JSON (where the room name is data), no placeholder
  // text at all: the hostile name and subtitle were escaped, every slot filled.
  CHECK(out.substr(0, open).find("{{") == std::string::npos);
  CHECK(out.substr(close).find("{{") == std::string::npos);
  CHECK(out.substr(0, open).find("&#123;&#123;EVENTS&#125;&#125;") != std::string::npos);
  CHECK(out.find("<script>alert(1)") == std::string::npos);
  CHECK(out.find(R"x(\u003c/script>\u003cscript>alert(1))x") != std::string::npos);
  CHECK(out.substr(open).find(R"([{"seq":1,)") != std::string::npos);
}

TEST_CASE("formats parse by name and name a bad one", "[history]") {
  std::string error;
  CHECK(history::parse_format("mermaid", &error) == history::format::mermaid);
  CHECK_FALSE(history::parse_format("pdf", &error));
  CHECK(error.find("\"pdf\"") != std::string::npos);
}

TEST_CASE("percent-decoding and query strings for the admin API", "[http]") {
  CHECK(protocol::percent_decode("design%20review%20%2F%20%C3%BC") == "design review / ü");
  CHECK(protocol::percent_decode("a+b") == "a+b");
  CHECK(protocol::percent_decode("a+b", true) == "a b");
  CHECK_FALSE(protocol::percent_decode("%"));
  CHECK_FALSE(protocol::percent_decode("%2"));
  CHECK_FALSE(protocol::percent_decode("%zz"));
  auto q = protocol::parse_query("since=10m&&limit=2&follow&x=%26%3D");
  REQUIRE(q);
  CHECK(*q == std::vector<std::pair<std::string, std::string>>{{"since", "10m"}, {"limit", "2"}, {"follow", ""}, {"x", "&="}});
  CHECK_FALSE(protocol::parse_query("a=%zz"));
  CHECK(protocol::parse_query("")->empty());
}
