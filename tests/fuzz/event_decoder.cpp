// Fuzz target: the event decoders of src/adapters/codec/event_codec.hpp on
// any bytes, as they might sit in the JetStream stream (a RoomEvent on a
// room's `.e` subject) or in the presence cache and the `.s` subject (a
// RoomSnapshot). Every input is given to both decoders.
//
// Beyond "no crash, no sanitizer report":
// - an event that decodes, encoded again, decodes to an equal event and
//   room, and encoding is stable (encode(decode(encode(x))) == encode(x));
// - the pure fold takes any decoded event (evolve is total), and a decoded
//   snapshot as the state it folds into;
// - a snapshot that decodes is a consistent state (distinct non-empty peers,
//   no join after its seq) and survives encode/decode with its event count.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "adapters/codec/event_codec.hpp"
#include "domain/room_state.hpp"
#include "fuzz_check.hpp"

using namespace sig;

namespace {

// The stream assigns seq; the decoder takes it from the caller.
constexpr std::uint64_t stream_seq = 1'000;

void check_state(domain::room_state const& state) {
  for (std::size_t i = 0; i < state.members.size(); ++i) {
    auto const& m = state.members[i];
    FUZZ_CHECK(!m.peer.empty());
    FUZZ_CHECK(m.join_seq <= state.last_seq);
    for (std::size_t k = 0; k < i; ++k) FUZZ_CHECK(state.members[k].peer != m.peer);
  }
}

void check_fold(domain::room_state state, domain::event const& e) {
  std::size_t before = state.members.size();
  domain::room_state after = domain::evolve(std::move(state), e);
  FUZZ_CHECK(after.last_seq >= e.seq || after.ignored_events > 0);
  // One event adds or removes at most one member.
  FUZZ_CHECK(after.members.size() + 1 >= before && after.members.size() <= before + 1);
  check_state(after);
  // Who hears of it: any peer list, including the event's own peers.
  std::vector<domain::local_peer> locals = {{"p1", 0}, {"p2", e.seq}};
  for (auto const& m : after.members) locals.push_back({m.peer, m.join_seq});
  for (auto const& peer : domain::recipients(e, locals)) FUZZ_CHECK(!peer.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool const quiet = (codec::silence_protobuf_log(), true);
  (void)quiet;
  std::string_view bytes(reinterpret_cast<char const*>(data), size);

  std::optional<domain::room_state> snapshot;
  std::uint64_t room_events = 0;
  snapshot = codec::decode_snapshot(bytes, &room_events);
  if (snapshot) {
    FUZZ_CHECK(snapshot->last_membership_seq == snapshot->last_seq);
    check_state(*snapshot);
    std::string encoded = codec::encode_snapshot(*snapshot, snapshot->last_seq, room_events);
    std::uint64_t room_events_again = 0;
    auto again = codec::decode_snapshot(encoded, &room_events_again);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *snapshot);
    FUZZ_CHECK(room_events_again == room_events);
    FUZZ_CHECK(codec::encode_snapshot(*again, again->last_seq, room_events_again) == encoded);
  }

  auto decoded = codec::decode_event(bytes, stream_seq);
  if (!decoded) return 0;
  FUZZ_CHECK(decoded->event.seq == stream_seq);
  std::string encoded = codec::encode_event(decoded->room, decoded->event);
  auto again = codec::decode_event(encoded, stream_seq);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->room == decoded->room);
  FUZZ_CHECK(again->event == decoded->event);
  FUZZ_CHECK(codec::encode_event(again->room, again->event) == encoded);

  check_fold(domain::room_state{}, decoded->event);
  if (snapshot && snapshot->last_seq < stream_seq) check_fold(*snapshot, decoded->event);
  return 0;
}
