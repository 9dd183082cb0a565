#pragma once
// One client's WebSocket. Everything here runs on the connection's strand
// (the stream's executor); rooms reach it only through peer_endpoint, whose
// calls post to that strand.
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "server/byte_stream.hpp"
#include "server/connection_context.hpp"
#include "server/frame_queue.hpp"
#include "server/websocket_codec.hpp"
#include "admission/token_bucket.hpp"
#include "protocol/messages.hpp"
#include "ports/peer_endpoint.hpp"

namespace sig::service { class room; }

namespace sig::server {

class ws_session : public service::peer_endpoint, public std::enable_shared_from_this<ws_session> {
 public:
  // The stream's executor is the connection's strand.
  ws_session(std::unique_ptr<byte_stream> stream, connection_context& ctx);
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

  // The opening handshake's answer (the 101, or a refusal), written from
  // the write batch.
  void write_handshake_answer(std::string answer, io_completion done);
  void on_accept(boost::system::error_code ec, std::size_t bytes);
  void refuse_upgrade(std::string_view status, std::string_view headers, std::string_view body);
  void on_refused(boost::system::error_code ec, std::size_t bytes);
  // Reading: one read at a time into read_buffer_, the frames in it taken
  // where they lie.
  void do_read();
  void on_read(boost::system::error_code ec, std::size_t bytes);
  bool take_bytes(char* data, std::size_t size);
  std::size_t take_from(char* data, std::size_t size);
  // Takes the frames in inbox_; false if reading must stop (paused, closed).
  bool take_frames();
  bool wants_input() const;
  bool connection_closed() const;
  // One frame's event; false if reading must stop.
  bool on_frame_event(frame_event const& event);
  void fail(boost::system::error_code ec, std::string_view what);
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
  // Writing: every queued frame (and any pong or close) in one write.
  void do_write();
  void on_write(boost::system::error_code ec, std::size_t bytes);
  void queue_control(opcode op, std::string_view payload);
  void close_slow_consumer();
  // Starts the close handshake: our close frame after the write in flight,
  // then the client's awaited (at most the handshake timeout).
  void close_with(close_reason reason);
  // Ends the TCP connection after the close handshake: FIN, then reads
  // until the client's.
  void finish();
  // Closes the connection now; the session ends when its handlers return.
  void tear_down();
  void on_gone();
  // One timer for the join deadline, keep-alive pings and the close deadline.
  void arm_timer();
  void on_timer(boost::system::error_code ec);
  bool queue_high() const;

  std::unique_ptr<byte_stream> stream_;
  connection_context& ctx_;
  frame_reader reader_;
  // Most client messages fit (a signal with an ICE candidate is 200-400
  // bytes); a larger one is read on in larger pieces. Held by every idle
  // connection, so small.
  std::array<char, 512> read_buffer_;
  std::string inbox_;  // bytes read that are not a whole frame yet
  frame_queue queue_;
  std::size_t queued_bytes_ = 0;
  // The write in flight: its first `frames_in_flight_` frames of queue_,
  // after any control frames (or the handshake's answer). Made for a write,
  // freed when all is written.
  struct write_batch;
  std::unique_ptr<write_batch> batch_;
  std::size_t frames_in_flight_ = 0;
  std::string control_out_;   // pongs and pings to go with the next write
  std::string close_frame_;   // our close frame, once closing
  bool writing_ = false;
  bool reading_ = false;
  bool reading_paused_ = false;
  bool closing_ = false;       // our close frame is queued or sent: no more data either way
  bool close_sent_ = false;
  bool close_received_ = false;
  bool discard_input_ = false;  // after a protocol violation: nothing more is parsed
  bool gone_ = false;
  // When the connection ends: true keeps the peer in its room for the
  // resume grace period (the connection was lost, or this side asked the
  // client to come back); false records its leave at once (the client
  // closed the WebSocket itself, or broke the protocol).
  bool keep_for_resume_ = true;
  // From the join token's rights (all allowed without join keys).
  bool may_signal_ = true;
  bool may_broadcast_ = true;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point connected_at_{};
  std::chrono::steady_clock::time_point next_keep_alive_{};
  std::chrono::steady_clock::time_point close_deadline_ = std::chrono::steady_clock::time_point::max();
  bool timer_armed_ = false;
  bool read_since_keep_alive_ = false;
  bool ping_outstanding_ = false;
  bool ever_joined_ = false;
  std::chrono::steady_clock::time_point join_started_{};  // of the join (or resume) in progress
  // Signal rate limit: a token bucket, and the refusals in a row.
  admission::token_bucket signal_bucket_;
  int strikes_ = 0;
  std::chrono::steady_clock::time_point last_strike_{};
  bool allow_signal();
  std::string remote_;          // for logs: "client via proxy:port" behind a trusted proxy
  std::string client_address_;  // what the per-address limits count

  room_state room_state_ = room_state::none;
  std::shared_ptr<service::room> room_;
  std::string peer_;
};

}  // namespace sig::server
