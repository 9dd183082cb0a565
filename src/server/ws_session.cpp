#include "server/ws_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "auth/hmac.hpp"
#include "auth/resume_token.hpp"
#include "domain/room_name.hpp"
#include "service/metrics.hpp"
#include "service/room/room.hpp"
#include "service/room/room_directory.hpp"

// A client's requests and what this instance allows it (join tokens,
// resume tokens, the per-address and per-connection limits), and the link
// to its room. The WebSocket itself (handshake, frames, writes, close,
// timers, the connection's making and end) is ws_session_io.cpp.

namespace sig::server {

using protocol::error_code;

namespace {

// 128 random bits: unique across the cluster without coordination, never
// reused, and not guessable, so nobody can address a peer it was not told of.
std::string new_peer_id() { return "p" + auth::random_token(16); }

}  // namespace

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
    close_with(close_reason{close_code::policy_error, "rate limit exceeded repeatedly"});
  }
  return false;
}

void ws_session::join_settled(bool joined, service::frame_ptr frame) {
  boost::asio::post(stream_->get_executor(), [self = shared_from_this(), joined, frame = std::move(frame)] {
    if (self->room_state_ == room_state::joining) {
      if (joined) {
        self->room_state_ = room_state::joined;
        self->ever_joined_ = true;
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
  boost::asio::post(stream_->get_executor(), [self = shared_from_this(), why] {
    if (self->closing_ || self->gone_) return;
    self->ctx_.logger->warn("conn={} peer={} {}: closing with 1001", self->remote_, self->peer_, why);
    self->room_state_ = room_state::none;
    self->room_.reset();
    self->close_with(close_reason{close_code::going_away, why});
  });
}

void ws_session::move_elsewhere() {
  boost::asio::post(stream_->get_executor(), [self = shared_from_this()] {
    if (self->closing_ || self->gone_) return;
    self->close_with(close_reason{close_code::service_restart, "instance draining: reconnect"});
  });
}

void ws_session::deliver(service::frame_ptr frame) {
  boost::asio::post(stream_->get_executor(),
                    [self = shared_from_this(), frame = std::move(frame)] { self->enqueue(frame); });
}

void ws_session::send_error(protocol::request_id const& id, error_code code, std::string_view message) {
  ctx_.counters.count_error(static_cast<int>(code));
  ctx_.logger->debug("conn={} peer={} error {}: {}", remote_, peer_, protocol::to_string(code), message);
  enqueue(std::make_shared<std::string const>(protocol::error_message(id, code, message)));
}

void ws_session::on_gone() {
  if (gone_) return;
  gone_ = true;
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

}  // namespace sig::server
