#pragma once
// Room events: the facts a room's history is made of. These are the domain's
// own types; the Protobuf schema in schemas/ is their storage format, and
// adapters/codec translates between the two.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace sig::domain {

enum class leave_reason { leave, disconnect, expired };

std::string_view to_string(leave_reason reason);

struct peer_joined {
  std::string peer;
  std::string meta_json;  // a JSON object, already validated, kept verbatim
  friend bool operator==(peer_joined const&, peer_joined const&) = default;
};

struct peer_left {
  std::string peer;
  leave_reason reason = leave_reason::leave;
  // The instance that held the peer when the leave was decided. A leave
  // whose holder no longer holds the peer (it resumed elsewhere meanwhile)
  // changes nothing. Empty (events of older versions): no such check.
  std::string holder;
  // The member as it was (its meta and join), so that the membership before
  // a stretch of events can be rebuilt from the state after it (resume).
  std::string meta_json;
  std::uint64_t join_seq = 0;
  friend bool operator==(peer_left const&, peer_left const&) = default;
};

// A member's connection moved: it resumed (docs/protocol.md `resume`) on the
// instance that appended this event, which holds it from now on. Nobody is
// told: to the room the peer never left.
struct peer_resumed {
  std::string peer;
  friend bool operator==(peer_resumed const&, peer_resumed const&) = default;
};

struct signal_sent {
  std::string from;
  std::optional<std::string> to;  // empty: every other peer of the room
  std::string data_json;          // any JSON value, already validated
  friend bool operator==(signal_sent const&, signal_sent const&) = default;
};

// New kinds go last: metrics and tools index kinds by position.
using event_body = std::variant<peer_joined, peer_left, signal_sent, peer_resumed>;

// Membership events (join, leave, resume) change room state; signals never do.
inline bool is_membership(event_body const& body) {
  return !std::holds_alternative<signal_sent>(body);
}

struct event {
  std::uint64_t seq = 0;      // position in the stream; grows within a room
  std::int64_t time_ms = 0;   // wall clock of the appending instance, Unix ms
  std::string instance;       // instance that appended the event
  event_body body;
  friend bool operator==(event const&, event const&) = default;
};

}  // namespace sig::domain
