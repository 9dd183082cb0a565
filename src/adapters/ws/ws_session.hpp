#pragma once
// One client's WebSocket. Everything here runs on the connection's strand
// (the socket's executor); rooms reach it only through peer_endpoint, whose
// calls post to that strand.
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "adapters/ws/connection_context.hpp"
#include "adapters/ws/frame_queue.hpp"
#include "admission/token_bucket.hpp"
#include "protocol/messages.hpp"
#include "service/peer_endpoint.hpp"

namespace sig::service { class room; }

namespace sig::ws {

class ws_session : public service::peer_endpoint, public std::enable_shared_from_this<ws_session> {
 public:
  // The socket's executor is the connection's strand.
  ws_session(boost::asio::ip::tcp::socket&& socket, connection_context& ctx);
  ~ws_session() override;

  void run(boost::beast::http::request<boost::beast::http::string_body> upgrade);

  void deliver(service::frame_ptr frame) override;
  void join_settled(bool joined, service::frame_ptr frame) override;
  void evicted(std::string const& why) override;
  // The instance is draining: close with 1012 (service restart), so the
  // client reconnects to another instance.
  void move_elsewhere();

 private:
  enum class room_state { none, joining, joined };

  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle(std::string_view frame);
  void handle_join(protocol::join_request request);
  void handle_resume(protocol::join_request request);
  // With join keys: checks the request's token and applies its meta and
  // rights. False (and the error sent) if the join must not go on.
  bool admit_token(protocol::join_request& request);
  void handle_signal(protocol::signal_request request);
  void handle_leave(protocol::leave_request request);
  void send_error(protocol::request_id const& id, protocol::error_code code, std::string_view message);
  void enqueue(service::frame_ptr frame);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void close_slow_consumer();
  void close_with(boost::beast::websocket::close_reason reason);
  void on_gone();
  bool queue_high() const;

  // Over the bare socket, not beast::tcp_stream: the WebSocket's own
  // timeouts cover it, and tcp_stream's state (two timers) is 250 bytes a
  // connection for nothing.
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  connection_context& ctx_;
  boost::beast::flat_buffer buffer_;
  frame_queue queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t oversized_bytes_ = 0;  // of a message over the limit, read and dropped
  bool writing_ = false;
  bool reading_paused_ = false;
  bool closing_ = false;
  bool gone_ = false;
  // When the connection ends: true keeps the peer in its room for the
  // resume grace period (the connection was lost, or this side asked the
  // client to come back); false records its leave at once (the client
  // closed the WebSocket itself, or broke the protocol).
  bool keep_for_resume_ = true;
  // From the join token's rights (all allowed without join keys).
  bool may_signal_ = true;
  bool may_broadcast_ = true;
  // Closes a connection that has not joined within the join timeout.
  boost::asio::steady_timer join_timer_;
  bool ever_joined_ = false;
  std::chrono::steady_clock::time_point join_started_{};  // of the join (or resume) in progress
  // Signal rate limit: a token bucket, and the refusals in a row.
  admission::token_bucket signal_bucket_;
  int strikes_ = 0;
  std::chrono::steady_clock::time_point last_strike_{};
  bool allow_signal();
  // Rare, and a close_reason is 130 bytes: held only while needed.
  std::unique_ptr<boost::beast::websocket::close_reason> close_after_write_;
  std::string remote_;          // for logs: "client via proxy:port" behind a trusted proxy
  std::string client_address_;  // what the per-address limits count

  room_state room_state_ = room_state::none;
  std::shared_ptr<service::room> room_;
  std::string peer_;
};

}  // namespace sig::ws
