#include "protocol/messages.hpp"

#include <charconv>

#include "domain/room_name.hpp"
#include "protocol/json.hpp"

namespace sig::protocol {

namespace {

constexpr std::size_t max_echoed_type_bytes = 40;

parse_error refuse(error_code code, std::string message, request_id const& id = std::nullopt) {
  return parse_error{code, std::move(message), id};
}

// The longest prefix of at most `max` bytes that does not cut a UTF-8
// sequence in two, so that the echo stays readable.
std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// Optional string field: absent is fine, any other type is not.
bool optional_string(json::object_view const& obj, std::string_view key,
                     std::optional<std::string>& out) {
  json::value const* v = obj.find(key);
  if (!v) return true;
  if (v->kind != json::kind::string) return false;
  out = v->text;
  return true;
}

std::variant<client_message, parse_error> parse_join(json::object_view const& obj,
                                                     request_id id, limits const& lim) {
  join_request req;
  json::value const* room = obj.find("room");
  if (!room) return refuse(error_code::bad_request, "join needs a room", id);
  if (room->kind != json::kind::string)
    return refuse(error_code::bad_request, "room must be a string", id);
  if (!domain::is_valid_room_name(room->text))
    return refuse(error_code::invalid_room, "room must be 1 to 200 bytes of UTF-8", id);
  req.room = room->text;

  if (json::value const* meta = obj.find("meta")) {
    if (meta->kind != json::kind::object)
      return refuse(error_code::bad_request, "meta must be an object", id);
    if (meta->raw.size() > lim.max_meta_bytes)
      return refuse(error_code::too_large, "meta is too large", id);
    req.meta_json = meta->raw;
  }
  if (!optional_string(obj, "token", req.token))
    return refuse(error_code::bad_request, "token must be a string", id);
  if (!optional_string(obj, "resume", req.resume))
    return refuse(error_code::bad_request, "resume must be a string", id);
  if (req.resume && req.resume->empty()) req.resume.reset();  // "no token yet"
  if (json::value const* last = obj.find("last_seq")) {
    std::uint64_t value = 0;
    auto const& raw = last->raw;
    auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), value);
    if (last->kind != json::kind::number || ec != std::errc() || end != raw.data() + raw.size())
      return refuse(error_code::bad_request, "last_seq must be a non-negative integer", id);
    req.last_seq = value;
  }
  req.id = std::move(id);
  return client_message{std::move(req)};
}

std::variant<client_message, parse_error> parse_signal(json::object_view const& obj,
                                                       request_id id, limits const& lim) {
  signal_request req;
  if (!optional_string(obj, "to", req.to))
    return refuse(error_code::bad_request, "to must be a string", id);
  if (req.to && req.to->empty()) return refuse(error_code::bad_request, "to must not be empty", id);
  json::value const* data = obj.find("data");
  if (!data) return refuse(error_code::bad_request, "signal needs data", id);
  if (data->raw.size() > lim.max_data_bytes)
    return refuse(error_code::too_large, "data is too large", id);
  req.data_json = data->raw;
  req.id = std::move(id);
  return client_message{std::move(req)};
}

void append_uint(std::string& out, std::uint64_t n) {
  char buf[20];
  auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
  out.append(buf, end);
}

// Frames are built by appending `,"key":` pieces; these keep that readable.
void add_raw(std::string& out, std::string_view key, std::string_view raw_json) {
  out += ",\"";
  out += key;
  out += "\":";
  out += raw_json;
}

void add_string(std::string& out, std::string_view key, std::string_view text) {
  add_raw(out, key, json_quote(text));
}

void add_uint(std::string& out, std::string_view key, std::uint64_t n) {
  add_raw(out, key, "");
  append_uint(out, n);
}

// The empty string is never valid JSON; should a caller pass one, the frame
// still parses on the client.
std::string_view or_default(std::string_view raw_json, std::string_view fallback) {
  return raw_json.empty() ? fallback : raw_json;
}

std::string start_frame(std::string_view type, request_id const& id) {
  std::string out = "{\"type\":\"";
  out += type;
  out += '"';
  if (id) add_raw(out, "id", *id);
  return out;
}

}  // namespace

std::variant<client_message, parse_error> parse_client_message(std::string_view frame,
                                                                limits const& lim) {
  json::document doc = json::parse(frame, lim.max_nesting);
  if (doc.error == json::error::too_deep)
    return refuse(error_code::bad_request, "JSON nested too deep");
  if (!doc.ok()) return refuse(error_code::bad_request, "frame is not valid JSON");
  if (doc.root.kind != json::kind::object)
    return refuse(error_code::bad_request, "frame must be a JSON object");
  json::object_view const& obj = doc.object;

  request_id id;
  if (json::value const* v = obj.find("id")) {
    if (v->kind != json::kind::string && v->kind != json::kind::number)
      return refuse(error_code::bad_request, "id must be a string or a number");
    id = std::string(v->raw);
  }

  json::value const* type = obj.find("type");
  if (!type) return refuse(error_code::bad_request, "missing type", id);
  if (type->kind != json::kind::string)
    return refuse(error_code::bad_request, "type must be a string", id);

  std::string_view name = type->text;
  if (name == "join") return parse_join(obj, std::move(id), lim);
  if (name == "signal") return parse_signal(obj, std::move(id), lim);
  if (name == "leave") return client_message{leave_request{std::move(id)}};

  // The one piece of client data an error echoes: short, and json_quote
  // makes it safe wherever it ends up.
  std::string message = "unknown type: ";
  std::string_view shown = utf8_prefix(name, max_echoed_type_bytes);
  message += shown;
  if (shown.size() < name.size()) message += "...";
  return refuse(error_code::bad_request, std::move(message), id);
}

std::string joined_message(request_id const& id, std::string_view room, std::string_view peer,
                           std::vector<peer_entry> const& peers, std::uint64_t seq,
                           std::string_view resume, std::string_view instance) {
  std::string out = start_frame("joined", id);
  add_string(out, "room", room);
  add_string(out, "peer", peer);
  if (!instance.empty()) add_string(out, "instance", instance);
  out += ",\"peers\":[";
  for (std::size_t i = 0; i < peers.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"peer\":";
    out += json_quote(peers[i].peer);
    add_raw(out, "meta", or_default(peers[i].meta_json, "{}"));
    if (!peers[i].instance.empty()) add_string(out, "instance", peers[i].instance);
    out += '}';
  }
  out += ']';
  add_uint(out, "seq", seq);
  add_string(out, "resume", resume);
  out += '}';
  return out;
}

std::string peer_joined_message(std::string_view peer, std::string_view meta_json, std::uint64_t seq,
                                std::string_view instance) {
  std::string out = start_frame("peer-joined", std::nullopt);
  add_string(out, "peer", peer);
  add_raw(out, "meta", or_default(meta_json, "{}"));
  if (!instance.empty()) add_string(out, "instance", instance);
  add_uint(out, "seq", seq);
  out += '}';
  return out;
}

std::string peer_left_message(std::string_view peer, domain::leave_reason reason,
                              std::uint64_t seq) {
  std::string out = start_frame("peer-left", std::nullopt);
  add_string(out, "peer", peer);
  add_string(out, "reason", domain::to_string(reason));
  add_uint(out, "seq", seq);
  out += '}';
  return out;
}

std::string signal_message(std::string_view from, std::optional<std::string> const& to,
                           std::string_view data_json, std::uint64_t seq) {
  std::string out = start_frame("signal", std::nullopt);
  add_string(out, "from", from);
  if (to) add_string(out, "to", *to);
  add_raw(out, "data", or_default(data_json, "null"));
  add_uint(out, "seq", seq);
  out += '}';
  return out;
}

std::optional<std::string> event_frame(domain::event const& event) {
  if (auto const* joined = std::get_if<domain::peer_joined>(&event.body))
    return peer_joined_message(joined->peer, joined->meta_json, event.seq, event.instance);
  if (auto const* left = std::get_if<domain::peer_left>(&event.body))
    return peer_left_message(left->peer, left->reason, event.seq);
  if (auto const* signal = std::get_if<domain::signal_sent>(&event.body))
    return signal_message(signal->from, signal->to, signal->data_json, event.seq);
  return std::nullopt;
}

std::string ack_message(request_id const& id, std::uint64_t seq) {
  std::string out = start_frame("ack", id);
  add_uint(out, "seq", seq);
  out += '}';
  return out;
}

std::string error_message(request_id const& id, error_code code, std::string_view message) {
  std::string out = start_frame("error", id);
  add_string(out, "code", to_string(code));
  add_string(out, "message", message);
  out += '}';
  return out;
}

std::string json_quote(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  auto const* s = reinterpret_cast<unsigned char const*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c >= 0x80) {
      std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
      if (len != 0 && i + len <= n && domain::is_valid_utf8(text.substr(i, len))) {
        out.append(text.substr(i, len));
        i += len;
      } else {
        out += "\xEF\xBF\xBD";  // U+FFFD for each byte that starts no valid sequence
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

}  // namespace sig::protocol
