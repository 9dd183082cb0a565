#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "domain/event.hpp"
#include "domain/message_id.hpp"
#include "domain/room_name.hpp"
#include "domain/room_state.hpp"

using namespace sig::domain;

namespace {

event at(std::uint64_t seq, event_body body, std::string instance = "i1") {
  return event{seq, 1000 + static_cast<std::int64_t>(seq), std::move(instance), std::move(body)};
}

event_body joins(std::string peer, std::string meta = "{}") {
  return peer_joined{std::move(peer), std::move(meta)};
}

event_body leaves(std::string peer, leave_reason reason = leave_reason::leave) {
  return peer_left{std::move(peer), reason};
}

event_body signals(std::string from, std::optional<std::string> to = std::nullopt,
                   std::string data = "1") {
  return signal_sent{std::move(from), std::move(to), std::move(data)};
}

room_state given(std::vector<event> const& events) { return fold(room_state{}, events); }

std::vector<std::string> peers_of(room_state const& state) {
  std::vector<std::string> out;
  for (auto const& m : state.members) out.push_back(m.peer);
  return out;
}

std::vector<event_body> events_of(decision const& d) {
  REQUIRE(std::holds_alternative<std::vector<event_body>>(d));
  return std::get<std::vector<event_body>>(d);
}

rejection rejection_of(decision const& d) {
  REQUIRE(std::holds_alternative<rejection>(d));
  return std::get<rejection>(d);
}

using strings = std::vector<std::string>;

}  // namespace

// --- evolve and fold. --------------------------------------------------------

TEST_CASE("domain: an empty room has no members", "[domain]") {
  room_state state;
  CHECK(state.members.empty());
  CHECK(state.last_seq == 0);
  CHECK_FALSE(state.has("p1"));
  CHECK(state.find("p1") == nullptr);
}

TEST_CASE("domain: a join adds a member with its meta, instance and seq", "[domain]") {
  auto state = given({at(5, joins("p1", R"({"n":1})"), "inst-a")});
  REQUIRE(state.members.size() == 1);
  CHECK(state.members[0] == member{"p1", R"({"n":1})", "inst-a", 5});
  CHECK(state.has("p1"));
  CHECK(state.find("p1")->join_seq == 5);
  CHECK(state.last_seq == 5);
  CHECK(state.last_membership_seq == 5);
  CHECK(state.ignored_events == 0);
}

TEST_CASE("domain: members are kept oldest join first", "[domain]") {
  auto state = given({at(1, joins("a")), at(2, joins("b")), at(3, joins("c")), at(4, leaves("b")),
                      at(5, joins("b"))});
  CHECK(peers_of(state) == strings{"a", "c", "b"});
  CHECK(state.find("b")->join_seq == 5);
}

TEST_CASE("domain: a leave removes the member", "[domain]") {
  for (auto reason : {leave_reason::leave, leave_reason::disconnect, leave_reason::expired}) {
    auto state = given({at(1, joins("a")), at(2, joins("b")), at(3, leaves("a", reason))});
    CHECK(peers_of(state) == strings{"b"});
    CHECK(state.last_membership_seq == 3);
  }
}

TEST_CASE("domain: a join of a member and a leave of a stranger change nothing", "[domain]") {
  auto before = given({at(1, joins("a", "{\"v\":1}"))});
  auto after = evolve(before, at(2, joins("a", "{\"v\":2}")));
  CHECK(after.members == before.members);  // the first meta stays
  CHECK(after.ignored_events == 1);
  CHECK(after.last_seq == 2);

  after = evolve(after, at(3, leaves("stranger")));
  CHECK(after.members == before.members);
  CHECK(after.ignored_events == 2);
  CHECK(after.last_seq == 3);
}

TEST_CASE("domain: signals never change membership", "[domain]") {
  auto before = given({at(1, joins("a")), at(2, joins("b"))});
  auto after = evolve(before, at(7, signals("a", "b")));
  CHECK(after.members == before.members);
  CHECK(after.last_seq == 7);
  CHECK(after.last_membership_seq == 2);
  CHECK(after.ignored_events == 0);
  CHECK(is_membership(joins("a")));
  CHECK(is_membership(leaves("a")));
  CHECK_FALSE(is_membership(signals("a")));
}

TEST_CASE("domain: an event at or below last_seq is a duplicate", "[domain]") {
  auto state = given({at(1, joins("a")), at(5, joins("b"))});
  auto same = evolve(state, at(5, leaves("b")));
  CHECK(same.members == state.members);
  CHECK(same.ignored_events == 1);
  CHECK(same.last_seq == 5);

  auto older = evolve(state, at(3, joins("c")));
  CHECK(older.members == state.members);
  CHECK(older.ignored_events == 1);

  // Redelivering the whole history changes nothing but the counter.
  std::vector<event> history = {at(1, joins("a")), at(5, joins("b"))};
  auto twice = fold(state, history);
  CHECK(twice.members == state.members);
  CHECK(twice.ignored_events == 2);
}

TEST_CASE("domain: gaps in seq are allowed", "[domain]") {
  auto state = given({at(10, joins("a")), at(100, joins("b")), at(1000, leaves("a"))});
  CHECK(peers_of(state) == strings{"b"});
  CHECK(state.last_seq == 1000);
}

TEST_CASE("domain: folding any chunking of an event list gives the same state", "[domain][property]") {
  std::mt19937 rng(2024);
  strings const peers = {"a", "b", "c", "d"};
  for (int round = 0; round < 500; ++round) {
    std::vector<event> events;
    std::uint64_t seq = 0;
    for (int i = 0, n = static_cast<int>(rng() % 40); i < n; ++i) {
      // Mostly increasing, with duplicates and stale redeliveries mixed in.
      std::uint32_t roll = rng() % 10;
      std::uint64_t s = roll == 0 ? seq : roll == 1 ? seq / 2 : (seq += 1 + rng() % 3);
      std::string const& p = peers[rng() % peers.size()];
      switch (rng() % 3) {
        case 0: events.push_back(at(s, joins(p, "{\"r\":" + std::to_string(round) + "}"))); break;
        case 1: events.push_back(at(s, leaves(p, static_cast<leave_reason>(rng() % 3)))); break;
        default: events.push_back(at(s, signals(p, peers[rng() % peers.size()]))); break;
      }
    }
    room_state whole = fold(room_state{}, events);

    room_state chunked;
    std::size_t i = 0;
    while (i < events.size()) {
      std::size_t len = 1 + rng() % 5;
      std::vector<event> chunk(events.begin() + static_cast<std::ptrdiff_t>(i),
                               events.begin() + static_cast<std::ptrdiff_t>(std::min(i + len, events.size())));
      chunked = fold(std::move(chunked), chunk);
      i += len;
    }
    CHECK(chunked == whole);

    room_state one_by_one;
    for (auto const& e : events) one_by_one = evolve(one_by_one, e);
    CHECK(one_by_one == whole);
  }
}

// --- decide_*: given events, when command, then events. -------------------

TEST_CASE("domain: join appends a join, once", "[domain]") {
  auto state = given({at(1, joins("a"))});
  auto events = events_of(decide_join(state, "b", R"({"n":"b"})"));
  REQUIRE(events.size() == 1);
  CHECK(events[0] == event_body{peer_joined{"b", R"({"n":"b"})"}});
  CHECK(events_of(decide_join(state, "a", "{}")).empty());
}

TEST_CASE("domain: the room cap counts members and the joins on their way", "[domain]") {
  auto state = given({at(1, joins("a")), at(2, joins("b"))});
  CHECK(events_of(decide_join(state, "c", "{}", join_limits{3, 0})).size() == 1);
  CHECK(rejection_of(decide_join(state, "c", "{}", join_limits{3, 1})) == rejection::room_full);
  CHECK(rejection_of(decide_join(state, "c", "{}", join_limits{2, 0})) == rejection::room_full);
  // A member's join again is a no-op, not a refusal, whatever the cap.
  CHECK(events_of(decide_join(state, "a", "{}", join_limits{2, 5})).empty());
  // Room again after a leave.
  auto after_leave = given({at(1, joins("a")), at(2, joins("b")), at(3, leaves("b"))});
  CHECK(events_of(decide_join(after_leave, "c", "{}", join_limits{2, 0})).size() == 1);
}

TEST_CASE("domain: leave appends a leave of a member only", "[domain]") {
  auto state = given({at(1, joins("a"))});
  auto events = events_of(decide_leave(state, "a", leave_reason::disconnect));
  REQUIRE(events.size() == 1);
  // The leave carries its holder and the member as it was (for resume).
  CHECK(events[0] == event_body{peer_left{"a", leave_reason::disconnect, "i1", "{}", 1}});
  CHECK(events_of(decide_leave(state, "stranger", leave_reason::leave)).empty());
  CHECK(events_of(decide_leave(room_state{}, "a", leave_reason::expired)).empty());
}

TEST_CASE("domain: signal to one peer or to the room", "[domain]") {
  auto state = given({at(1, joins("a")), at(2, joins("b"))});
  auto one = events_of(decide_signal(state, "a", std::string("b"), "{\"sdp\":1}"));
  REQUIRE(one.size() == 1);
  CHECK(one[0] == event_body{signal_sent{"a", std::string("b"), "{\"sdp\":1}"}});

  auto all = events_of(decide_signal(state, "a", std::nullopt, "[]"));
  REQUIRE(all.size() == 1);
  CHECK(all[0] == event_body{signal_sent{"a", std::nullopt, "[]"}});
}

TEST_CASE("domain: signal refusals", "[domain]") {
  auto state = given({at(1, joins("a")), at(2, joins("b")), at(3, leaves("b"))});
  CHECK(rejection_of(decide_signal(state, "x", std::nullopt, "1")) == rejection::not_in_room);
  CHECK(rejection_of(decide_signal(state, "b", std::string("a"), "1")) == rejection::not_in_room);
  CHECK(rejection_of(decide_signal(state, "a", std::string("b"), "1")) == rejection::unknown_peer);
  CHECK(rejection_of(decide_signal(state, "a", std::string("zz"), "1")) == rejection::unknown_peer);
  CHECK(rejection_of(decide_signal(state, "a", std::string("a"), "1")) == rejection::unknown_peer);
  CHECK(rejection_of(decide_signal(room_state{}, "a", std::nullopt, "1")) == rejection::not_in_room);
}

TEST_CASE("domain: deciding again after applying the decided events gives no events",
          "[domain][property]") {
  std::mt19937 rng(7);
  strings const peers = {"a", "b", "c"};
  for (int round = 0; round < 500; ++round) {
    room_state state;
    std::uint64_t seq = 0;
    for (int step = 0; step < 20; ++step) {
      std::string const& p = peers[rng() % peers.size()];
      bool join = rng() % 2 == 0;
      auto decide = [&](room_state const& s) {
        return join ? decide_join(s, p, "{}") : decide_leave(s, p, leave_reason::leave);
      };
      auto events = events_of(decide(state));
      for (auto& body : events) state = evolve(state, at(++seq, body));
      CHECK(events_of(decide(state)).empty());
      CHECK(state.has(p) == join);
    }
  }
}

// --- recipients. -------------------------------------------------------------

TEST_CASE("domain: a join is heard by the peers already in the room", "[domain]") {
  std::vector<local_peer> local = {{"a", 1}, {"b", 2}, {"c", 5}, {"d", 9}};
  // c's own join is event 5.
  CHECK(recipients(at(5, joins("c")), local) == strings{"a", "b"});
}

TEST_CASE("domain: a leave is not heard by the peer that left", "[domain]") {
  std::vector<local_peer> local = {{"a", 1}, {"b", 2}};
  CHECK(recipients(at(6, leaves("b")), local) == strings{"a"});
  CHECK(recipients(at(6, leaves("remote")), local) == strings{"a", "b"});
}

TEST_CASE("domain: a broadcast signal reaches everyone but its sender", "[domain]") {
  std::vector<local_peer> local = {{"a", 1}, {"b", 2}, {"c", 3}};
  CHECK(recipients(at(4, signals("b")), local) == strings{"a", "c"});
  CHECK(recipients(at(4, signals("remote")), local) == strings{"a", "b", "c"});
}

TEST_CASE("domain: a directed signal reaches only its target", "[domain]") {
  std::vector<local_peer> local = {{"a", 1}, {"b", 2}, {"c", 3}};
  CHECK(recipients(at(4, signals("a", "c")), local) == strings{"c"});
  CHECK(recipients(at(4, signals("remote", "b")), local) == strings{"b"});
  CHECK(recipients(at(4, signals("a", "remote")), local).empty());
}

TEST_CASE("domain: nothing ordered before a peer's join reaches it", "[domain]") {
  std::vector<local_peer> local = {{"early", 1}, {"late", 10}};
  CHECK(recipients(at(7, signals("x")), local) == strings{"early"});
  CHECK(recipients(at(7, signals("x", "late")), local).empty());
  CHECK(recipients(at(10, signals("x")), local) == strings{"early"});
  CHECK(recipients(at(11, signals("x")), local) == strings{"early", "late"});
  CHECK(recipients(at(11, signals("x")), {}).empty());
}

// --- resume. ---------------------------------------------------------------

TEST_CASE("domain: a resume moves the member to the resuming instance, and nothing else", "[domain][resume]") {
  auto state = given({at(1, joins("a", R"({"n":1})"), "i1"), at(2, joins("b"), "i2"), at(5, peer_resumed{"a"}, "i3")});
  REQUIRE(peers_of(state) == strings{"a", "b"});
  CHECK(state.find("a")->instance == "i3");
  CHECK(state.find("a")->join_seq == 1);  // still the same member
  CHECK(state.find("a")->meta_json == R"({"n":1})");
  CHECK(state.last_membership_seq == 5);
}

TEST_CASE("domain: a resume of a peer that left changes nothing", "[domain][resume]") {
  auto state = given({at(1, joins("a")), at(2, leaves("a", leave_reason::expired)), at(3, peer_resumed{"a"}, "i2")});
  CHECK(state.members.empty());
  CHECK(state.ignored_events == 1);
}

TEST_CASE("domain: a leave decided while another instance held the peer is ignored", "[domain][resume]") {
  // i1 decides to expire a (grace over) while a resumes on i2: whichever the
  // stream orders first wins, and every instance folds the same outcome.
  auto joined = at(1, joins("a"), "i1");
  event_body expire = peer_left{"a", leave_reason::expired, "i1", "{}", 1};
  event_body resume = peer_resumed{"a"};
  auto resumed_first = given({joined, at(2, resume, "i2"), at(3, expire, "i1")});
  CHECK(peers_of(resumed_first) == strings{"a"});
  CHECK(resumed_first.find("a")->instance == "i2");
  auto expired_first = given({joined, at(2, expire, "i1"), at(3, resume, "i2")});
  CHECK(expired_first.members.empty());
  // Leaves of older versions carry no holder: no check.
  CHECK(given({joined, at(2, resume, "i2"), at(3, leaves("a"), "i1")}).members.empty());
}

TEST_CASE("domain: decide_resume needs the member of that join, and one resume at a time", "[domain][resume]") {
  auto state = given({at(1, joins("a"))});
  CHECK(events_of(decide_resume(state, "a", 1)) == std::vector<event_body>{peer_resumed{"a"}});
  CHECK(rejection_of(decide_resume(state, "gone", 1)) == rejection::not_in_room);
  // Its token names another join: it left meanwhile (and the same id came back).
  CHECK(rejection_of(decide_resume(state, "a", 7)) == rejection::not_in_room);
  CHECK(rejection_of(decide_resume(state, "a", 1, true)) == rejection::resume_in_progress);
  // Left: refused, even with the right join.
  auto left = given({at(1, joins("a")), at(2, leaves("a"))});
  CHECK(rejection_of(decide_resume(left, "a", 1)) == rejection::not_in_room);
}

TEST_CASE("domain: nobody is told of a resume", "[domain][resume]") {
  auto e = at(9, peer_resumed{"a"});
  CHECK_FALSE(is_recipient(e, "b", 1));
  CHECK_FALSE(is_recipient(e, "a", 1));
}

TEST_CASE("domain: members_before rebuilds the membership at an earlier point", "[domain][resume][property]") {
  // Random histories: for every cut, members_before(members at the end, the
  // cut's seq, the events after it) equals the fold up to the cut.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<event> history;
    int next_peer = 0;
    std::uint64_t seq = 0;
    for (int i = 0; i < 40; ++i) {
      seq += 1 + rng() % 3;
      room_state now = given(history);
      int roll = static_cast<int>(rng() % 10);
      if (roll < 3 || now.members.empty()) {
        history.push_back(at(seq, joins("p" + std::to_string(next_peer++), "{\"k\":" + std::to_string(seq) + "}"),
                             "i" + std::to_string(rng() % 3)));
      } else {
        auto const& m = now.members[rng() % now.members.size()];
        if (roll < 6) history.push_back(at(seq, leave_of(m, leave_reason::disconnect), m.instance));
        else if (roll < 7) history.push_back(at(seq, peer_resumed{m.peer}, "i" + std::to_string(rng() % 3)));
        else history.push_back(at(seq, signals(m.peer)));
      }
    }
    room_state end = given(history);
    for (std::size_t cut = 0; cut <= history.size(); ++cut) {
      std::vector<event> before(history.begin(), history.begin() + static_cast<std::ptrdiff_t>(cut));
      std::vector<event> after(history.begin() + static_cast<std::ptrdiff_t>(cut), history.end());
      std::uint64_t cut_seq = cut == 0 ? 0 : history[cut - 1].seq;
      auto rebuilt = members_before(end.members, cut_seq, after);
      auto expected = given(before).members;
      REQUIRE(rebuilt.size() == expected.size());
      for (std::size_t i = 0; i < expected.size(); ++i) {
        CHECK(rebuilt[i].peer == expected[i].peer);
        CHECK(rebuilt[i].meta_json == expected[i].meta_json);
        CHECK(rebuilt[i].join_seq == expected[i].join_seq);
      }
    }
  }
}

// --- Room names and tokens. -----------------------------------------------

TEST_CASE("domain: UTF-8 validation", "[domain][room_name]") {
  for (std::string_view good : {"", "a", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\x7F"}) {
    INFO(good);
    CHECK(is_valid_utf8(good));
  }
  CHECK(is_valid_utf8(std::string_view("\0", 1)));
  for (std::string_view bad : {"\x80", "\xBF", "\xC0\x80", "\xC1\xBF", "\xC3", "\xC3"
                               "A", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xED\xA0\x80",
                               "\xED\xBF\xBF", "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF",
                               "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80",
                               "\xFE", "\xFF", "a\xE2\x82"}) {
    INFO(bad.size());
    CHECK_FALSE(is_valid_utf8(bad));
  }
}

TEST_CASE("domain: room names are 1 to 200 bytes of UTF-8", "[domain][room_name]") {
  CHECK(is_valid_room_name("a"));
  CHECK(is_valid_room_name(std::string(200, 'x')));
  CHECK_FALSE(is_valid_room_name(std::string(201, 'x')));
  CHECK_FALSE(is_valid_room_name(""));
  CHECK_FALSE(is_valid_room_name("ok\xFF"));
  for (std::string_view name : {"a.b", "*", ">", "a b", "rooms.>", "a/b", "\xF0\x9F\x8E\x89", "..",
                                "$SYS.>", "\t"}) {
    INFO(name);
    CHECK(is_valid_room_name(name));
  }
}

TEST_CASE("domain: room tokens are base64url without padding", "[domain][room_name]") {
  CHECK(room_token("") == "");
  CHECK(room_token("f") == "Zg");
  CHECK(room_token("fo") == "Zm8");
  CHECK(room_token("foo") == "Zm9v");
  CHECK(room_token("demo") == "ZGVtbw");
  CHECK(room_token("a.b") == "YS5i");
  CHECK(room_token("*") == "Kg");
  CHECK(room_token(">") == "Pg");
  CHECK(room_token("rooms.>") == "cm9vbXMuPg");
  CHECK(room_token("\xFB\xFF") == "-_8");  // the two url-safe characters
}

TEST_CASE("domain: tokens round-trip for random byte strings", "[domain][room_name][property]") {
  std::mt19937 rng(31337);
  for (int round = 0; round < 5000; ++round) {
    std::string name;
    std::size_t len = rng() % 260;
    for (std::size_t i = 0; i < len; ++i) name += static_cast<char>(rng() % 256);
    auto token = room_token(name);
    CHECK(token.size() == (name.size() * 4 + 2) / 3);
    auto back = room_name_from_token(token);
    REQUIRE(back);
    CHECK(*back == name);
  }
}

TEST_CASE("domain: tokens hold no subject separator, wildcard or whitespace", "[domain][room_name]") {
  std::mt19937 rng(5);
  for (int round = 0; round < 2000; ++round) {
    std::string name;
    for (std::size_t i = 0, n = 1 + rng() % 50; i < n; ++i) name += static_cast<char>(rng() % 256);
    auto token = room_token(name);
    for (char c : token) {
      bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      INFO(token);
      REQUIRE((alnum || c == '-' || c == '_'));
    }
    CHECK(token.find_first_of(".*> \t\r\n\v\f/=+") == std::string::npos);
    CHECK(is_valid_subject_prefix(token));
  }
}

TEST_CASE("domain: distinct names give distinct tokens", "[domain][room_name][property]") {
  std::set<std::string> names = {"a",       "a.b", "a_b",    "a-b", "*",     ">",   "a b", "rooms.>",
                                 "rooms.*", "A",   std::string("a\0", 2),
                                 "\xF0\x9F\x8E\x89", "..", ".", "a/b", "aa", "aaa", "aaaa"};
  std::mt19937 rng(8);
  while (names.size() < 5000) {
    std::string name;
    for (std::size_t i = 0, n = 1 + rng() % 6; i < n; ++i) name += static_cast<char>(rng() % 256);
    names.insert(name);
  }
  std::set<std::string> tokens;
  for (auto const& name : names) tokens.insert(room_token(name));
  CHECK(tokens.size() == names.size());
}

TEST_CASE("domain: malformed tokens decode to nothing", "[domain][room_name]") {
  CHECK(room_name_from_token("") == std::string());
  CHECK(room_name_from_token("AA") == std::string("\0", 1));
  for (std::string_view bad : {"A", "AAAAA", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v=", "Zg==", "Zm.v",
                               "Zm v", "Zm9v*", ">"}) {
    INFO(bad);
    CHECK(room_name_from_token(bad) == std::nullopt);
  }
}

TEST_CASE("domain: subjects_for builds a room's subjects", "[domain][room_name]") {
  auto s = subjects_for("sig", "demo");
  CHECK(s.events == "sig.room.ZGVtbw.e");
  CHECK(s.all == "sig.room.ZGVtbw.>");
  CHECK(s.snapshot == "sig.room.ZGVtbw.s");
  CHECK(s.live == "sig.live.ZGVtbw.e");
  CHECK(subjects_for_token("sig", "ZGVtbw").events == s.events);

  auto hostile = subjects_for("prod.sig", "rooms.>");
  CHECK(hostile.events == "prod.sig.room.cm9vbXMuPg.e");
  CHECK(hostile.live == "prod.sig.live.cm9vbXMuPg.e");

  // Rooms whose names look like wildcards still get their own, literal subjects.
  CHECK(subjects_for("sig", "*").all != subjects_for("sig", ">").all);
  CHECK(subjects_for("sig", "a.b").events == "sig.room.YS5i.e");
}

TEST_CASE("domain: subject prefixes are plain dotted tokens", "[domain][room_name]") {
  for (std::string_view good : {"sig", "a.b", "a-b_c.D9", "x.y.z"}) {
    INFO(good);
    CHECK(is_valid_subject_prefix(good));
  }
  for (std::string_view bad : {"", ".", "a.", ".a", "a..b", "a*", "a.>", "a b", "a/b", "a\tb",
                               "\xC3\xA9"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_subject_prefix(bad));
  }
}

TEST_CASE("domain: leave reasons have their protocol names", "[domain]") {
  CHECK(to_string(leave_reason::leave) == "leave");
  CHECK(to_string(leave_reason::disconnect) == "disconnect");
  CHECK(to_string(leave_reason::expired) == "expired");
}

TEST_CASE("signal message ids: the same request of the same member gives the same id, anything else another", "[domain]") {
  using sig::domain::signal_message_id;
  std::optional<std::string> to = std::string("pb");
  auto base = signal_message_id(7, "41", to, R"({"n":1})");
  CHECK(base == signal_message_id(7, "41", to, R"({"n":1})"));
  // The member is its join's seq: no other join in the stream has it.
  CHECK(base.rfind("s.7.", 0) == 0);
  CHECK(base.size() == std::string("s.7.").size() + 22);
  CHECK(base != signal_message_id(8, "41", to, R"({"n":1})"));   // another join (of this peer, or another)
  CHECK(base != signal_message_id(70, "41", to, R"({"n":1})"));
  CHECK(base != signal_message_id(7, "42", to, R"({"n":1})"));   // another id
  CHECK(base != signal_message_id(7, "41", to, R"({"n":2})"));   // other content
  CHECK(base != signal_message_id(7, "41", std::nullopt, R"({"n":1})"));  // to everyone
  CHECK(base != signal_message_id(7, "41", std::string("pc"), R"({"n":1})"));
  // Parts are length-prefixed: moving bytes between id and data changes the id.
  CHECK(signal_message_id(7, "4", to, R"(1{"n":1})") != base);
  // Short: about 100 bytes fewer per stored signal than room and peer spelt out.
  CHECK(signal_message_id(18446744073709551615ULL, std::string(200, 'x'), to, std::string(4000, 'y')).size() == 45);
  // A fixed value (FNV-1a as specified, in base64url, computed separately in
  // Python): the id must not change between builds or hosts (a request sent
  // again may reach another instance, or a newer version).
  CHECK(signal_message_id(1, "1", std::nullopt, "0") == "s.1.QbY-bYn25VFyHyhCB8IY8g");
}

TEST_CASE("domain: decide_expiry leaves every member the dead instance held, and no other", "[domain][expiry]") {
  auto state = given({at(1, joins("a"), "i1"), at(2, joins("b"), "i2"), at(3, joins("c"), "i1")});
  auto leaves = decide_expiry(state, expiry_scope{.instance = "i1"});
  REQUIRE(leaves.size() == 2);
  CHECK(leaves[0] == leave_of(*state.find("a"), leave_reason::expired));
  CHECK(leaves[1] == leave_of(*state.find("c"), leave_reason::expired));
  CHECK(decide_expiry(state, expiry_scope{.instance = "i3"}).empty());
  // A member that resumed on i2 is i2's now: i1's death leaves it alone.
  auto moved = given({at(1, joins("a"), "i1"), at(2, peer_resumed{"a"}, "i2")});
  CHECK(decide_expiry(moved, expiry_scope{.instance = "i1"}).empty());
  CHECK(decide_expiry(moved, expiry_scope{.instance = "i2"}).size() == 1);
}

TEST_CASE("domain: decide_expiry under this instance's own id takes only an earlier run's members", "[domain][expiry]") {
  // i1 crashed and came back under the same id; this run's first event is seq 4.
  auto state = given({at(1, joins("old"), "i1"), at(2, joins("resumed-here"), "i1"), at(4, joins("new"), "i1"),
                      at(5, joins("other"), "i2")});
  expiry_scope scope{.instance = "i1", .this_run_from = 4,
                     .held_here = [](std::string const& peer) { return peer == "resumed-here"; }};
  auto leaves = decide_expiry(state, scope);
  REQUIRE(leaves.size() == 1);
  CHECK(leaves[0].peer == "old");
  CHECK(leaves[0].reason == leave_reason::expired);
  CHECK(leaves[0].join_seq == 1);
  // Without a held_here, only the join position counts.
  CHECK(decide_expiry(state, expiry_scope{.instance = "i1", .this_run_from = 4}).size() == 2);
}

TEST_CASE("snapshot message ids: one per room and position", "[domain]") {
  CHECK(snapshot_message_id("cm9vbQ", 42) == "snap.cm9vbQ.42");
  CHECK(snapshot_message_id("cm9vbQ", 42) != snapshot_message_id("cm9vbQ", 43));
  CHECK(snapshot_message_id("cm9vbQ", 42) != snapshot_message_id("b3RoZXI", 42));
}
