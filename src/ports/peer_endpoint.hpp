#pragma once
// What a room needs from a connection, without knowing it is a WebSocket.
// Implementations are thread-safe: they only post to their own strand.
#include <memory>
#include <string>

namespace sig::service {

using frame_ptr = std::shared_ptr<std::string const>;

class peer_endpoint {
 public:
  virtual ~peer_endpoint() = default;
  // Queue a frame for the client.
  virtual void deliver(frame_ptr frame) = 0;
  // The outcome of a join: `frame` is the `joined` reply, or the `error`.
  virtual void join_settled(bool joined, frame_ptr frame) = 0;
  // The room's history recorded this peer's leave without the connection
  // asking: another instance took this one for dead (cut off from NATS for
  // longer than the timeout) and expired the peer. The connection must not
  // go on as if it were in the room.
  virtual void evicted(std::string const& why) = 0;
};

}  // namespace sig::service
