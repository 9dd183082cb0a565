#include "protocol/error_code.hpp"

namespace sig::protocol {

std::string_view to_string(error_code code) {
  switch (code) {
    case error_code::bad_request: return "bad-request";
    case error_code::too_large: return "too-large";
    case error_code::invalid_room: return "invalid-room";
    case error_code::not_in_room: return "not-in-room";
    case error_code::already_in_room: return "already-in-room";
    case error_code::unknown_peer: return "unknown-peer";
    case error_code::unauthorized: return "unauthorized";
    case error_code::room_full: return "room-full";
    case error_code::rate_limited: return "rate-limited";
    case error_code::unavailable: return "unavailable";
  }
  return "bad-request";
}

}  // namespace sig::protocol
