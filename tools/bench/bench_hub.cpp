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
  auto in = h.protocol.read(frame);
  if (!in.reply.empty()) peer.client->send(std::move(in.reply));
  using kind = inbound::kind;
  switch (in.what) {
    case kind::nothing: break;
    case kind::bad: ++h.bad_frames; break;
    case kind::ready:
      if (peer.status == 0) {
        peer.status = 1;
        h.settled.add();
      }
      break;
    case kind::signal: {
      // The bench's own data: step k, send time t, number n (see pacer).
      auto data = protocol::json::parse(in.data, max_json_depth);
      auto const* step = data.ok() ? data.object.find("k") : nullptr;
      auto const* sent = data.ok() ? data.object.find("t") : nullptr;
      auto const* number = data.ok() ? data.object.find("n") : nullptr;
      if (step == nullptr || sent == nullptr) {
        h.record_signal(0, 0);
        break;
      }
      h.record_signal(static_cast<std::uint64_t>(parse_i64(step->raw)), now - parse_i64(sent->raw),
                      number != nullptr ? parse_i64(number->raw) : 0, now);
      break;
    }
    case kind::joined:
      // An answer after the main thread gave up on the join (its timeout)
      // is not recorded: the main thread owns the peer's fields again.
      if (!peer.joining.exchange(false)) break;
      peer.peer_id = std::move(in.text);
      peer.join_ns = now - peer.join_sent_ns.load();
      h.joins.add();
      break;
    case kind::join_refused:
      if (peer.joining.exchange(false)) {
        peer.join_error = std::move(in.text);
        h.joins.add();
      }
      break;
    case kind::left:
      if (peer.leaving.exchange(false)) h.acks.add();
      break;
    case kind::leave_refused:
      if (peer.leaving.exchange(false)) {
        h.record_error("leave:" + in.text);
        h.acks.add();
      }
      break;
    case kind::signal_acked: h.mark_request(in.request, signal_ledger::acked); break;
    case kind::signal_refused: h.record_refusal(in.request, in.text); break;
    case kind::error:
      // No request named: blame what this connection has in flight.
      if (peer.joining.exchange(false)) {
        peer.join_error = std::move(in.text);
        h.joins.add();
      } else if (peer.leaving.exchange(false)) {
        h.record_error("leave:" + in.text);
        h.acks.add();
      } else {
        h.record_error(in.text);
      }
      break;
  }
}

}  // namespace sig::bench
