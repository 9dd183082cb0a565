// The storage format: every event round-trips; bytes that are not an event
// this version knows are refused, never half-read.
#include <catch2/catch.hpp>

#include <random>

#include "adapters/codec/event_codec.hpp"
#include "sigstream/events/v1/events.pb.h"

using namespace sig;

namespace {

domain::event make(std::uint64_t seq, domain::event_body body) { return {seq, 1'700'000'000'123, "i7", std::move(body)}; }

}  // namespace

TEST_CASE("every kind of event round-trips with room, time and instance", "[codec]") {
  std::vector<domain::event> events = {
      make(1, domain::peer_joined{"pA", R"({"name":"ana"})"}),
      make(2, domain::peer_left{"pA", domain::leave_reason::leave}),
      make(3, domain::peer_left{"pB", domain::leave_reason::disconnect}),
      make(4, domain::peer_left{"pC", domain::leave_reason::expired}),
      make(5, domain::signal_sent{"pA", std::string("pB"), R"({"sdp":"v=0"})"}),
      make(6, domain::signal_sent{"pA", std::nullopt, "[1,2,3]"}),
      make(7, domain::peer_left{"pD", domain::leave_reason::expired, "i9", R"({"x":1})", 3}),
      make(8, domain::peer_resumed{"pE"}),
  };
  std::string const room = "r\xC3\xA9sum\xC3\xA9 *.> \xF0\x9F\x8E\x89";
  for (auto const& e : events) {
    auto bytes = codec::encode_event(room, e);
    auto decoded = codec::decode_event(bytes, e.seq);
    REQUIRE(decoded);
    CHECK(decoded->room == room);
    CHECK(decoded->event == e);
  }
}

TEST_CASE("the seq comes from the stream, not from the bytes", "[codec]") {
  auto bytes = codec::encode_event("r", make(5, domain::peer_joined{"p", "{}"}));
  CHECK(codec::decode_event(bytes, 99)->event.seq == 99);
}

TEST_CASE("bytes that are not a known event are refused", "[codec]") {
  CHECK_FALSE(codec::decode_event("\xFF\xFF\xFF\xFF", 1));  // not protobuf
  CHECK_FALSE(codec::decode_event("", 1));                  // a RoomEvent with no kind

  sigstream::events::v1::RoomEvent no_peer;
  no_peer.mutable_joined();  // a join without a peer id
  CHECK_FALSE(codec::decode_event(no_peer.SerializeAsString(), 1));

  sigstream::events::v1::RoomEvent no_reason;
  no_reason.mutable_left()->set_peer("p");  // LEAVE_REASON_UNSPECIFIED
  CHECK_FALSE(codec::decode_event(no_reason.SerializeAsString(), 1));

  sigstream::events::v1::RoomEvent no_sender;
  no_sender.mutable_signal()->set_data_json("1");
  CHECK_FALSE(codec::decode_event(no_sender.SerializeAsString(), 1));
}

TEST_CASE("random bytes never crash the decoder", "[codec]") {
  codec::silence_protobuf_log();
  std::mt19937 rng(7);
  auto valid = codec::encode_event("room", make(1, domain::signal_sent{"pA", std::string("pB"), "{}"}));
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = valid;
    if (i % 2 == 0) {
      bytes.resize(rng() % 64);
      for (auto& c : bytes) c = static_cast<char>(rng());
    } else {
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    auto decoded = codec::decode_event(bytes, 1);
    if (decoded) CHECK(decoded->event.seq == 1);
  }
}

TEST_CASE("a membership snapshot round-trips and keeps its seq", "[codec]") {
  domain::room_state state;
  state = domain::evolve(state, make(3, domain::peer_joined{"pA", "{}"}));
  state = domain::evolve(state, make(8, domain::peer_joined{"pB", R"({"x":1})"}));
  state = domain::evolve(state, make(9, domain::signal_sent{"pA", std::nullopt, "1"}));
  auto decoded = codec::decode_snapshot(codec::encode_snapshot(state, 9));
  REQUIRE(decoded);
  CHECK(decoded->members == state.members);
  CHECK(decoded->last_membership_seq == 9);
  CHECK(decoded->last_seq == 9);  // the room's position, signals included
  std::uint64_t events = 0;
  REQUIRE(codec::decode_snapshot(codec::encode_snapshot(state, 9, 3000), &events));
  CHECK(events == 3000);
}

TEST_CASE("an inconsistent snapshot is refused", "[codec]") {
  sigstream::events::v1::RoomSnapshot snap;
  snap.set_seq(5);
  auto* m = snap.add_members();
  m->set_peer("pA");
  m->set_join_seq(9);  // joined after the snapshot's own seq
  CHECK_FALSE(codec::decode_snapshot(snap.SerializeAsString()));

  sigstream::events::v1::RoomSnapshot twice;
  twice.set_seq(5);
  twice.add_members()->set_peer("pA");
  twice.add_members()->set_peer("pA");
  CHECK_FALSE(codec::decode_snapshot(twice.SerializeAsString()));
  CHECK_FALSE(codec::decode_snapshot("\xFF\xFF"));
}

TEST_CASE("a signal's outline names its room, target and time, read without decoding", "[codec]") {
  using namespace sig;
  domain::event targeted{0, 1700000000123, "i2", domain::signal_sent{"pa", std::string("pb"), R"({"sdp":"v=0"})"}};
  auto bytes = codec::encode_event("room é", targeted);  // the outline's views point into it
  auto outline = codec::outline_signal(bytes);
  REQUIRE(outline);
  CHECK(outline->room == "room é");
  CHECK(outline->to == "pb");
  CHECK(outline->time_ms == 1700000000123);
  domain::event broadcast{0, 5, "i1", domain::signal_sent{"pa", std::nullopt, "1"}};
  auto broadcast_bytes = codec::encode_event("r", broadcast);
  auto b = codec::outline_signal(broadcast_bytes);
  REQUIRE(b);
  CHECK(b->to.empty());
  // Other kinds of event, and bytes that are not an event, have no outline.
  CHECK_FALSE(codec::outline_signal(codec::encode_event("r", domain::event{0, 1, "i1", domain::peer_joined{"pa", "{}"}})));
  CHECK_FALSE(codec::outline_signal(codec::encode_event("r", domain::event{0, 1, "i1", domain::peer_resumed{"pa"}})));
  CHECK_FALSE(codec::outline_signal("\xff\xff\xff"));
  CHECK_FALSE(codec::outline_signal(""));
}

TEST_CASE("a signal's outline agrees with the full decoder on random signals, and never reads past the bytes", "[codec]") {
  using namespace sig;
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    std::string to(rng() % 40, 'x');
    for (auto& c : to) c = static_cast<char>('a' + rng() % 26);
    domain::event e{0, static_cast<std::int64_t>(rng()), "inst", domain::signal_sent{"from", to.empty() ? std::nullopt : std::optional<std::string>(to), std::string(rng() % 300, '1')}};
    auto bytes = codec::encode_event("room", e);
    auto outline = codec::outline_signal(bytes);
    auto decoded = codec::decode_event(bytes, 1);
    REQUIRE(outline);
    REQUIRE(decoded);
    auto const& s = std::get<domain::signal_sent>(decoded->event.body);
    CHECK(outline->to == s.to.value_or(""));
    CHECK(outline->time_ms == decoded->event.time_ms);
    // Every truncation is refused or outlined without reading past the end.
    for (std::size_t cut = 0; cut < bytes.size(); cut += 7) (void)codec::outline_signal(std::string_view(bytes).substr(0, cut));
  }
}
