#include "bench/bench_hub.hpp"

#include <charconv>

#include "protocol/json.hpp"

namespace sig::bench {

namespace {

constexpr std::size_t max_json_depth = 16;

}  // namespace

std::int64_t parse_i64(std::string_view text) {
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

void on_frame(hub& h, peer_conn& peer, std::string_view frame) {
  std::int64_t now = h.now_ns();
  auto doc = protocol::json::parse(frame, max_json_depth);
  if (!doc.ok() || doc.root.kind != protocol::json::kind::object) {
    ++h.bad_frames;
    return;
  }
  auto const* type = doc.object.find("type");
  if (type == nullptr || type->kind != protocol::json::kind::string) {
    ++h.bad_frames;
    return;
  }
  if (type->text == "signal") {
    auto const* data = doc.object.find("data");
    if (data == nullptr || data->kind != protocol::json::kind::object) {
      h.record_signal(0, 0);
      return;
    }
    auto inner = protocol::json::parse(data->raw, max_json_depth);
    auto const* step = inner.object.find("k");
    auto const* sent = inner.object.find("t");
    auto const* number = inner.object.find("n");
    if (!inner.ok() || step == nullptr || sent == nullptr) {
      h.record_signal(0, 0);
      return;
    }
    h.record_signal(static_cast<std::uint64_t>(parse_i64(step->raw)), now - parse_i64(sent->raw),
                    number != nullptr ? parse_i64(number->raw) : 0, now);
  } else if (type->text == "joined") {
    auto const* id = doc.object.find("peer");
    peer.peer_id = id != nullptr ? id->text : std::string();
    peer.join_ns = now - peer.join_sent_ns.load();
    peer.joining = false;
    h.joins.add();
  } else if (type->text == "ack") {
    if (peer.leaving.exchange(false)) h.acks.add();
  } else if (type->text == "error") {
    auto const* code = doc.object.find("code");
    std::string text = code != nullptr ? code->text : "?";
    if (peer.joining.exchange(false)) {
      peer.join_error = text;
      h.joins.add();
    } else if (peer.leaving.exchange(false)) {
      h.record_error("leave:" + text);
      h.acks.add();
    } else {
      h.record_error(text);
    }
  }
  // peer-joined and peer-left need nothing.
}

}  // namespace sig::bench
