#pragma once
// Client-visible error codes of docs/protocol.md. The numeric values are stable
// (logs and metrics use them); docs/errors.md lists them.
#include <string_view>

namespace sig::protocol {

enum class error_code : int {
  bad_request = 1,
  too_large = 2,
  invalid_room = 3,
  not_in_room = 4,
  already_in_room = 5,
  unknown_peer = 6,
  unauthorized = 7,
  room_full = 8,
  rate_limited = 9,
  unavailable = 10,
};

std::string_view to_string(error_code code);  // "bad-request", "too-large", ...

}  // namespace sig::protocol
