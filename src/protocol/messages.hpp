#pragma once
// The client protocol (docs/protocol.md, version 1) as pure functions: text frames
// in, typed requests out; typed replies and events in, text frames out.
// No I/O and no allocation beyond the strings returned.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/event.hpp"
#include "protocol/error_code.hpp"

namespace sig::protocol {

struct limits {
  std::size_t max_meta_bytes = 4 * 1024;   // `meta` serialized
  std::size_t max_data_bytes = 64 * 1024;  // `data` serialized
  std::size_t max_nesting = 64;            // JSON depth; deeper is bad-request
};

// A request's `id` (a JSON string or number), kept as its raw JSON text so
// that it is echoed back exactly as the client wrote it.
using request_id = std::optional<std::string>;

struct join_request {
  request_id id;
  std::string room;              // decoded UTF-8, validated as a room name
  std::string meta_json = "{}";  // raw JSON text of the object
  std::optional<std::string> token;
  std::optional<std::string> resume;  // absent or "": a fresh join
  // Extension (sigstream's client sends it with `resume`): the `seq` of the
  // last event the client processed, so that a resume replays exactly what
  // came after. Without it, everything since the peer's join is replayed.
  std::optional<std::uint64_t> last_seq;
};

struct signal_request {
  request_id id;
  std::optional<std::string> to;
  std::string data_json;  // raw JSON text of any value
};

struct leave_request {
  request_id id;
};

using client_message = std::variant<join_request, signal_request, leave_request>;

struct parse_error {
  error_code code = error_code::bad_request;
  std::string message;  // short, for humans; never echoes the client's data
  request_id id;        // the request's id when it could be read
};

std::variant<client_message, parse_error> parse_client_message(std::string_view frame,
                                                                limits const& lim = {});

// --- Server to client. Every function returns one complete JSON frame. ----

// `instance` fields are an extension of docs/protocol.md (extra fields, which
// clients ignore): the instance a peer is connected to, for tools and the
// demo page. Empty: the field is left out.
struct peer_entry {
  std::string peer;
  std::string meta_json;
  std::string instance;
};

std::string joined_message(request_id const& id, std::string_view room, std::string_view peer,
                           std::vector<peer_entry> const& peers, std::uint64_t seq,
                           std::string_view resume, std::string_view instance = {});
std::string peer_joined_message(std::string_view peer, std::string_view meta_json, std::uint64_t seq,
                                std::string_view instance = {});
std::string peer_left_message(std::string_view peer, domain::leave_reason reason, std::uint64_t seq);
std::string signal_message(std::string_view from, std::optional<std::string> const& to,
                           std::string_view data_json, std::uint64_t seq);
// The frame a room's peers get for a stored event: peer-joined, peer-left or
// signal, at the event's seq. Nullopt for a resume, which nobody is told of.
// The one mapping from events to frames: live delivery, resume replay and
// the history tools all use it.
std::optional<std::string> event_frame(domain::event const& event);
std::string ack_message(request_id const& id, std::uint64_t seq);
std::string error_message(request_id const& id, error_code code, std::string_view message);

// JSON string literal (with quotes) for any byte string; invalid UTF-8 bytes
// are replaced by U+FFFD so that the output is always valid JSON.
std::string json_quote(std::string_view text);

}  // namespace sig::protocol
