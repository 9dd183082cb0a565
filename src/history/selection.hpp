#pragma once
// Which events of a room's history the tools show, and what one peer was
// sent. Pure: decided from the event and the room state just before it,
// computed by the same fold the instances use.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/room_state.hpp"
#include "history/time_point.hpp"

namespace sig::history {

struct kinds {
  bool join = true, leave = true, signal = true, resume = true;
};

// "join,leave,signal,resume" (any subset, any order). nullopt and `error` naming the
// bad word otherwise.
std::optional<kinds> parse_kinds(std::string_view text, std::string* error);

struct selection {
  std::optional<point> since, until;  // inclusive bounds
  kinds kind;
  std::string peer;     // non-empty: only events of this peer, as sender or receiver
  std::string as_peer;  // non-empty: only what this peer was sent
};

// The event is inside [since, until]. Separate from `selected` so a reader
// can tell "not yet" from "past the end" and stop early.
bool after_since(selection const& s, domain::event const& e);
bool past_until(selection const& s, domain::event const& e);

// The peer was sent something because of this event: its own `joined`, or a
// `peer-joined`, `peer-left` or `signal` (domain::is_recipient, for a member).
bool was_sent_to(domain::event const& e, domain::room_state const& before, std::string_view peer);

// Kind, peer and as-peer filters (not the time bounds).
bool selected(selection const& s, domain::event const& e, domain::room_state const& before);

// The exact frame the peer was sent because of the event (docs/protocol.md, with
// sigstream's `instance` extension), or nullopt if it was sent nothing. A
// `joined` reply lacks the request's `id` and the `resume` token, which the
// history does not keep.
std::optional<std::string> message_sent_to(domain::event const& e, domain::room_state const& before,
                                           std::string_view room, std::string_view peer);

}  // namespace sig::history
