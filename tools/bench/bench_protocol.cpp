#include "bench/bench_protocol.hpp"

#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "protocol/json.hpp"
#include "protocol/messages.hpp"

namespace sig::bench {

namespace {

namespace json = protocol::json;
using protocol::json_quote;

constexpr std::size_t max_json_depth = 16;

std::uint64_t parse_u64(std::string_view digits) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return ec == std::errc() && end == digits.data() + digits.size() ? value : 0;
}

std::string string_member(json::object_view const& object, std::string_view key) {
  auto const* v = object.find(key);
  return v != nullptr && v->kind == json::kind::string ? v->text : std::string();
}

// The answer to one of the bench's requests, named by its id: `error` set
// when the server refused it.
inbound answer_to(std::uint64_t request, std::string error, std::string peer) {
  inbound in;
  bool refused = !error.empty();
  in.text = refused ? std::move(error) : std::move(peer);
  in.request = request;
  if (request == join_request) in.what = refused ? inbound::kind::join_refused : inbound::kind::joined;
  else if (request == leave_request) in.what = refused ? inbound::kind::leave_refused : inbound::kind::left;
  else if (is_signal_request(request)) in.what = refused ? inbound::kind::signal_refused : inbound::kind::signal_acked;
  else in.what = refused ? inbound::kind::error : inbound::kind::nothing;
  return in;
}

class sigstream_protocol final : public wire_protocol {
 public:
  std::string_view name() const override { return "sigstream"; }
  std::string_view instance_header() const override { return "X-Sigstream-Instance"; }
  std::string_view path() const override { return "/ws"; }
  bool ready_on_open() const override { return true; }

  std::string join(std::string_view room, std::string_view meta_json) const override {
    return fmt::format(R"({{"type":"join","room":{}{}{},"id":{}}})", json_quote(room), meta_json.empty() ? "" : ",\"meta\":",
                       meta_json, join_request);
  }
  std::string leave() const override { return fmt::format(R"({{"type":"leave","id":{}}})", leave_request); }
  std::string signal(std::string_view to, std::string_view data_json, std::uint64_t request) const override {
    if (request == 0) return fmt::format(R"({{"type":"signal","to":{},"data":{}}})", json_quote(to), data_json);
    return fmt::format(R"({{"type":"signal","to":{},"data":{},"id":{}}})", json_quote(to), data_json, request);
  }

  inbound read(std::string_view frame) const override {
    inbound in;
    auto doc = json::parse(frame, max_json_depth);
    auto const* type = doc.ok() && doc.root.kind == json::kind::object ? doc.object.find("type") : nullptr;
    if (type == nullptr || type->kind != json::kind::string) {
      in.what = inbound::kind::bad;
      return in;
    }
    auto const* id = doc.object.find("id");
    std::uint64_t request = id != nullptr && id->kind == json::kind::number ? parse_u64(id->raw) : 0;
    if (type->text == "signal") {
      auto const* data = doc.object.find("data");
      in.what = inbound::kind::signal;
      if (data != nullptr && data->kind == json::kind::object) in.data = data->raw;
    } else if (type->text == "joined") {
      in = answer_to(join_request, {}, string_member(doc.object, "peer"));
    } else if (type->text == "ack") {
      in = answer_to(request, {}, {});
    } else if (type->text == "error") {
      std::string code = string_member(doc.object, "code");
      // An append whose outcome the instance could not learn: the message
      // says the signal may still be delivered (docs/protocol.md), so it is
      // counted apart from a refusal, which must never be delivered.
      if (code == "unavailable" && string_member(doc.object, "message").find("may still be delivered") != std::string::npos)
        code = unconfirmed_code;
      in = answer_to(request, code.empty() ? "?" : std::move(code), {});
    }
    // peer-joined and peer-left need nothing.
    return in;
  }
};

// The top-level elements of a JSON array already validated by json::parse.
std::vector<std::string_view> array_elements(std::string_view array) {
  std::vector<std::string_view> out;
  int depth = 0;
  bool in_string = false, escaped = false;
  std::size_t start = 1;
  for (std::size_t i = 0; i < array.size(); ++i) {
    char c = array[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0 && i > start) out.push_back(array.substr(start, i - start));
    } else if (c == ',' && depth == 1) {
      out.push_back(array.substr(start, i - start));
      start = i + 1;
    }
  }
  for (auto& e : out) {
    while (!e.empty() && (e.front() == ' ' || e.front() == '\n')) e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\n')) e.remove_suffix(1);
  }
  return out;
}

// Socket.IO packets on Engine.IO message packets: "4" + the Socket.IO type
// + an optional ack id + a JSON array. Only the main namespace is used.
class socketio_protocol final : public wire_protocol {
 public:
  std::string_view name() const override { return "socketio"; }
  std::string_view instance_header() const override { return "X-Baseline-Instance"; }
  std::string_view path() const override { return "/socket.io/?EIO=4&transport=websocket"; }
  bool ready_on_open() const override { return false; }

  std::string join(std::string_view room, std::string_view meta_json) const override {
    return fmt::format(R"(42{}["join",{{"room":{}{}{}}}])", join_request, json_quote(room),
                       meta_json.empty() ? "" : ",\"meta\":", meta_json);
  }
  std::string leave() const override { return fmt::format(R"(42{}["leave",{{}}])", leave_request); }
  std::string signal(std::string_view to, std::string_view data_json, std::uint64_t request) const override {
    if (request == 0) return fmt::format(R"(42["signal",{{"to":{},"data":{}}}])", json_quote(to), data_json);
    return fmt::format(R"(42{}["signal",{{"to":{},"data":{}}}])", request, json_quote(to), data_json);
  }

  inbound read(std::string_view frame) const override {
    inbound in;
    if (frame.empty()) {
      in.what = inbound::kind::bad;
      return in;
    }
    switch (frame[0]) {
      case '0': in.reply = "40"; return in;                               // Engine.IO open: connect to "/"
      case '2': in.reply = "3" + std::string(frame.substr(1)); return in;  // ping: pong
      case '1': case '3': case '6': return in;                            // close, pong, noop
      case '4': break;                                                    // a Socket.IO packet
      default: in.what = inbound::kind::bad; return in;
    }
    if (frame.size() < 2) {
      in.what = inbound::kind::bad;
      return in;
    }
    char type = frame[1];
    std::string_view rest = frame.substr(2);
    if (type == '0') {
      in.what = inbound::kind::ready;
      return in;
    }
    if (type == '4' || type == '1') {  // connect refused, or disconnected by the server
      in.what = inbound::kind::error;
      in.text = type == '4' ? "connect-refused" : "disconnected";
      return in;
    }
    if (type != '2' && type != '3') return in;
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    std::uint64_t id = parse_u64(rest.substr(0, digits));
    std::string_view array = rest.substr(digits);
    auto doc = json::parse(array, max_json_depth);
    if (!doc.ok() || doc.root.kind != json::kind::array) {
      in.what = inbound::kind::bad;
      return in;
    }
    auto elements = array_elements(array);
    if (type == '3') {  // an acknowledgement: [answer]
      auto answer = json::parse(elements.empty() ? std::string_view("{}") : elements[0], max_json_depth);
      return answer_to(id, string_member(answer.object, "error"), string_member(answer.object, "peer"));
    }
    // An event: ["name", payload]. Only signals matter.
    if (elements.size() < 2 || elements[0] != R"("signal")") return in;
    auto payload = json::parse(elements[1], max_json_depth);
    auto const* data = payload.ok() ? payload.object.find("data") : nullptr;
    in.what = inbound::kind::signal;
    if (data != nullptr && data->kind == json::kind::object) in.data = data->raw;
    return in;
  }
};

}  // namespace

std::unique_ptr<wire_protocol> make_sigstream_protocol() { return std::make_unique<sigstream_protocol>(); }
std::unique_ptr<wire_protocol> make_socketio_protocol() { return std::make_unique<socketio_protocol>(); }

}  // namespace sig::bench
