// ws_session's WebSocket (RFC 6455 through websocket_codec): the opening
// handshake, reading frames where they lie, writing every queued frame in
// one write, the close handshake and the end of the TCP connection, and
// the one timer (join deadline, keep-alive, close deadline). Everything
// runs on the connection's strand. The client's requests are ws_session.cpp.
#include "server/ws_session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/range/iterator_range.hpp>

#include "server/session_registry.hpp"
#include "server/socket_errors.hpp"
#include "service/metrics.hpp"

namespace sig::server {

namespace http = boost::beast::http;
using protocol::error_code;  // the protocol's codes; boost's is spelled in full below

namespace {

// After a full read buffer, the rest is read in pieces this large, on the
// stack of the read handler: only messages that need it use it.
constexpr std::size_t read_chunk = 16 * 1024;
// A wake-up reads at most this many full chunks before letting the other
// connections of the thread have their turn.
constexpr int reads_per_wake_up = 4;
// Frames gathered into one write (one writev).
constexpr std::size_t frames_per_write = 64;

}  // namespace

struct ws_session::write_batch {
  std::string control;  // pongs and pings (or the opening handshake's answer)
  std::array<frame_header, frames_per_write> headers;
  std::vector<boost::asio::const_buffer> buffers;
  bool carries_close = false;
};

ws_session::ws_session(std::unique_ptr<byte_stream> stream, connection_context& ctx)
    : stream_(std::move(stream)),
      ctx_(ctx),
      reader_(ctx.limits.max_frame_bytes, ctx.limits.max_frame_bytes * 4),
      timer_(stream_->get_executor()) {
  boost::system::error_code ec;
  auto remote = stream_->remote_endpoint(ec);
  if (!ec) {
    remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
    client_address_ = remote.address().to_string();
  }
  ++ctx_.counters.connections;
  ++ctx_.counters.connections_total;
}

ws_session::~ws_session() {
  if (ctx_.sessions) ctx_.sessions->remove(this);
  --ctx_.counters.connections;
}


void ws_session::run(http::request<http::string_body> upgrade) {
  // Behind trusted proxies the client is the rightmost untrusted hop of
  // X-Forwarded-For (every header line of it, in order).
  if (!ctx_.limits.trusted_proxies.empty() && admission::is_trusted(ctx_.limits.trusted_proxies, client_address_)) {
    std::string forwarded;
    for (auto const& field : boost::make_iterator_range(upgrade.equal_range("X-Forwarded-For"))) {
      if (!forwarded.empty()) forwarded += ',';
      forwarded.append(field.value().data(), field.value().size());
    }
    auto proxy = client_address_;
    client_address_ = admission::client_address(proxy, forwarded, ctx_.limits.trusted_proxies);
    if (client_address_ != proxy) remote_ = client_address_ + " via " + remote_;
  }
  connected_at_ = std::chrono::steady_clock::now();
  // The handshake's write, and later the close handshake, must end in time.
  close_deadline_ = connected_at_ + ctx_.limits.handshake_timeout;
  next_keep_alive_ = connected_at_ + ctx_.limits.idle_timeout / 2;
  arm_timer();

  // The listener checked that this is an upgrade (GET, HTTP/1.1,
  // "Connection: upgrade", "Upgrade: websocket"); the rest of RFC 6455
  // section 4.2.1 is checked here.
  auto version = upgrade[http::field::sec_websocket_version];
  if (version != "13") {
    return refuse_upgrade("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version must be 13\n");
  }
  auto key = upgrade[http::field::sec_websocket_key];
  if (!valid_websocket_key(std::string_view(key.data(), key.size()))) {
    return refuse_upgrade("400 Bad Request", "", "Sec-WebSocket-Key missing or invalid\n");
  }
  // No extension and no subprotocol is offered back: permessage-deflate
  // would cost a compressor per connection for frames of a few hundred bytes.
  write_handshake_answer(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
          websocket_accept_key(std::string_view(key.data(), key.size())) +
          "\r\nServer: sigstream\r\nX-Sigstream-Instance: " + ctx_.instance_id + "\r\n\r\n",
      io_completion::to<&ws_session::on_accept>(shared_from_this()));
}

void ws_session::write_handshake_answer(std::string answer, io_completion done) {
  batch_ = std::make_unique<write_batch>();
  batch_->control = std::move(answer);
  batch_->buffers.emplace_back(boost::asio::buffer(batch_->control));
  writing_ = true;
  stream_->async_write(batch_->buffers, std::move(done));
}

// A plain-text refusal of the upgrade, then the connection ends.
// `headers`: extra header lines, each ending in CRLF.
void ws_session::refuse_upgrade(std::string_view status, std::string_view headers, std::string_view body) {
  ctx_.logger->debug("conn={} websocket handshake refused: {}", remote_, status);
  closing_ = true;
  write_handshake_answer(
      fmt::format("HTTP/1.1 {}\r\n{}Server: sigstream\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n"
                  "Connection: close\r\n\r\n{}",
                  status, headers, body.size(), body),
      io_completion::to<&ws_session::on_refused>(shared_from_this()));
}

void ws_session::on_refused(boost::system::error_code, std::size_t) {
  writing_ = false;
  batch_.reset();
  tear_down();
}

void ws_session::on_accept(boost::system::error_code ec, std::size_t) {
  writing_ = false;
  batch_.reset();
  if (ec) return fail(ec, "websocket handshake");
  if (connection_closed()) return;  // the handshake timed out meanwhile
  close_deadline_ = std::chrono::steady_clock::time_point::max();
  ctx_.logger->debug("conn={} connected", remote_);
  if (ctx_.sessions) ctx_.sessions->add(shared_from_this());
  do_read();
  // Upgraded while the instance began to drain, after its clients were
  // told to move: told now.
  if (ctx_.is_draining()) close_with(close_reason{close_code::service_restart, "instance draining: reconnect"});
}

// Asio's read tries the socket at once only if the last read did not
// drain it, and otherwise waits for epoll: one system call per wake-up.
void ws_session::do_read() {
  if (reading_ || connection_closed()) return;
  reading_ = true;
  stream_->async_read_some(boost::asio::buffer(read_buffer_),
                           io_completion::to<&ws_session::on_read>(shared_from_this()));
}

void ws_session::on_read(boost::system::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (ec) return fail(ec, "read");
  if (!take_bytes(read_buffer_.data(), bytes)) return;
  if (bytes == read_buffer_.size()) {
    // A full buffer: a large message, or several. The rest is read now, in
    // larger pieces, until the connection has no more.
    char chunk[read_chunk];
    for (int i = 0; i < reads_per_wake_up; ++i) {
      std::size_t n = stream_->read_available(boost::asio::buffer(chunk), ec);
      if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) break;
      if (ec) return fail(ec, "read");
      if (!take_bytes(chunk, n)) return;
      if (n < read_chunk) break;
    }
  }
  if (inbox_.capacity() > 2 * read_chunk && inbox_.size() < read_chunk) inbox_.shrink_to_fit();
  do_read();
}

// Most reads hold whole frames: they are taken from the buffer where they
// lie; only a frame cut by the read is kept, in inbox_. False if reading
// must stop (paused for the client's backlog, or the connection ending);
// after a protocol violation, reading goes on, to see the client go.
bool ws_session::take_bytes(char* data, std::size_t size) {
  read_since_keep_alive_ = true;
  ping_outstanding_ = false;
  if (discard_input_) return wants_input();
  if (!inbox_.empty()) {
    inbox_.append(data, size);
    return take_frames();
  }
  std::size_t used = take_from(data, size);
  if (used < size && !discard_input_) inbox_.assign(data + used, size - used);
  return wants_input();
}

// The frames in data[0, size), each handled as it is found, until one is
// cut short or reading must stop; returns the bytes used.
std::size_t ws_session::take_from(char* data, std::size_t size) {
  std::size_t used = 0;
  for (;;) {
    auto step = reader_.next(data + used, size - used);
    used += step.consumed;
    if (!on_frame_event(step.event)) break;
    if (std::holds_alternative<read_event::need_more>(step.event) && step.consumed == 0) break;
  }
  return used;
}

bool ws_session::wants_input() const { return !connection_closed() && !reading_paused_; }

bool ws_session::take_frames() {
  std::size_t used = take_from(inbox_.data(), inbox_.size());
  if (discard_input_) {
    inbox_.clear();
  } else {
    inbox_.erase(0, used);
    // A large frame on its way: room for all of it at once.
    if (reader_.wanted() > inbox_.capacity()) inbox_.reserve(reader_.wanted());
  }
  if (inbox_.empty() && inbox_.capacity() > 2 * read_chunk) inbox_.shrink_to_fit();
  return wants_input();
}

bool ws_session::on_frame_event(frame_event const& event) {
  if (discard_input_ || connection_closed()) return false;
  return std::visit(
      [this](auto const& found) -> bool {
        using found_type = std::decay_t<decltype(found)>;
        if constexpr (std::is_same_v<found_type, read_event::need_more> || std::is_same_v<found_type, read_event::pong>) {
          return true;
        } else if constexpr (std::is_same_v<found_type, read_event::message>) {
          if (closing_ || gone_) return true;  // after our close frame: read and dropped
          if (found.binary) {
            send_error(std::nullopt, error_code::bad_request, "binary frames are not part of the protocol; send text");
          } else {
            handle(found.payload);
          }
          if (closing_ || gone_) return !connection_closed();
          // A client whose replies pile up stops being read until they
          // drain, so it cannot grow its own queue.
          if (queue_high()) {
            reading_paused_ = true;
            return false;
          }
          return true;
        } else if constexpr (std::is_same_v<found_type, read_event::ping>) {
          if (!closing_) queue_control(opcode::pong, found.payload);
          return true;
        } else if constexpr (std::is_same_v<found_type, read_event::close>) {
          // Nothing may follow a close frame: what does is not read.
          close_received_ = true;
          discard_input_ = true;
          if (closing_) {
            // The answer to our close frame: the handshake is complete.
            if (close_sent_) finish();
            return false;
          }
          // The client's own close: it is gone on purpose (a closed tab
          // sends 1001), so the others should hear of it now, not after
          // the resume grace period. The close frame is echoed.
          keep_for_resume_ = false;
          on_gone();
          close_with(close_reason{found.code, {}});
          return false;
        } else if constexpr (std::is_same_v<found_type, read_event::too_big>) {
          if (closing_) return true;
          // Read to the end and dropped, so that the close handshake
          // (1009) comes after the whole message, as a browser expects. A
          // message far past the limit is not waited for: the close goes
          // now and the rest is read and dropped until the client's close
          // frame, so the client reads the 1009 rather than a reset.
          ctx_.logger->info("conn={} peer={} closed: frame of {}{} bytes over {} (1009)", remote_, peer_,
                            found.complete ? "" : "more than ", found.bytes, ctx_.limits.max_frame_bytes);
          keep_for_resume_ = false;
          close_with(close_reason{close_code::too_big, "frame over the size limit"});
          return true;
        } else {
          static_assert(std::is_same_v<found_type, read_event::violation>);
          // A protocol violation (bad UTF-8, a malformed frame): a broken
          // client is not worth waiting for. Nothing it sends after is read.
          ctx_.logger->info("conn={} peer={} closed: {} ({})", remote_, peer_, found.why, found.code);
          keep_for_resume_ = false;
          discard_input_ = true;
          on_gone();
          close_with(close_reason{found.code, std::string(found.why)});
          return false;
        }
      },
      event);
}

// The connection failed under an operation: logged unless it is the
// connection's normal end, or the session closed the socket itself (a slow
// consumer's write in flight then ends with "bad file descriptor"), then
// closed.
void ws_session::fail(boost::system::error_code ec, std::string_view what) {
  if (!expected_disconnect(ec) && !connection_closed()) ctx_.logger->info("conn={} peer={} closed: {} failed: {}", remote_, peer_, what, ec.message());
  tear_down();
}

bool ws_session::queue_high() const {
  return queue_.size() * 4 >= ctx_.limits.write_queue_frames * 3 ||
         queued_bytes_ * 4 >= ctx_.limits.write_queue_bytes * 3;
}

void ws_session::enqueue(service::frame_ptr frame) {
  if (closing_ || gone_) return;
  if (queue_.size() >= ctx_.limits.write_queue_frames ||
      queued_bytes_ + frame->size() > ctx_.limits.write_queue_bytes) {
    close_slow_consumer();
    return;
  }
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  if (!writing_) do_write();
}

void ws_session::queue_control(opcode op, std::string_view payload) {
  auto header = server_frame_header(op, payload.size());
  control_out_.append(reinterpret_cast<char const*>(header.bytes.data()), header.size);
  control_out_.append(payload);
  if (!writing_) do_write();
}

// Everything waiting goes in one write: control frames first, then the
// queued frames (at most frames_per_write), then our close frame, if any.
void ws_session::do_write() {
  if (writing_ || connection_closed()) return;
  bool send_close = closing_ && !close_sent_ && !close_frame_.empty();
  std::size_t frames = closing_ ? 0 : std::min(queue_.size(), frames_per_write);
  if (control_out_.empty() && frames == 0 && !send_close) return;
  if (!batch_) batch_ = std::make_unique<write_batch>();
  auto& batch = *batch_;
  batch.buffers.clear();
  batch.control = std::move(control_out_);
  control_out_.clear();
  batch.carries_close = send_close;
  if (!batch.control.empty()) batch.buffers.emplace_back(boost::asio::buffer(batch.control));
  for (std::size_t i = 0; i < frames; ++i) {
    auto const& frame = queue_.at(i);
    batch.headers[i] = server_frame_header(opcode::text, frame->size());
    batch.buffers.emplace_back(batch.headers[i].bytes.data(), batch.headers[i].size);
    batch.buffers.emplace_back(boost::asio::buffer(*frame));
  }
  if (send_close) batch.buffers.emplace_back(boost::asio::buffer(close_frame_));
  frames_in_flight_ = frames;
  writing_ = true;
  stream_->async_write(batch.buffers, io_completion::to<&ws_session::on_write>(shared_from_this()));
}

void ws_session::on_write(boost::system::error_code ec, std::size_t) {
  writing_ = false;
  for (; frames_in_flight_ > 0; --frames_in_flight_) {
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
  }
  bool carried_close = batch_ && batch_->carries_close;
  if (ec) {
    queue_.clear();
    queued_bytes_ = 0;
    batch_.reset();
    fail(ec, "write");
    return;
  }
  if (carried_close) {
    close_sent_ = true;
    // The handshake is complete, or the client broke the protocol and
    // its close is not waited for.
    if (discard_input_) {
      finish();
      return;
    }
  }
  if (!queue_.empty() || !control_out_.empty() || (closing_ && !close_sent_)) {
    do_write();
  } else {
    batch_.reset();  // an idle connection holds no write state
  }
  if (reading_paused_ && (closing_ || !queue_high())) {
    reading_paused_ = false;
    // What was read before the pause first, then the socket again.
    if (!inbox_.empty() && !take_frames()) return;
    do_read();
  }
}

// Signaling frames cannot be dropped (a lost ICE candidate silently breaks a
// call), so a client that does not keep up is told to come back instead.
void ws_session::close_slow_consumer() {
  ++ctx_.counters.slow_consumers;
  ctx_.logger->warn("conn={} peer={} closed: slow consumer ({} frames, {} bytes queued)", remote_, peer_,
                    queue_.size(), queued_bytes_);
  if (writing_) {
    // A client that does not read may never let the write in flight finish:
    // closing the socket is the only way past it.
    closing_ = true;
    tear_down();
    return;
  }
  close_with(close_reason{close_code::try_again_later, "slow consumer"});
}

// Closes with a handshake: the client's close frame is awaited, so nothing
// it sent is left unread and it sees our close code. Frames queued and not
// yet in a write are dropped; the close frame follows the write in flight.
void ws_session::close_with(close_reason reason) {
  if (closing_ || connection_closed()) return;
  closing_ = true;
  while (queue_.size() > frames_in_flight_) {
    queued_bytes_ -= queue_.back()->size();
    queue_.pop_back();
  }
  close_frame_ = server_close_frame(reason);
  close_deadline_ = std::chrono::steady_clock::now() + ctx_.limits.handshake_timeout;
  arm_timer();
  if (!writing_) do_write();
  // The client's close frame must be read, even from a client that was
  // paused for its own backlog.
  if (reading_paused_) {
    reading_paused_ = false;
    if (!inbox_.empty() && !take_frames()) return;
    do_read();
  }
}

bool ws_session::connection_closed() const { return !stream_->is_open(); }

// The server ends the TCP connection (RFC 6455 section 7.1.1), gracefully:
// its FIN now, then whatever the client still sends is read and dropped
// until it closes too (or the close deadline), so that nothing unread turns
// the close into a reset that could destroy the close frame at the client.
void ws_session::finish() {
  discard_input_ = true;
  stream_->shutdown_send();
  if (reading_paused_) {
    reading_paused_ = false;
    do_read();
  }
}

void ws_session::tear_down() {
  stream_->close();
  timer_.cancel();
  on_gone();
}

// The earliest of: the close (or opening handshake) deadline, the join
// deadline of a connection that never joined, the next keep-alive check.
void ws_session::arm_timer() {
  if (connection_closed()) return;
  auto at = std::min(close_deadline_, next_keep_alive_);
  auto join_deadline = connected_at_ + ctx_.limits.join_timeout;
  // A deadline passed while a join was on its way is checked at each tick.
  if (!ever_joined_ && join_deadline > std::chrono::steady_clock::now()) at = std::min(at, join_deadline);
  if (timer_armed_ && timer_.expiry() == at) return;
  timer_.expires_at(at);  // cancels the wait pending, if any
  timer_armed_ = true;
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->on_timer(ec); });
}

void ws_session::on_timer(boost::system::error_code ec) {
  if (ec || connection_closed()) return;  // cancelled: by a re-arm, or the end
  auto now = std::chrono::steady_clock::now();
  if (now < timer_.expiry()) return;  // re-armed after this wait had fired; that wait is pending
  timer_armed_ = false;
  if (now >= close_deadline_) {
    ctx_.logger->debug("conn={} peer={} closed: the {} handshake timed out", remote_, peer_,
                       closing_ ? "close" : "opening");
    tear_down();
    return;
  }
  if (!ever_joined_ && now >= connected_at_ + ctx_.limits.join_timeout) {
    // A connection that never joins holds memory and a socket for nothing.
    if (room_state_ == room_state::none && !closing_ && !gone_) {
      ++ctx_.counters.abusive_closes;
      ctx_.logger->info("conn={} closed: no join within {} ms (1008)", remote_, ctx_.limits.join_timeout.count());
      keep_for_resume_ = false;
      ever_joined_ = true;  // the deadline is spent
      close_with(close_reason{close_code::policy_error, "join a room sooner"});
      return;
    }
  }
  if (now >= next_keep_alive_) {
    // A ping at half the idle timeout of silence; no answer by the end of
    // it closes the connection (the peer stays for a resume: the network
    // may be what failed).
    if (read_since_keep_alive_) {
      read_since_keep_alive_ = false;
    } else if (ping_outstanding_) {
      ctx_.logger->debug("conn={} peer={} closed: silent for {} s", remote_, peer_, ctx_.limits.idle_timeout.count());
      tear_down();
      return;
    } else if (!closing_) {
      ping_outstanding_ = true;
      queue_control(opcode::ping, {});
    }
    next_keep_alive_ = now + ctx_.limits.idle_timeout / 2;
  }
  arm_timer();
}

}  // namespace sig::server
