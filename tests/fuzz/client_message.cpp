// Fuzz target: the client message parser, protocol::parse_client_message
// (src/protocol/messages.hpp) with the default protocol::limits, on any
// bytes a client may put in a text frame.
//
// Beyond "no crash, no sanitizer report", it checks what the rest of the
// service relies on:
// - a parsed request holds only valid data: a valid room name, `meta` a JSON
//   object and `data` a JSON value within their limits, no empty `to` or
//   `resume`, an `id` that is a JSON string or number;
// - handling it does not break: the replies and events built from it
//   (joined, peer-joined, signal, ack) are valid JSON objects that carry
//   the client's `id`, room, `meta` and `data` back exactly;
// - the request written again as a frame parses to the same request;
// - a refusal becomes a valid error frame whose message survives quoting.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/room_name.hpp"
#include "fuzz_check.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"

using namespace sig;
namespace json = sig::protocol::json;

namespace {

protocol::limits const lim{};

// Replies nest what the client sent a little deeper than the client did
// (a member's meta sits in joined.peers[i]).
constexpr std::size_t reply_depth_margin = 4;

// `frame` must outlive the document (it holds views into it).
json::document check_frame(std::string const& frame, std::string_view type) {
  json::document doc = json::parse(frame, lim.max_nesting + reply_depth_margin);
  FUZZ_CHECK(doc.ok());
  FUZZ_CHECK(doc.root.kind == json::kind::object);
  json::value const* t = doc.object.find("type");
  FUZZ_CHECK(t != nullptr && t->kind == json::kind::string && t->text == type);
  return doc;
}

void check_id_echoed(json::document const& doc, protocol::request_id const& id) {
  json::value const* v = doc.object.find("id");
  if (!id) {
    FUZZ_CHECK(v == nullptr);
    return;
  }
  FUZZ_CHECK(v != nullptr && v->raw == *id);
}

void check_id(protocol::request_id const& id) {
  if (!id) return;
  json::document doc = json::parse(*id, lim.max_nesting);
  FUZZ_CHECK(doc.ok());
  FUZZ_CHECK(doc.root.kind == json::kind::string || doc.root.kind == json::kind::number);
  FUZZ_CHECK(doc.root.raw == *id);
}

std::string string_field(json::document const& doc, std::string_view key) {
  json::value const* v = doc.object.find(key);
  FUZZ_CHECK(v != nullptr && v->kind == json::kind::string);
  return v->text;
}

std::string_view raw_field(json::document const& doc, std::string_view key) {
  json::value const* v = doc.object.find(key);
  FUZZ_CHECK(v != nullptr);
  return v->raw;
}

// The request as a client would write it again: with its id, quoted strings
// and raw JSON values. Parsing that must give the same request.
std::string start_again(std::string_view type, protocol::request_id const& id) {
  std::string out = "{\"type\":" + protocol::json_quote(type);
  if (id) out += ",\"id\":" + *id;
  return out;
}

protocol::client_message reparse(std::string const& frame) {
  auto result = protocol::parse_client_message(frame, lim);
  auto* message = std::get_if<protocol::client_message>(&result);
  FUZZ_CHECK(message != nullptr);
  return std::move(*message);
}

void check_join(protocol::join_request const& req) {
  FUZZ_CHECK(domain::is_valid_room_name(req.room));
  // The room reaches NATS only as its token, which gives the name back.
  FUZZ_CHECK(domain::room_name_from_token(domain::room_token(req.room)) == req.room);
  FUZZ_CHECK(req.meta_json.size() <= lim.max_meta_bytes);
  json::document meta = json::parse(req.meta_json, lim.max_nesting);
  FUZZ_CHECK(meta.ok() && meta.root.kind == json::kind::object);
  FUZZ_CHECK(!req.resume || !req.resume->empty());
  check_id(req.id);

  std::vector<protocol::peer_entry> peers = {{"p1", req.meta_json, "i1"}, {"p2", "{}", ""}};
  std::string joined = protocol::joined_message(req.id, req.room, "p0", peers, 41,
                                                req.resume.value_or("r"), "i0");
  json::document doc = check_frame(joined, "joined");
  check_id_echoed(doc, req.id);
  FUZZ_CHECK(string_field(doc, "room") == req.room);

  std::string peer_joined = protocol::peer_joined_message("p0", req.meta_json, 42, "i0");
  doc = check_frame(peer_joined, "peer-joined");
  FUZZ_CHECK(raw_field(doc, "meta") == req.meta_json);

  std::string again = start_again("join", req.id);
  again += ",\"room\":" + protocol::json_quote(req.room);
  again += ",\"meta\":" + req.meta_json;
  if (req.token) again += ",\"token\":" + protocol::json_quote(*req.token);
  if (req.resume) again += ",\"resume\":" + protocol::json_quote(*req.resume);
  if (req.last_seq) again += ",\"last_seq\":" + std::to_string(*req.last_seq);
  again += '}';
  protocol::client_message message = reparse(again);
  auto* same = std::get_if<protocol::join_request>(&message);
  FUZZ_CHECK(same != nullptr);
  FUZZ_CHECK(same->id == req.id);
  FUZZ_CHECK(same->room == req.room);
  FUZZ_CHECK(same->meta_json == req.meta_json);
  FUZZ_CHECK(same->token == req.token);
  FUZZ_CHECK(same->resume == req.resume);
  FUZZ_CHECK(same->last_seq == req.last_seq);
}

void check_signal(protocol::signal_request const& req) {
  FUZZ_CHECK(!req.to || !req.to->empty());
  FUZZ_CHECK(!req.data_json.empty() && req.data_json.size() <= lim.max_data_bytes);
  json::document data = json::parse(req.data_json, lim.max_nesting);
  FUZZ_CHECK(data.ok());
  FUZZ_CHECK(data.root.raw == req.data_json);
  check_id(req.id);

  std::string signal = protocol::signal_message("p0", req.to, req.data_json, 43);
  json::document doc = check_frame(signal, "signal");
  FUZZ_CHECK(raw_field(doc, "data") == req.data_json);
  if (req.to) {
    FUZZ_CHECK(string_field(doc, "to") == *req.to);
  } else {
    FUZZ_CHECK(doc.object.find("to") == nullptr);
  }
  std::string ack = protocol::ack_message(req.id, 43);
  check_id_echoed(check_frame(ack, "ack"), req.id);

  std::string again = start_again("signal", req.id);
  if (req.to) again += ",\"to\":" + protocol::json_quote(*req.to);
  again += ",\"data\":" + req.data_json;
  again += '}';
  protocol::client_message message = reparse(again);
  auto* same = std::get_if<protocol::signal_request>(&message);
  FUZZ_CHECK(same != nullptr);
  FUZZ_CHECK(same->id == req.id);
  FUZZ_CHECK(same->to == req.to);
  FUZZ_CHECK(same->data_json == req.data_json);
}

void check_leave(protocol::leave_request const& req) {
  check_id(req.id);
  std::string ack = protocol::ack_message(req.id, 44);
  check_id_echoed(check_frame(ack, "ack"), req.id);

  protocol::client_message message = reparse(start_again("leave", req.id) + "}");
  auto* same = std::get_if<protocol::leave_request>(&message);
  FUZZ_CHECK(same != nullptr && same->id == req.id);
}

void check_refusal(protocol::parse_error const& err) {
  FUZZ_CHECK(!err.message.empty());
  FUZZ_CHECK(!protocol::to_string(err.code).empty());
  check_id(err.id);
  std::string frame = protocol::error_message(err.id, err.code, err.message);
  json::document doc = check_frame(frame, "error");
  check_id_echoed(doc, err.id);
  FUZZ_CHECK(string_field(doc, "code") == protocol::to_string(err.code));
  // The message is valid UTF-8 (it may echo a cut `type`): quoting keeps it.
  FUZZ_CHECK(domain::is_valid_utf8(err.message));
  FUZZ_CHECK(string_field(doc, "message") == err.message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view frame(reinterpret_cast<char const*>(data), size);
  auto result = protocol::parse_client_message(frame, lim);
  if (auto* err = std::get_if<protocol::parse_error>(&result)) {
    check_refusal(*err);
    return 0;
  }
  auto const& message = std::get<protocol::client_message>(result);
  if (auto const* join = std::get_if<protocol::join_request>(&message)) check_join(*join);
  if (auto const* signal = std::get_if<protocol::signal_request>(&message)) check_signal(*signal);
  if (auto const* leave = std::get_if<protocol::leave_request>(&message)) check_leave(*leave);
  return 0;
}
