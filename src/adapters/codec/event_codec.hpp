#pragma once
// Domain events <-> their stored form (Protobuf, schemas/sigstream/events/v1).
#include <optional>
#include <string>
#include <string_view>

#include "domain/event.hpp"
#include "domain/room_state.hpp"
#include "ports/stored_format.hpp"

namespace sig::codec {

// The stored bytes of an event. `e.seq` is not stored: the stream assigns it.
std::string encode_event(std::string_view room, domain::event const& e);

using service::decoded_event;

// nullopt for bytes that are not a RoomEvent, or one of a kind this version
// does not know: the caller skips it and counts it.
std::optional<decoded_event> decode_event(std::string_view bytes, std::uint64_t seq);

using service::signal_outline;  // what a signal is, read without decoding it
// nullopt when `bytes` is not a signal event (or not readable): decode it.
std::optional<signal_outline> outline_signal(std::string_view bytes);

// Protobuf prints to stderr for every unreadable message it is handed. The
// decoder already reports those (as nullopt, which callers count), so call
// this once at start-up to keep hostile stream bytes out of the log.
void silence_protobuf_log();

// Membership snapshot (RoomSnapshot) for the presence cache: the members as
// of stream sequence `seq`, where every event of the room up to `seq` has
// been folded. Decoding gives a state whose last_seq and
// last_membership_seq are that seq.
// `room_events`: how many of the room's events led to it (see events.proto).
std::string encode_snapshot(domain::room_state const& state, std::uint64_t seq, std::uint64_t room_events = 0);
std::optional<domain::room_state> decode_snapshot(std::string_view bytes, std::uint64_t* room_events = nullptr);

// The service's stored_format port over the functions above.
class protobuf_format final : public service::stored_format {
 public:
  std::string encode_event(std::string_view room, domain::event const& e) const override {
    return codec::encode_event(room, e);
  }
  std::optional<decoded_event> decode_event(std::string_view bytes, std::uint64_t seq) const override {
    return codec::decode_event(bytes, seq);
  }
  std::optional<signal_outline> outline_signal(std::string_view bytes) const override {
    return codec::outline_signal(bytes);
  }
  std::string encode_snapshot(domain::room_state const& state, std::uint64_t seq,
                              std::uint64_t room_events = 0) const override {
    return codec::encode_snapshot(state, seq, room_events);
  }
  std::optional<domain::room_state> decode_snapshot(std::string_view bytes,
                                                    std::uint64_t* room_events = nullptr) const override {
    return codec::decode_snapshot(bytes, room_events);
  }
};

}  // namespace sig::codec
