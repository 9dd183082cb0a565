#pragma once
// Room membership as a pure fold of events. No I/O, no clocks, no threads:
// every instance folds the same log and so reaches the same state.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/event.hpp"

namespace sig::domain {

struct member {
  std::string peer;
  std::string meta_json;
  std::string instance;  // where the peer is connected
  std::uint64_t join_seq = 0;
  friend bool operator==(member const&, member const&) = default;
};

struct room_state {
  std::vector<member> members;         // oldest join first
  std::uint64_t last_seq = 0;          // last event folded (any kind)
  std::uint64_t last_membership_seq = 0;  // last join/leave folded
  std::uint64_t ignored_events = 0;    // events that changed nothing (duplicates, unknown peers)

  member const* find(std::string_view peer) const;
  bool has(std::string_view peer) const { return find(peer) != nullptr; }
  friend bool operator==(room_state const&, room_state const&) = default;
};

// Total: never throws, never fails. An event at or below last_seq is a
// duplicate and is ignored, as is a join of a member or a leave of a stranger.
room_state evolve(room_state state, event const& e);

template <typename Range>
room_state fold(room_state state, Range const& events) {
  for (auto const& e : events) state = evolve(std::move(state), e);
  return state;
}

// Decisions: what a command appends, given the current state. An already
// satisfied command appends nothing, so retrying a command is always safe.
enum class rejection {
  not_in_room,         // the peer is not (or no longer) a member
  unknown_peer,        // a signal's target is not another member
  room_full,           // members and joins on their way reach the cap
  resume_in_progress,  // the peer is resuming on another connection already
};

using decision = std::variant<std::vector<event_body>, rejection>;

// The room's cap counts the members and the joins this instance has on
// their way (appended, not yet folded). Other instances may admit joins at
// the same moment: the cap holds per instance's view, so a room can
// overshoot it by a few at once.
struct join_limits {
  std::size_t max_peers = static_cast<std::size_t>(-1);
  std::size_t joins_in_flight = 0;
};
decision decide_join(room_state const& state, std::string peer, std::string meta_json, join_limits limits = {});
decision decide_leave(room_state const& state, std::string peer, leave_reason reason);
decision decide_signal(room_state const& state, std::string from,
                       std::optional<std::string> to, std::string data_json);
// A member's connection moved to the instance that appends the result. The
// resume names the join it continues (`join_seq`, from its signed token): a
// peer that left and is gone, or a join other than that one, is refused,
// as is a second resume while one is on its way.
decision decide_resume(room_state const& state, std::string peer, std::uint64_t join_seq,
                       bool resume_in_flight = false);
// The ghosts a dead instance left in a room: the `expired` leaves of the
// members it held. When the "dead" instance is this one's own id (an
// earlier run that crashed), only that run's members go: those joined
// before this run's first event (`this_run_from`, 0: not our id) and held
// by no connection of this run (`held_here`). Every survivor decides the
// same leaves, and expiry_message_id makes them one in the stream.
struct expiry_scope {
  std::string_view instance;
  std::uint64_t this_run_from = 0;
  std::function<bool(std::string const& peer)> held_here;  // may be empty: nobody
};
std::vector<peer_left> decide_expiry(room_state const& state, expiry_scope const& scope);
// The leave of member `m`, carrying what members_before needs.
peer_left leave_of(member const& m, leave_reason reason);

// The members as they were after event `from_seq`, given the members
// `after` a later point and the events `later` between the two (in order).
// A resumed peer is answered with the membership at the last event it had,
// then sent what came after: this rebuilds that membership without reading
// the room's history from its start. Members who left in between come back
// from what their leave event carries (older leaves without it are lost).
std::vector<member> members_before(std::vector<member> const& after, std::uint64_t from_seq,
                                   std::vector<event> const& later);

// Who among this instance's peers must hear of an event. `local_peers` are
// peers connected here whose own join is already folded. A peer never hears
// of its own join or leave, nor of its own signal, nor of anything ordered
// before its join.
struct local_peer {
  std::string peer;
  std::uint64_t join_seq = 0;
};

bool is_recipient(event const& e, std::string_view peer, std::uint64_t join_seq);
std::vector<std::string> recipients(event const& e, std::vector<local_peer> const& local_peers);

}  // namespace sig::domain
