#pragma once
// How the event store's bytes read: events and membership snapshots in
// their stored form, behind an interface, so that the service reads and
// writes what a store holds without knowing the format (Protobuf, in
// adapters/codec). The store that hands out bytes says how they read
// (event_reads::format()).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/event.hpp"
#include "domain/room_state.hpp"

namespace sig::service {

struct decoded_event {
  std::string room;
  domain::event event;
};

// What an instance needs to know of a signal to tell whether it is for one
// of its peers, read from the stored bytes without decoding the rest (no
// allocation): most instances following a room have no recipient for a
// signal addressed to one peer. Views into the bytes.
struct signal_outline {
  std::string_view room;
  std::string_view to;  // empty: a broadcast
  std::int64_t time_ms = 0;
};

class stored_format {
 public:
  virtual ~stored_format() = default;
  // The stored bytes of an event. `e.seq` is not stored: the stream assigns it.
  virtual std::string encode_event(std::string_view room, domain::event const& e) const = 0;
  // nullopt for bytes that are not an event, or one of a kind this version
  // does not know: the caller skips it and counts it.
  virtual std::optional<decoded_event> decode_event(std::string_view bytes, std::uint64_t seq) const = 0;
  // nullopt when `bytes` is not a signal event (or not readable): decode it.
  virtual std::optional<signal_outline> outline_signal(std::string_view bytes) const = 0;
  // A membership snapshot as of stream sequence `seq`, every event of the
  // room up to it folded; `room_events`: how many of the room's events led
  // to it.
  virtual std::string encode_snapshot(domain::room_state const& state, std::uint64_t seq,
                                      std::uint64_t room_events = 0) const = 0;
  virtual std::optional<domain::room_state> decode_snapshot(std::string_view bytes,
                                                            std::uint64_t* room_events = nullptr) const = 0;
};

}  // namespace sig::service
