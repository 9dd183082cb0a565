#include "adapters/ws/ws_session.hpp"

#include "adapters/ws/session_registry.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/range/iterator_range.hpp>

#include "auth/hmac.hpp"
#include "auth/resume_token.hpp"
#include "domain/room_name.hpp"
#include "service/metrics.hpp"
#include "service/room.hpp"
#include "service/room_directory.hpp"

namespace sig::ws {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using protocol::error_code;

namespace {

// 128 random bits: unique across the cluster without coordination, never
// reused, and not guessable, so nobody can address a peer it was not told of.
std::string new_peer_id() { return "p" + auth::random_token(16); }

bool expected_close(beast::error_code ec) {
  return ec == websocket::error::closed || ec == boost::asio::error::operation_aborted ||
         ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset || ec == beast::error::timeout;
}

}  // namespace

ws_session::ws_session(boost::asio::ip::tcp::socket&& socket, connection_context& ctx)
    : ws_(std::move(socket)), ctx_(ctx), join_timer_(ws_.get_executor()) {
  beast::error_code ec;
  auto remote = ws_.next_layer().remote_endpoint(ec);
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
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = ctx_.limits.handshake_timeout;
  timeouts.idle_timeout = ctx_.limits.idle_timeout;
  timeouts.keep_alive_pings = true;  // a ping at half the idle timeout; no answer by the end closes
  ws_.set_option(timeouts);
  // The limit is enforced in on_read, where an oversized message of any
  // size is answered with a clean close handshake (1009). Beast's own cap
  // fails the connection on the frame's header, with its payload unread:
  // the kernel then resets the connection, and the client sees 1006.
  ws_.read_message_max(0);
  ws_.set_option(websocket::stream_base::decorator([id = ctx_.instance_id](websocket::response_type& res) {
    res.set(http::field::server, "sigstream");
    res.set("X-Sigstream-Instance", id);
  }));
  ws_.async_accept(upgrade, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
}

void ws_session::on_accept(beast::error_code ec) {
  if (ec) {
    ctx_.logger->debug("conn={} websocket handshake failed: {}", remote_, ec.message());
    return;
  }
  ctx_.logger->debug("conn={} connected", remote_);
  if (ctx_.sessions) ctx_.sessions->add(shared_from_this());
  // A connection that never joins holds memory and a socket for nothing.
  join_timer_.expires_after(ctx_.limits.join_timeout);
  join_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->ever_joined_ || self->room_state_ != room_state::none || self->closing_ || self->gone_) return;
    ++self->ctx_.counters.abusive_closes;
    self->ctx_.logger->info("conn={} closed: no join within {} ms (1008)", self->remote_,
                            self->ctx_.limits.join_timeout.count());
    self->keep_for_resume_ = false;
    self->close_with(websocket::close_reason(websocket::close_code::policy_error, "join a room sooner"));
  });
  do_read();
}

// Reads a message a piece at a time, at most read_piece bytes each: the
// pending read of an idle connection then holds that much buffer, not the
// 1.5 KiB a whole-message read prepares. Most messages fit in one piece.
void ws_session::do_read() {
  constexpr std::size_t read_piece = 512;
  ws_.async_read_some(buffer_, read_piece, beast::bind_front_handler(&ws_session::on_read, shared_from_this()));
}

void ws_session::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    // The client's own close handshake: it is gone on purpose (a closed
    // tab sends 1001), so the others should hear of it now, not after the
    // resume grace period.
    if (ec == websocket::error::closed && !closing_) keep_for_resume_ = false;
    // A protocol violation (bad UTF-8, a malformed frame): Beast failed the
    // connection, and a broken client is not worth waiting for.
    if (ec != websocket::error::closed && ec.category() == websocket::make_error_code(websocket::error::closed).category())
      keep_for_resume_ = false;
    if (!expected_close(ec))
      ctx_.logger->info("conn={} peer={} closed: {}", remote_, peer_, ec.message());
    on_gone();
    return;
  }
  if (oversized_bytes_ > 0 || buffer_.size() > ctx_.limits.max_frame_bytes) {
    // Read to the end and dropped, so that the close handshake (1009)
    // comes after the whole message, as a browser expects. A message far
    // past the limit is not waited for: the close goes now, and Beast's
    // close reads and drops the rest until the client's close frame (or
    // the close timeout), so the client still reads the 1009 rather than a
    // reset connection.
    oversized_bytes_ += buffer_.size();
    buffer_.consume(buffer_.size());
    if (!ws_.is_message_done() && oversized_bytes_ <= ctx_.limits.max_frame_bytes * 4) {
      do_read();
      return;
    }
    ctx_.logger->info("conn={} peer={} closed: frame of {}{} bytes over {} (1009)", remote_, peer_,
                      ws_.is_message_done() ? "" : "more than ", oversized_bytes_, ctx_.limits.max_frame_bytes);
    keep_for_resume_ = false;
    close_with(websocket::close_reason(websocket::close_code::too_big, "frame over the size limit"));
    return;
  }
  if (!ws_.is_message_done()) {
    do_read();
    return;
  }
  if (ws_.got_binary()) {
    send_error(std::nullopt, error_code::bad_request, "binary frames are not part of the protocol; send text");
  } else {
    auto data = buffer_.cdata();
    handle(std::string_view(static_cast<char const*>(data.data()), data.size()));
  }
  buffer_.consume(buffer_.size());
  // A large message (an SDP) leaves a large buffer behind: give it back.
  if (buffer_.capacity() > 8192) buffer_.shrink_to_fit();
  if (closing_) return;
  // A client whose replies pile up stops being read until they drain, so
  // it cannot grow its own queue.
  if (queue_high()) {
    reading_paused_ = true;
    return;
  }
  do_read();
}

void ws_session::handle(std::string_view frame) {
  auto parsed = protocol::parse_client_message(frame, ctx_.limits.message);
  if (auto* error = std::get_if<protocol::parse_error>(&parsed)) {
    send_error(error->id, error->code, error->message);
    return;
  }
  std::visit(
      [this](auto&& request) {
        using request_type = std::decay_t<decltype(request)>;
        if constexpr (std::is_same_v<request_type, protocol::join_request>) handle_join(std::move(request));
        else if constexpr (std::is_same_v<request_type, protocol::signal_request>) handle_signal(std::move(request));
        else handle_leave(std::move(request));
      },
      std::move(std::get<protocol::client_message>(parsed)));
}

void ws_session::handle_join(protocol::join_request request) {
  if (room_state_ != room_state::none) {
    send_error(request.id, error_code::already_in_room, "leave the current room first");
    return;
  }
  // After that refusal: a second join sent while one is on its way must not
  // restart the first one's clock.
  join_started_ = std::chrono::steady_clock::now();
  if (ctx_.is_draining()) {
    send_error(request.id, error_code::unavailable, "this instance is stopping; reconnect to join elsewhere");
    return;
  }
  if (!ctx_.ready()) {
    send_error(request.id, error_code::unavailable, "the event log is not reachable; try again");
    return;
  }
  if (!admit_token(request)) return;
  if (request.resume) {
    handle_resume(std::move(request));
    return;
  }
  // Per source address, after the cheap refusals: a client that floods
  // joins (from one connection or many) is slowed down, the others from
  // elsewhere are not. A resume is not counted: it carries a signed token,
  // and a drain moves many clients of one address at once.
  if (ctx_.join_limiter != nullptr && !ctx_.join_limiter->allow(client_address_, std::chrono::steady_clock::now())) {
    ++ctx_.counters.joins_rate_limited;
    ctx_.logger->debug("conn={} client={} join refused: over the join rate of its address", remote_, client_address_);
    send_error(request.id, error_code::rate_limited, "too many joins from your address; slow down");
    return;
  }
  room_state_ = room_state::joining;
  peer_ = new_peer_id();
  room_ = ctx_.directory.get_or_create(request.room);
  room_->join(shared_from_this(), peer_, std::move(request.meta_json), std::move(request.id));
}

bool ws_session::admit_token(protocol::join_request& request) {
  if (ctx_.join_keys.empty()) return true;
  auto refuse = [&](std::string_view why) {
    ctx_.logger->info("conn={} join refused: {} (room token {})", remote_, why, domain::room_token(request.room));
    send_error(request.id, error_code::unauthorized, "a valid join token for this room is required");
    return false;
  };
  if (!request.token) return refuse("no token");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  auto verified = auth::verify_join_token(*request.token, ctx_.join_keys, now.count());
  if (auto const* problem = std::get_if<auth::join_token_problem>(&verified)) return refuse(auth::to_string(*problem));
  auto const& claims = std::get<auth::join_claims>(verified);
  if (!auth::room_admitted(claims.room, request.room)) return refuse("token for another room");
  if (claims.meta_json.size() > ctx_.limits.message.max_meta_bytes) return refuse("meta in the token too large");
  request.meta_json = claims.meta_json;  // the backend's word, not the client's
  may_signal_ = claims.may_signal;
  may_broadcast_ = claims.may_broadcast;
  return true;
}

// A join with a resume token: the token is checked here (signature, expiry,
// room); the room then checks that the peer is still a member.
void ws_session::handle_resume(protocol::join_request request) {
  auto refuse = [&](std::string_view why, std::string_view message) {
    ++ctx_.counters.resumes_refused;
    ctx_.logger->info("conn={} resume refused: {}", remote_, why);
    send_error(request.id, error_code::unauthorized, message);
  };
  if (ctx_.resume_secret.empty()) {
    refuse("resume is off (no secret)", "resume is not enabled on this service; join without it");
    return;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  auto verified = auth::verify_resume_token(*request.resume, ctx_.resume_secret, now.count());
  if (auto const* problem = std::get_if<auth::token_problem>(&verified)) {
    // Never echo the token: it is a credential.
    refuse(auth::to_string(*problem), "the resume token is not valid; join without it");
    return;
  }
  auto claims = std::get<auth::resume_claims>(std::move(verified));
  if (claims.room_token != domain::room_token(request.room)) {
    refuse("token of another room", "the resume token is for another room; join without it");
    return;
  }
  room_state_ = room_state::joining;
  peer_ = claims.peer;
  room_ = ctx_.directory.get_or_create(request.room);
  room_->resume(shared_from_this(), peer_, claims.join_seq, request.last_seq.value_or(claims.join_seq),
                std::move(request.id));
}

void ws_session::handle_signal(protocol::signal_request request) {
  if (room_state_ != room_state::joined) {
    send_error(request.id, error_code::not_in_room, "join a room first");
    return;
  }
  if (!allow_signal()) {
    send_error(request.id, error_code::rate_limited, "too many signals; slow down");
    return;
  }
  if (request.to ? !may_signal_ : !may_broadcast_) {
    send_error(request.id, error_code::unauthorized,
               request.to ? "this peer's join token does not allow signals" : "this peer's join token does not allow broadcasts");
    return;
  }
  room_->signal(shared_from_this(), peer_, std::move(request.to), std::move(request.data_json),
                std::move(request.id));
}

void ws_session::handle_leave(protocol::leave_request request) {
  if (room_state_ != room_state::joined) {
    send_error(request.id, error_code::not_in_room, "not in a room");
    return;
  }
  room_->leave(shared_from_this(), peer_, domain::leave_reason::leave, std::move(request.id));
  room_state_ = room_state::none;
  room_.reset();
  peer_.clear();
}

// Token bucket: `signal_rate` per second, up to `signal_burst` saved up. A
// client that goes on being refused is closed with 1008 (policy violation).
bool ws_session::allow_signal() {
  auto now = std::chrono::steady_clock::now();
  if (signal_bucket_.take(now, ctx_.limits.signal_rate, ctx_.limits.signal_burst)) return true;
  ++ctx_.counters.rate_limited;
  strikes_ = now - last_strike_ < std::chrono::seconds(1) ? strikes_ + 1 : 1;
  last_strike_ = now;
  if (strikes_ >= ctx_.limits.abuse_strikes) {
    ++ctx_.counters.abusive_closes;
    ctx_.logger->warn("conn={} peer={} closed: went on signalling over the rate limit (1008)", remote_, peer_);
    keep_for_resume_ = false;
    close_with(websocket::close_reason(websocket::close_code::policy_error, "rate limit exceeded repeatedly"));
  }
  return false;
}

void ws_session::join_settled(bool joined, service::frame_ptr frame) {
  boost::asio::post(ws_.get_executor(), [self = shared_from_this(), joined, frame = std::move(frame)] {
    if (self->room_state_ == room_state::joining) {
      if (joined) {
        self->room_state_ = room_state::joined;
        self->ever_joined_ = true;
        self->join_timer_.cancel();
        self->ctx_.counters.join_latency.observe(std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - self->join_started_));
      } else {
        self->room_state_ = room_state::none;
        self->room_.reset();
        self->peer_.clear();
      }
    }
    self->enqueue(frame);
  });
}

// Closed as "going away": clients reconnect and join afresh, as the
// library does by itself, instead of staying in a room they are not in.
void ws_session::evicted(std::string const& why) {
  boost::asio::post(ws_.get_executor(), [self = shared_from_this(), why] {
    if (self->closing_ || self->gone_) return;
    self->ctx_.logger->warn("conn={} peer={} {}: closing with 1001", self->remote_, self->peer_, why);
    self->room_state_ = room_state::none;
    self->room_.reset();
    self->close_with(websocket::close_reason(websocket::close_code::going_away, why));
  });
}

void ws_session::move_elsewhere() {
  boost::asio::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->closing_ || self->gone_) return;
    self->close_with(websocket::close_reason(websocket::close_code::service_restart, "instance draining: reconnect"));
  });
}

void ws_session::deliver(service::frame_ptr frame) {
  boost::asio::post(ws_.get_executor(),
                    [self = shared_from_this(), frame = std::move(frame)] { self->enqueue(frame); });
}

void ws_session::send_error(protocol::request_id const& id, error_code code, std::string_view message) {
  ctx_.counters.count_error(static_cast<int>(code));
  ctx_.logger->debug("conn={} peer={} error {}: {}", remote_, peer_, protocol::to_string(code), message);
  enqueue(std::make_shared<std::string const>(protocol::error_message(id, code, message)));
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

void ws_session::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(boost::asio::buffer(*queue_.front()),
                  beast::bind_front_handler(&ws_session::on_write, shared_from_this()));
}

void ws_session::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) {
    queue_.clear();
    queued_bytes_ = 0;
    if (!expected_close(ec)) ctx_.logger->debug("conn={} write failed: {}", remote_, ec.message());
    return;  // the pending read fails too, and cleans up
  }
  queued_bytes_ -= queue_.front()->size();
  queue_.pop_front();
  if (close_after_write_) {
    auto reason = std::move(*close_after_write_);
    close_after_write_.reset();
    close_with(std::move(reason));
    return;
  }
  if (!queue_.empty() && !closing_) do_write();
  if (reading_paused_ && !queue_high() && !closing_) {
    reading_paused_ = false;
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
    // closing the socket is the only way past it. The frame in flight stays
    // until on_write, which pops it: its bytes are still the write's buffer,
    // and its completion may already be queued (a reader that reads, slowly).
    closing_ = true;
    while (queue_.size() > 1) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    beast::error_code ignored;
    ws_.next_layer().close(ignored);
    on_gone();
    return;
  }
  close_with(websocket::close_reason(websocket::close_code::try_again_later, "slow consumer"));
}

// Closes with a handshake: the peer's close frame is awaited, so nothing it
// sent is left unread and it sees our close code. One write at a time: a
// close waits for the write in flight.
void ws_session::close_with(websocket::close_reason reason) {
  closing_ = true;
  if (writing_) {
    // The frame being written stays (on_write pops it); the rest goes.
    while (queue_.size() > 1) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    close_after_write_ = std::make_unique<websocket::close_reason>(std::move(reason));
    return;
  }
  queue_.clear();
  queued_bytes_ = 0;
  ws_.async_close(reason, [self = shared_from_this()](beast::error_code) { self->on_gone(); });
}

void ws_session::on_gone() {
  if (gone_) return;
  gone_ = true;
  join_timer_.cancel();
  if (room_state_ != room_state::none && room_) {
    if (keep_for_resume_) {
      room_->detach(peer_);
    } else {
      room_->leave(nullptr, peer_, domain::leave_reason::disconnect, std::nullopt);
    }
    if (room_state_ == room_state::joined)
      ctx_.logger->debug("conn={} peer={} disconnected ({})", remote_, peer_,
                         keep_for_resume_ ? "kept for a resume" : "closed by the client");
  }
  room_state_ = room_state::none;
  room_.reset();
}

}  // namespace sig::ws
