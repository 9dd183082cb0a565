#pragma once
// What differs between the systems sigstream-bench drives: the WebSocket's
// path, the header naming the instance a connection landed on, and the
// frames of a join, a leave and a signal and of their answers. Everything
// else (connections, placement, pacing, statistics, the report) is shared,
// so both systems get the same workloads. Pure: no I/O.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sig::bench {

// Request ids, the same in both protocols: a connection has at most one
// join and one leave in flight, and a signal's id names its step and its
// number within the step (both from 1), so that its answer finds it.
inline constexpr std::uint64_t join_request = 1;
inline constexpr std::uint64_t leave_request = 2;
inline constexpr std::uint64_t signal_request(std::uint64_t step, std::uint64_t n) { return (step << 32) | n; }
inline constexpr bool is_signal_request(std::uint64_t id) { return id >> 32 != 0; }
inline constexpr std::uint64_t request_step(std::uint64_t id) { return id >> 32; }
inline constexpr std::uint64_t request_number(std::uint64_t id) { return id & 0xffff'ffffu; }

// The code a signal's `unavailable` is counted under when the server said
// it may still be delivered (its append was not confirmed in time).
inline constexpr char unconfirmed_code[] = "unavailable:unconfirmed";

// What one frame from the server means to the bench.
struct inbound {
  enum class kind {
    nothing,         // peer-joined, peer-left, pings answered through `reply`, ...
    ready,           // the connection can be used now (Socket.IO's connect answer)
    joined,          // `text`: the peer id the server gave this connection
    join_refused,    // `text`: the error code
    left,
    leave_refused,   // `text`: the error code
    signal,          // `data`: the raw JSON of the signal's data
    signal_acked,    // `request`: the signal's request id
    signal_refused,  // `request`, `text`: the error code
    error,           // an error answering no request the bench can name; `text`: the code
    bad,             // not a frame of this protocol
  };
  kind what = kind::nothing;
  std::string text;
  std::uint64_t request = 0;
  std::string_view data;  // a span of the frame given to read()
  std::string reply;      // to send back at once (Socket.IO's pong and connect); empty: nothing
};

class wire_protocol {
 public:
  virtual ~wire_protocol() = default;
  // "sigstream" or "socketio", as --systems names it.
  virtual std::string_view name() const = 0;
  // The upgrade response header that names the instance.
  virtual std::string_view instance_header() const = 0;
  // The path (and query) of the WebSocket under the load balancer's address.
  virtual std::string_view path() const = 0;
  // True when a connection is usable once its WebSocket is open; false when
  // the server must answer first (inbound::kind::ready).
  virtual bool ready_on_open() const = 0;

  virtual std::string join(std::string_view room, std::string_view meta_json) const = 0;
  virtual std::string leave() const = 0;
  // `request` 0: no acknowledgement asked for.
  virtual std::string signal(std::string_view to, std::string_view data_json, std::uint64_t request) const = 0;

  virtual inbound read(std::string_view frame) const = 0;
};

// sigstream's client protocol (docs/protocol.md): one JSON object per text frame.
std::unique_ptr<wire_protocol> make_sigstream_protocol();
// Socket.IO 5 over Engine.IO 4 on a plain WebSocket
// (/socket.io/?EIO=4&transport=websocket), speaking to
// tools/bench/baseline/server.mjs: events join, signal and leave with
// acknowledgements, and signal, peer-joined and peer-left from the server.
std::unique_ptr<wire_protocol> make_socketio_protocol();

}  // namespace sig::bench
