#include "service/room.hpp"

#include "domain/liveness.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <future>
#include <iterator>
#include <random>

#include "adapters/codec/event_codec.hpp"
#include "auth/resume_token.hpp"
#include "adapters/redis/presence_cache.hpp"
#include "service/room_holdings.hpp"
#include "service/room_loader.hpp"
#include "domain/room_name.hpp"
#include "service/room_directory.hpp"

namespace sig::service {

namespace asio = boost::asio;
using protocol::error_code;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

frame_ptr make_frame(std::string text) { return std::make_shared<std::string const>(std::move(text)); }

}  // namespace

// What the blocking worker hands back after reading the room's membership.
struct room::sync_result {
  std::optional<loaded_room> loaded;  // nullopt: the stream could not be read
  bool held = false;                  // the room is recorded among this instance's holdings
};

room::room(room_context& ctx, std::string name)
    : ctx_(ctx),
      name_(std::move(name)),
      token_(domain::room_token(name_)),
      subject_(ctx.store.subjects(token_).events),
      snapshot_subject_(ctx.store.subjects(token_).snapshot),
      strand_(asio::make_strand(ctx.io)),
      echo_timer_(strand_),
      linger_timer_(strand_),
      recovery_timer_(strand_) {
  ++ctx_.counters.active_rooms;
}

room::~room() { --ctx_.counters.active_rooms; }

// --- Public calls: post to the strand. ---------------------------------------

void room::join(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::string meta_json,
                protocol::request_id id) {
  asio::post(strand_, [self = shared_from_this(),
                       request = join_request{endpoint, std::move(peer), std::move(meta_json), std::move(id)}]() mutable {
    self->do_join(std::move(request));
  });
}

void room::signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
                  std::string data_json, protocol::request_id id) {
  asio::post(strand_, [self = shared_from_this(), endpoint = std::move(endpoint), peer = std::move(peer),
                       to = std::move(to), data_json = std::move(data_json), id = std::move(id)]() mutable {
    self->do_signal(std::move(endpoint), std::move(peer), std::move(to), std::move(data_json), std::move(id));
  });
}

void room::leave(std::shared_ptr<peer_endpoint> endpoint, std::string peer, domain::leave_reason reason,
                 protocol::request_id id) {
  asio::post(strand_, [self = shared_from_this(), endpoint = std::move(endpoint), peer = std::move(peer), reason,
                       id = std::move(id)]() mutable {
    self->do_leave(std::move(endpoint), std::move(peer), reason, std::move(id));
  });
}

void room::resume(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::uint64_t join_seq,
                  std::uint64_t last_seq, protocol::request_id id) {
  asio::post(strand_, [self = shared_from_this(),
                       request = resume_request{endpoint, std::move(peer), join_seq, last_seq, std::move(id)}]() mutable {
    self->do_resume(std::move(request));
  });
}

void room::detach(std::string peer) {
  asio::post(strand_, [self = shared_from_this(), peer = std::move(peer)] { self->do_detach(peer); });
}

void room::disconnect_all() {
  asio::post(strand_, [self = shared_from_this()] {
    auto locals = std::move(self->locals_);
    self->locals_.clear();
    for (auto& local : locals) {
      --self->ctx_.counters.joined_peers;
      if (self->ctx_.held) self->ctx_.held->remove(local.peer);
      self->append_leave(local.peer, domain::leave_reason::disconnect, nullptr, std::nullopt);
    }
    // Detached peers that did not resume elsewhere during the drain: nobody
    // here will wait for them any longer.
    std::vector<std::pair<std::string, std::uint64_t>> detached;
    for (auto const& [peer, d] : self->detached_) detached.emplace_back(peer, d.join_seq);
    for (auto const& [peer, join_seq] : detached) {
      self->drop_detached(peer);
      self->append_leave(peer, domain::leave_reason::expired, nullptr, std::nullopt,
                         domain::expiry_message_id(self->token_, peer, join_seq));
    }
    for (auto& [peer, request] : self->pending_) request.abandoned = true;
    for (auto& [peer, request] : self->pending_resumes_) request.abandoned = true;
    self->waiting_.clear();
    self->waiting_resumes_.clear();
  });
}

// --- Commands. Runs on the room strand. ---------------------------------------

void room::do_join(join_request request) {
  if (phase_ == phase::closed) {
    // This object let go of the room a moment ago; the directory has (or
    // makes) the current one.
    auto endpoint = request.endpoint.lock();
    if (endpoint)
      ctx_.directory.get_or_create(name_)->join(endpoint, std::move(request.peer), std::move(request.meta_json),
                                                 std::move(request.id));
    return;
  }
  linger_timer_.cancel();
  waiting_.push_back(std::move(request));
  if (phase_ == phase::idle) start_sync();
  else if (phase_ == phase::live) admit_waiting();
}

void room::do_resume(resume_request request) {
  if (phase_ == phase::closed) {
    auto endpoint = request.endpoint.lock();
    if (endpoint)
      ctx_.directory.get_or_create(name_)->resume(endpoint, std::move(request.peer), request.join_seq,
                                                   request.last_seq, std::move(request.id));
    return;
  }
  linger_timer_.cancel();
  waiting_resumes_.push_back(std::move(request));
  if (phase_ == phase::idle) start_sync();
  else if (phase_ == phase::live) admit_waiting();
}

// The member continues on a new connection: appended as a `resumed` event,
// and answered when that event comes back (on_resumed). A leave racing it
// (its grace ran out on the old instance) is ordered by the stream: if the
// leave comes first, the resume changes nothing and is refused.
void room::admit_resumes() {
  auto resumes = std::move(waiting_resumes_);
  waiting_resumes_.clear();
  for (auto& request : resumes) {
    auto endpoint = request.endpoint.lock();
    if (!endpoint) continue;
    auto const* m = state_.find(request.peer);
    std::string_view refusal;
    if (m == nullptr || m->join_seq != request.join_seq)
      refusal = "this peer has left the room (it did not resume within the grace period); join afresh";
    else if (pending_resumes_.count(request.peer) != 0)
      refusal = "this peer is resuming on another connection already";
    if (!refusal.empty()) {
      ++ctx_.counters.resumes_refused;
      ctx_.logger->info("room={} peer={} resume refused: {}", name_, request.peer, refusal);
      ctx_.counters.count_error(static_cast<int>(error_code::unauthorized));
      endpoint->join_settled(false, make_frame(protocol::error_message(request.id, error_code::unauthorized, refusal)));
      continue;
    }
    std::string peer = request.peer;
    pending_resumes_.emplace(peer, std::move(request));
    append(domain::peer_resumed{peer}, append_kind::membership, [self = shared_from_this(), peer](append_result result) {
      if (result.ok) {
        self->expect_echo(result.seq);
        return;
      }
      auto it = self->pending_resumes_.find(peer);
      if (it == self->pending_resumes_.end()) return;
      auto failed = std::move(it->second);
      self->pending_resumes_.erase(it);
      if (auto endpoint = failed.endpoint.lock())
        self->reply_join_error(endpoint, failed.id, error_code::unavailable,
                               "the event log did not take the resume; try again");
      self->maybe_linger();
    });
  }
}

void room::do_detach(std::string const& peer) {
  if (drop_unappended(waiting_, peer)) return;
  if (auto it = pending_.find(peer); it != pending_.end()) {
    it->second.abandoned = true;  // never told it joined: it has no token to come back with
    return;
  }
  if (drop_unappended(waiting_resumes_, peer)) return;
  if (auto it = pending_resumes_.find(peer); it != pending_resumes_.end()) {
    it->second.abandoned = true;  // kept for the grace once its resume comes back
    return;
  }
  auto* local = find_local(peer);
  if (local == nullptr) return;
  std::uint64_t join_seq = local->join_seq;
  locals_.erase(locals_.begin() + (local - locals_.data()));
  --ctx_.counters.joined_peers;
  keep_detached(peer, join_seq);
}

// The peer stays a member, held by this instance, for the grace period;
// then its leave (expired) is recorded, unless it resumed meanwhile (here:
// it is local again; elsewhere: its `resumed` event dropped it).
void room::keep_detached(std::string const& peer, std::uint64_t join_seq) {
  if (ctx_.resume_secret.empty()) {  // nobody can come back: leave at once
    if (ctx_.held) ctx_.held->remove(peer);
    append_leave(peer, domain::leave_reason::disconnect, nullptr, std::nullopt);
    maybe_linger();
    return;
  }
  if (ctx_.held) ctx_.held->add(peer);
  auto timer = std::make_shared<asio::steady_timer>(strand_, ctx_.resume_grace);
  detached_[peer] = detached_member{join_seq, timer};
  ++ctx_.counters.detached_peers;
  ctx_.logger->debug("room={} peer={} connection lost; kept {} ms for a resume", name_, peer, ctx_.resume_grace.count());
  timer->async_wait([self = shared_from_this(), peer, timer, join_seq](boost::system::error_code ec) {
    auto it = self->detached_.find(peer);
    if (ec || it == self->detached_.end() || it->second.grace != timer) return;
    self->drop_detached(peer);
    ++self->ctx_.counters.grace_expired_peers;
    self->ctx_.logger->info("room={} peer={} did not resume within {} ms; recording its leave (expired)", self->name_,
                            peer, self->ctx_.resume_grace.count());
    // The liveness monitor may record the same leave: one message id for both.
    self->append_leave(peer, domain::leave_reason::expired, nullptr, std::nullopt,
                       domain::expiry_message_id(self->token_, peer, join_seq));
    self->maybe_linger();
  });
}

void room::drop_detached(std::string const& peer) {
  auto it = detached_.find(peer);
  if (it == detached_.end()) return;
  it->second.grace->cancel();
  detached_.erase(it);
  --ctx_.counters.detached_peers;
  if (ctx_.held) ctx_.held->remove(peer);
}

void room::admit_waiting() {
  admit_resumes();
  auto joins = std::move(waiting_);
  waiting_.clear();
  for (auto& request : joins) {
    if (request.endpoint.expired()) continue;  // gone before anything was appended
    if (state_.members.size() + pending_.size() >= ctx_.max_room_peers) {
      // Other instances may admit joins at the same moment: the cap holds
      // per instance's view, so a room can overshoot it by a few at once.
      if (auto endpoint = request.endpoint.lock())
        reply_join_error(endpoint, request.id, error_code::room_full, "this room is full");
      continue;
    }
    std::string peer = request.peer;
    auto decision = domain::decide_join(state_, peer, request.meta_json);
    auto* events = std::get_if<std::vector<domain::event_body>>(&decision);
    if (events == nullptr || events->empty()) continue;  // ids are fresh: cannot happen
    pending_.emplace(peer, std::move(request));
    append(std::move(events->front()), append_kind::request, [self = shared_from_this(), peer](append_result result) {
      if (result.ok) {
        self->expect_echo(result.seq);
        return;
      }
      auto it = self->pending_.find(peer);
      if (it == self->pending_.end()) return;
      std::vector<join_request> failed{std::move(it->second)};
      self->pending_.erase(it);
      self->fail_joins(failed, error_code::unavailable,
                       result.overloaded ? "the service is overloaded; try again shortly"
                                         : "the event log did not take the join; try again");
      self->maybe_linger();
    });
  }
  maybe_linger();  // every one of them may have gone meanwhile
}

void room::do_signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
                     std::string data_json, protocol::request_id id) {
  if (find_local(peer) == nullptr) {
    reply_error(endpoint, id, error_code::not_in_room, "join a room first");
    return;
  }
  auto decision = domain::decide_signal(state_, peer, std::move(to), std::move(data_json));
  if (auto const* rejected = std::get_if<domain::rejection>(&decision)) {
    if (*rejected == domain::rejection::unknown_peer)
      reply_error(endpoint, id, error_code::unknown_peer, "no such peer in this room");
    else
      reply_error(endpoint, id, error_code::not_in_room, "join a room first");
    return;
  }
  auto& events = std::get<std::vector<domain::event_body>>(decision);
  append(std::move(events.front()), append_kind::request, [self = shared_from_this(), endpoint, id](append_result result) {
    if (!result.ok) {
      self->reply_error(endpoint, id, error_code::unavailable,
                        result.overloaded ? "the service is overloaded; try again shortly"
                                          : "the event log did not take the signal; try again");
      return;
    }
    self->expect_echo(result.seq);
    if (id) endpoint->deliver(make_frame(protocol::ack_message(id, result.seq)));
  });
}

void room::do_leave(std::shared_ptr<peer_endpoint> endpoint, std::string peer, domain::leave_reason reason,
                    protocol::request_id id) {
  if (drop_unappended(waiting_, peer)) return;
  if (auto it = pending_.find(peer); it != pending_.end()) {
    it->second.abandoned = true;  // its leave is appended once its join is back
    return;
  }
  auto local = std::find_if(locals_.begin(), locals_.end(), [&](auto const& m) { return m.peer == peer; });
  if (local == locals_.end()) {
    reply_error(endpoint, id, error_code::not_in_room, "not in a room");
    return;
  }
  // Deliveries stop now; the rest of the room learns from the event.
  if (ctx_.held) ctx_.held->remove(local->peer);
  locals_.erase(local);
  --ctx_.counters.joined_peers;
  append_leave(std::move(peer), reason, std::move(endpoint), std::move(id));
  maybe_linger();
}

void room::append_leave(std::string peer, domain::leave_reason reason, std::shared_ptr<peer_endpoint> endpoint,
                        protocol::request_id id, std::string msg_id) {
  auto decision = domain::decide_leave(state_, peer, reason);
  auto* events = std::get_if<std::vector<domain::event_body>>(&decision);
  if (events == nullptr || events->empty()) {
    // Already gone from the room (another instance recorded it).
    if (endpoint && id) endpoint->deliver(make_frame(protocol::ack_message(id, applied_seq_)));
    return;
  }
  append(std::move(events->front()), append_kind::membership, [self = shared_from_this(), peer, endpoint, id](append_result result) {
    if (!result.ok) {
      self->reply_error(endpoint, id, error_code::unavailable, "the event log did not take the leave yet");
      return;
    }
    self->expect_echo(result.seq);
    if (endpoint && id) endpoint->deliver(make_frame(protocol::ack_message(id, result.seq)));
  }, std::move(msg_id));
}

// Appends with a message id that JetStream deduplicates, so a retry after
// a lost acknowledgement can never store the event twice. Retries back off,
// and none is made for an append refused for load (the client hears
// `unavailable` at once) or while NATS is away. `done` hears the first
// definite outcome; a record of membership that still failed is retried
// in the background until stored, since a lost leave would leave a ghost.
void room::append(domain::event_body body, append_kind kind, std::function<void(append_result)> done,
                  std::string msg_id) {
  if (msg_id.empty()) msg_id = ctx_.message_id_prefix + std::to_string(++ctx_.next_message_id);
  ++ctx_.counters.appended_by_kind[body.index()];
  append_attempt(domain::event{0, now_ms(), ctx_.instance_id, std::move(body)}, kind, std::move(done), 0,
                 std::move(msg_id));
}

void room::append_attempt(domain::event e, append_kind kind, std::function<void(append_result)> done, int attempt,
                          std::string msg_id) {
  std::string payload = codec::encode_event(name_, e);
  ++ctx_.counters.events_appended;
  ++ctx_.counters.appends_in_flight;
  ctx_.store.append(subject_, std::move(payload), msg_id, kind,
                    [self = shared_from_this(), e = std::move(e), kind, done = std::move(done), attempt,
                     msg_id](append_result result) mutable {
                      asio::post(self->strand_, [self, e = std::move(e), kind, done = std::move(done), attempt,
                                                 msg_id = std::move(msg_id), result = std::move(result)]() mutable {
                        --self->ctx_.counters.appends_in_flight;
                        self->on_appended(std::move(e), kind, std::move(done), attempt, std::move(msg_id),
                                          std::move(result));
                      });
                    });
}

void room::on_appended(domain::event e, append_kind kind, std::function<void(append_result)> done, int attempt,
                       std::string msg_id, append_result result) {
  if (result.ok) {
    if (done) done(std::move(result));
    else {
      --unrecorded_;
      ctx_.logger->info("room={} seq={} a record that had failed is stored now", name_, result.seq);
      expect_echo(result.seq);
      maybe_linger();
    }
    return;
  }
  if (result.overloaded) {
    ++ctx_.counters.appends_refused_for_load;
    if (done) done(std::move(result));
    return;
  }
  constexpr int attempts_before_answer = 3;
  bool background = !done;
  // While NATS is away, nothing is gained by waiting: the client hears now.
  if (!background && (attempt + 1 >= attempts_before_answer || !ctx_.store.ready())) {
    ++ctx_.counters.append_failures;
    done(result);
    if (kind != append_kind::membership) return;
    // A record of membership is kept trying, quietly, until stored.
    ++unrecorded_;
    ctx_.logger->warn("room={} a {} was not recorded ({}); retrying in the background", name_,
                      std::holds_alternative<domain::peer_left>(e.body) ? "leave" : "resume", result.error);
    done = nullptr;
    background = true;
  }
  ++ctx_.counters.append_retries;
  ctx_.logger->debug("room={} append failed ({}); retrying", name_, result.error);
  // 50 ms, 100 ms, 200 ms ... up to 5 s, each with up to half again at
  // random, so that instances retrying after one outage do not do it in step.
  auto base = std::chrono::milliseconds(50) * (1 << std::min(attempt, 7));
  auto delay = std::min<std::chrono::milliseconds>(base, std::chrono::milliseconds(5000));
  delay += std::chrono::milliseconds(std::uniform_int_distribution<long>(0, delay.count() / 2)(rng_));
  auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
  timer->async_wait([self = shared_from_this(), timer, e = std::move(e), kind, done = std::move(done), attempt,
                     msg_id = std::move(msg_id)](boost::system::error_code) mutable {
    if (!self->ctx_.store.ready()) {
      // NATS is away: a background record waits for it; a request is answered.
      self->on_appended(std::move(e), kind, std::move(done), attempt + 1, std::move(msg_id),
                        append_result{false, 0, false, false, "not connected to NATS"});
      return;
    }
    self->append_attempt(std::move(e), kind, std::move(done), attempt + 1, std::move(msg_id));
  });
}

// --- Following the stream. Runs on the room strand. ---------------------------

void room::start_sync() {
  phase_ = phase::syncing;
  feed_ = ordered_feed();
  std::weak_ptr<room> weak = weak_from_this();
  // Subscribe first, then read: anything stored after the subscription is
  // in the buffer, anything before it is in what the worker reads.
  live_ = ctx_.store.follow(token_, [weak](live_message message) {
    if (auto self = weak.lock())
      asio::post(self->strand_, [self, message = std::move(message)]() mutable { self->on_live(std::move(message)); });
  });
  if (!live_) {
    phase_ = phase::idle;
    fail_waiting(error_code::unavailable, "the event log is not reachable; try again");
    return;
  }
  asio::post(ctx_.blocking, [self = shared_from_this()] {
    auto result = std::make_shared<sync_result>();
    // Recorded before anything of ours is appended to the room: if this
    // instance dies, the survivors find its peers there (liveness_monitor).
    auto held = std::make_shared<std::promise<bool>>();
    auto held_future = held->get_future();
    if (self->ctx_.holdings != nullptr)
      self->ctx_.holdings->hold(self->token_, self->name_, [held](bool ok) { held->set_value(ok); });
    else
      held->set_value(true);
    if (self->ctx_.store.settle_follows())
      result->loaded = load_room(self->ctx_.store, self->ctx_.cache, self->token_, self->ctx_.store.subjects(self->token_));
    result->held = held_future.wait_for(std::chrono::seconds(5)) == std::future_status::ready && held_future.get();
    asio::post(self->strand_, [self, result] { self->on_synced(result); });
  });
}

void room::on_synced(std::shared_ptr<sync_result> sync) {
  if (!sync->loaded || !sync->held) {
    ctx_.logger->warn("room={} could not {}", name_,
                      !sync->loaded ? "read its history from the stream" : "record that this instance follows it");
    live_.reset();
    feed_.clear();
    phase_ = phase::idle;
    fail_waiting(error_code::unavailable, "the event log is not reachable; try again");
    return;
  }
  auto* result = &*sync->loaded;
  ++(result->from_cache ? ctx_.counters.room_syncs_from_cache : ctx_.counters.room_syncs_by_replay);
  ctx_.counters.replayed_events += result->events.size();
  state_ = std::move(result->base);
  feed_.applied(state_.last_seq);
  applied_seq_ = state_.last_seq;
  room_events_ = result->room_events;
  for (auto const& stored : result->events) {
    feed_.applied(stored.seq);
    apply(stored.seq, stored.payload);
  }
  // A long replay leaves a snapshot behind, for whoever rebuilds next.
  if (ctx_.snapshot_every > 0 && result->events.size() >= ctx_.snapshot_every) write_stream_snapshot();
  feed_.applied(result->head);
  applied_seq_ = feed_.mark();
  ctx_.logger->debug("room={} seq={} following ({} members, base from {}, {} events replayed)", name_, applied_seq_,
                     state_.members.size(),
                     result->from_stream_snapshot ? "the stream's snapshot" : result->from_cache ? "Redis" : "nothing",
                     result->events.size());
  if (result->cache_ahead && ctx_.cache != nullptr) {
    ctx_.logger->warn("room={} seq={} the presence cache is ahead of the stream (was the stream reset?); replacing it",
                      name_, applied_seq_);
    ctx_.cache->replace(token_, applied_seq_, codec::encode_snapshot(state_, applied_seq_));
    ++ctx_.counters.cache_repairs;
  } else if (result->cache_needs_repair) {
    store_snapshot();
    ++ctx_.counters.cache_repairs;
  }
  // Members recorded by this instance id that no connection here holds were
  // left behind by an earlier run of it that stopped without saying goodbye.
  for (auto const& m : state_.members) {
    if (m.instance != ctx_.instance_id || find_local(m.peer) != nullptr || pending_.count(m.peer) != 0 ||
        detached_.count(m.peer) != 0 || pending_resumes_.count(m.peer) != 0)
      continue;
    ctx_.logger->warn("room={} peer={} was held by an earlier run of this instance; recording its leave", name_, m.peer);
    // The liveness monitor may record the same leave: one message id for both.
    append_leave(m.peer, domain::leave_reason::expired, nullptr, std::nullopt,
                 domain::expiry_message_id(token_, m.peer, m.join_seq));
  }
  phase_ = phase::live;
  take_continuing(feed_.resume(feed_.mark()));
}

void room::on_live(live_message message) {
  if (ctx_.drop_live_every > 0 || ctx_.delay_live_every > 0) {
    auto n = ++ctx_.live_seen;
    if (ctx_.drop_live_every > 0 && n % ctx_.drop_live_every == 0) {
      ++ctx_.counters.live_dropped_by_fault_injection;
      return;
    }
    if (ctx_.delay_live_every > 0 && n % ctx_.delay_live_every == 0) {
      auto timer = std::make_shared<asio::steady_timer>(strand_, std::chrono::milliseconds(3));
      timer->async_wait([self = shared_from_this(), timer, message = std::move(message)](boost::system::error_code) mutable {
        self->take_arrival(std::move(message));
      });
      return;
    }
  }
  take_arrival(std::move(message));
}

void room::take_arrival(live_message message) {
  ++ctx_.counters.live_messages_received;
  ctx_.counters.live_bytes_received += message.payload.size();
  if (phase_ == phase::idle || phase_ == phase::closed) return;
  take_continuing(feed_.arrive(std::move(message)));
}

// Applies what the feed put in order, then minds the hole it may have left.
void room::take_continuing(std::vector<live_message> ready) {
  for (auto const& message : ready) apply(message.seq, message.payload);
  if (phase_ != phase::live) return;
  if (!feed_.has_hole()) {
    awaiting_missing_ = false;
    recovery_timer_.cancel();
  } else if (!ready.empty() || !awaiting_missing_) {
    await_missing();
  }
  admit_waiting();
}

// A hole in the live feed: wait briefly for the message (it may only be
// late), then read what is missing from the stream.
void room::await_missing() {
  awaiting_missing_ = true;
  recovery_timer_.expires_after(ctx_.reorder_window);
  recovery_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->awaiting_missing_ || self->phase_ != phase::live || !self->feed_.has_hole()) return;
    self->awaiting_missing_ = false;
    ++self->ctx_.counters.gaps_detected;
    self->ctx_.logger->info("room={} seq={} gap in the live feed; catching up from the stream", self->name_,
                            self->feed_.mark());
    self->start_catch_up();
  });
}

void room::start_catch_up() {
  phase_ = phase::catching_up;
  awaiting_missing_ = false;
  feed_.pause();
  ++ctx_.counters.catch_ups;
  asio::post(ctx_.blocking, [self = shared_from_this(), from = feed_.mark() + 1] {
    auto& log = self->ctx_.store;
    std::optional<std::vector<stored_message>> messages;
    if (auto head = log.last_seq(self->subject_)) messages = log.read(self->subject_, from, *head);
    asio::post(self->strand_, [self, messages = std::move(messages)]() mutable {
      self->on_caught_up(std::move(messages));
    });
  });
}

void room::on_caught_up(std::optional<std::vector<stored_message>> messages) {
  if (phase_ != phase::catching_up) return;
  if (!messages) {
    // Keep holding the feed and try again shortly; the room's peers stay connected.
    recovery_timer_.expires_after(std::chrono::seconds(1));
    recovery_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->phase_ == phase::catching_up) self->start_catch_up();
    });
    return;
  }
  ctx_.counters.replayed_events += messages->size();
  for (auto const& stored : *messages) {
    if (stored.seq <= feed_.mark()) continue;
    feed_.applied(stored.seq);
    apply(stored.seq, stored.payload);
  }
  phase_ = phase::live;
  take_continuing(feed_.resume(feed_.mark()));
}

void room::apply(std::uint64_t seq, std::string const& payload) {
  applied_seq_ = seq;
  fold_one(seq, payload);
  // Every instance following the room counts the same events, so they all
  // write the same snapshot here, and JetStream stores it once (message id).
  ++room_events_;
  if (phase_ != phase::syncing && ctx_.snapshot_every > 0 && room_events_ % ctx_.snapshot_every == 0)
    write_stream_snapshot();
}

void room::fold_one(std::uint64_t seq, std::string const& payload) {
  auto decoded = codec::decode_event(payload, seq);
  if (!decoded || decoded->room != name_) {
    ++ctx_.counters.ignored_events;
    ctx_.logger->warn("room={} seq={} skipped an event this version cannot read", name_, seq);
    return;
  }
  domain::event const& e = decoded->event;

  // The `joined` reply lists the members folded before the joiner's event.
  std::vector<protocol::peer_entry> peers_before;
  auto const* joined = std::get_if<domain::peer_joined>(&e.body);
  auto pending = joined ? pending_.find(joined->peer) : pending_.end();
  if (pending != pending_.end()) {
    peers_before.reserve(state_.members.size());
    for (auto const& m : state_.members) peers_before.push_back({m.peer, m.meta_json, m.instance});
  }

  auto const* resumed = std::get_if<domain::peer_resumed>(&e.body);
  std::vector<domain::member> members_before_event;
  if (resumed) members_before_event = state_.members;

  std::uint64_t ignored_before = state_.ignored_events;
  state_ = domain::evolve(std::move(state_), e);
  if (state_.ignored_events != ignored_before) {
    ++ctx_.counters.ignored_events;
    if (resumed && e.instance == ctx_.instance_id) {
      // The peer's leave was ordered before its resume.
      if (auto it = pending_resumes_.find(resumed->peer); it != pending_resumes_.end()) {
        auto request = std::move(it->second);
        pending_resumes_.erase(it);
        ++ctx_.counters.resumes_refused;
        if (auto endpoint = request.endpoint.lock())
          reply_join_error(endpoint, request.id, error_code::unauthorized,
                           "this peer has left the room (it did not resume within the grace period); join afresh");
        maybe_linger();
      }
    }
    return;  // a duplicate or a no-op: nobody hears of it
  }
  if (resumed) {
    on_resumed(e, std::move(members_before_event));
    if (e.instance == ctx_.instance_id) store_snapshot();
    if (awaited_ <= applied_seq_) echo_timer_.cancel();
    return;  // nobody is told
  }

  // Tell this instance's peers, one serialized frame for all of them.
  frame_ptr frame;
  if (joined) {
    frame = make_frame(protocol::peer_joined_message(joined->peer, joined->meta_json, seq, e.instance));
  } else if (auto const* left = std::get_if<domain::peer_left>(&e.body)) {
    frame = make_frame(protocol::peer_left_message(left->peer, left->reason, seq));
    drop_detached(left->peer);  // expired by another instance while away
    // A leave this instance did not ask for, of a peer it still holds.
    if (auto* local = find_local(left->peer)) {
      auto endpoint = local->endpoint.lock();
      if (ctx_.held) ctx_.held->remove(local->peer);
      locals_.erase(locals_.begin() + (local - locals_.data()));
      --ctx_.counters.joined_peers;
      ctx_.logger->warn("room={} seq={} peer={} was recorded as left ({}) by instance {}; closing its connection",
                        name_, seq, left->peer, domain::to_string(left->reason), e.instance);
      if (endpoint) endpoint->evicted(fmt::format("left the room ({})", domain::to_string(left->reason)));
    }
  } else {
    auto const& s = std::get<domain::signal_sent>(e.body);
    frame = make_frame(protocol::signal_message(s.from, s.to, s.data_json, seq));
  }
  if (phase_ == phase::live) ctx_.counters.observe_latency(now_ms() - e.time_ms);
  for (auto& local : locals_) {
    if (!domain::is_recipient(e, local.peer, local.join_seq)) continue;
    send_to(local, frame);
    ++ctx_.counters.delivered_by_kind[e.body.index()];
  }

  if (joined) {
    if (pending != pending_.end()) {
      join_request request = std::move(pending->second);
      pending_.erase(pending);
      auto endpoint = request.endpoint.lock();
      if (request.abandoned || !endpoint) {
        append_leave(joined->peer, domain::leave_reason::disconnect, nullptr, std::nullopt);
      } else {
        locals_.push_back(local_member{joined->peer, seq, endpoint});
        if (ctx_.held) ctx_.held->add(joined->peer);
        ++ctx_.counters.joined_peers;
        endpoint->join_settled(true, make_frame(protocol::joined_message(request.id, name_, joined->peer, peers_before,
                                                                          seq, resume_token_for(joined->peer, seq),
                                                                          ctx_.instance_id)));
        ctx_.logger->debug("room={} seq={} peer={} joined ({} already here)", name_, seq, joined->peer,
                           peers_before.size());
      }
    } else if (phase_ != phase::syncing && e.instance == ctx_.instance_id && find_local(joined->peer) == nullptr &&
               detached_.count(joined->peer) == 0) {
      // Ours, but its append was reported failed (an ack lost on the way):
      // the client was told to retry, so this member would be a ghost.
      ctx_.logger->warn("room={} seq={} peer={} joined without a connection here; recording its leave", name_, seq,
                        joined->peer);
      append_leave(joined->peer, domain::leave_reason::disconnect, nullptr, std::nullopt);
    }
  }
  if (domain::is_membership(e.body) && e.instance == ctx_.instance_id) store_snapshot();

  if (awaited_ <= applied_seq_) echo_timer_.cancel();
}

// An acknowledged append must come back on the live feed. If the feed lost
// it and nothing after it shows the gap, the room catches up by itself.
void room::expect_echo(std::uint64_t seq) {
  awaited_ = std::max(awaited_, seq);
  if (applied_seq_ >= seq) return;
  echo_timer_.expires_after(ctx_.echo_timeout);
  echo_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->phase_ != phase::live || self->awaited_ <= self->applied_seq_) return;
    self->ctx_.logger->info("room={} seq={} an appended event did not come back on the live feed; catching up",
                            self->name_, self->awaited_);
    self->start_catch_up();
  });
}

void room::store_snapshot() {
  if (ctx_.cache == nullptr) return;
  ctx_.cache->store(token_, applied_seq_, codec::encode_snapshot(state_, applied_seq_));
}

void room::write_stream_snapshot() {
  ++ctx_.counters.stream_snapshots;
  asio::post(ctx_.blocking, [self = shared_from_this(), payload = codec::encode_snapshot(state_, applied_seq_, room_events_),
                             id = "snap." + token_ + "." + std::to_string(applied_seq_)] {
    self->ctx_.store.put_snapshot(self->snapshot_subject_, payload, id);
  });
}

void room::fail_joins(std::vector<join_request>& joins, error_code code, std::string_view message) {
  for (auto& request : joins)
    if (auto endpoint = request.endpoint.lock()) reply_join_error(endpoint, request.id, code, message);
}

void room::fail_waiting(error_code code, std::string_view message) {
  auto joins = std::move(waiting_);
  waiting_.clear();
  fail_joins(joins, code, message);
  auto resumes = std::move(waiting_resumes_);
  waiting_resumes_.clear();
  for (auto& request : resumes)
    if (auto endpoint = request.endpoint.lock()) reply_join_error(endpoint, request.id, code, message);
}

void room::reply_join_error(std::shared_ptr<peer_endpoint> const& endpoint, protocol::request_id const& id,
                            error_code code, std::string_view message) {
  ctx_.counters.count_error(static_cast<int>(code));
  endpoint->join_settled(false, make_frame(protocol::error_message(id, code, message)));
}

void room::reply_error(std::shared_ptr<peer_endpoint> const& endpoint, protocol::request_id const& id,
                       error_code code, std::string_view message) {
  if (!endpoint) return;
  ctx_.counters.count_error(static_cast<int>(code));
  endpoint->deliver(make_frame(protocol::error_message(id, code, message)));
}

// An empty room keeps following the stream for a while, so a peer that
// rejoins at once does not pay for a new sync; then it lets go.
void room::maybe_linger() {
  if (!unused() || phase_ != phase::live) return;
  linger_timer_.expires_after(ctx_.linger);
  linger_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->unused()) return;
    if (self->phase_ != phase::live) return;
    self->phase_ = phase::closed;
    self->live_.reset();
    self->feed_.clear();
    self->echo_timer_.cancel();
    self->recovery_timer_.cancel();
    if (self->ctx_.holdings != nullptr) self->ctx_.holdings->release(self->token_);
    self->ctx_.directory.remove(self.get());
  });
}

bool room::unused() const {
  return locals_.empty() && pending_.empty() && waiting_.empty() && detached_.empty() && pending_resumes_.empty() &&
         waiting_resumes_.empty() && unrecorded_ == 0;
}

room::local_member* room::find_local(std::string_view peer) {
  for (auto& m : locals_)
    if (m.peer == peer) return &m;
  return nullptr;
}

// --- Resume. Runs on the room strand. -----------------------------------------

std::string room::resume_token_for(std::string const& peer, std::uint64_t join_seq) const {
  if (ctx_.resume_secret.empty()) return {};
  auto expires = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()) +
                 ctx_.resume_token_lifetime;
  return auth::issue_resume_token(auth::resume_claims{token_, peer, join_seq, expires.count()}, ctx_.resume_secret);
}

void room::send_to(local_member& local, frame_ptr const& frame) {
  if (local.replaying) {
    local.held_back.push_back(frame);
    return;
  }
  if (auto endpoint = local.endpoint.lock()) {
    endpoint->deliver(frame);
    ++ctx_.counters.frames_sent;
  }
}

// A `resumed` event was folded: the peer is held by the instance that
// appended it. Anywhere else, its old connection (if any) lets go without a
// leave; here, the new connection takes over and is sent what it missed.
void room::on_resumed(domain::event const& e, std::vector<domain::member> members_before_event) {
  std::string const& peer = std::get<domain::peer_resumed>(e.body).peer;
  bool ours = e.instance == ctx_.instance_id;
  auto pending = pending_resumes_.find(peer);
  std::optional<resume_request> request;
  if (ours && pending != pending_resumes_.end()) {
    request = std::move(pending->second);
    pending_resumes_.erase(pending);
  }
  // The old connection, here: on this instance or not, it is replaced.
  if (auto* old = find_local(peer)) {
    auto endpoint = old->endpoint.lock();
    locals_.erase(locals_.begin() + (old - locals_.data()));
    --ctx_.counters.joined_peers;
    if (ctx_.held) ctx_.held->remove(peer);
    ctx_.logger->info("room={} seq={} peer={} resumed on {}; closing its old connection here", name_, e.seq, peer,
                      e.instance);
    if (endpoint) endpoint->evicted("resumed on another connection");
  }
  drop_detached(peer);
  if (!ours) {
    maybe_linger();
    return;
  }
  auto const* m = state_.find(peer);
  std::uint64_t join_seq = m ? m->join_seq : 0;
  auto endpoint = request ? request->endpoint.lock() : nullptr;
  if (!endpoint || request->abandoned) {
    // Resumed here, but its connection is gone again (or its append was
    // reported failed): it may come back once more within the grace.
    keep_detached(peer, join_seq);
    return;
  }
  locals_.push_back(local_member{peer, join_seq, endpoint, true, {}});
  if (ctx_.held) ctx_.held->add(peer);
  ++ctx_.counters.joined_peers;
  ++ctx_.counters.resumes;
  // What the client last had: at least its join, at most what came before this event.
  std::uint64_t last_seq = std::clamp(request->last_seq, join_seq, e.seq - 1);
  ctx_.logger->info("room={} seq={} peer={} resumed here; replaying from seq {}", name_, e.seq, peer, last_seq + 1);
  replay_to(peer, last_seq, e.seq, std::move(members_before_event), std::move(request->id));
}

void room::replay_to(std::string peer, std::uint64_t last_seq, std::uint64_t resume_seq,
                     std::vector<domain::member> members_at_resume, protocol::request_id id) {
  if (last_seq + 1 >= resume_seq) {
    finish_replay(peer, last_seq, std::move(members_at_resume), std::vector<stored_message>{}, std::move(id));
    return;
  }
  asio::post(ctx_.blocking, [self = shared_from_this(), peer = std::move(peer), last_seq, resume_seq,
                             members = std::move(members_at_resume), id = std::move(id)]() mutable {
    auto missed = self->ctx_.store.read(self->subject_, last_seq + 1, resume_seq - 1);
    asio::post(self->strand_, [self, peer = std::move(peer), last_seq, members = std::move(members),
                               missed = std::move(missed), id = std::move(id)]() mutable {
      self->finish_replay(peer, last_seq, std::move(members), std::move(missed), std::move(id));
    });
  });
}

// `joined` with the membership as of the client's last event, then every
// event after it that the peer is a recipient of, then what arrived live
// meanwhile: the same frames, in the same order, as if it never left.
void room::finish_replay(std::string const& peer, std::uint64_t last_seq, std::vector<domain::member> members_at_resume,
                         std::optional<std::vector<stored_message>> missed, protocol::request_id id) {
  auto* local = find_local(peer);
  if (local == nullptr || !local->replaying) return;  // gone again (detached, evicted or resumed elsewhere)
  auto endpoint = local->endpoint.lock();
  if (!missed || !endpoint) {
    std::uint64_t join_seq = local->join_seq;
    locals_.erase(locals_.begin() + (local - locals_.data()));
    --ctx_.counters.joined_peers;
    keep_detached(peer, join_seq);
    if (endpoint)
      reply_join_error(endpoint, id, error_code::unavailable, "could not read what this peer missed; resume again");
    return;
  }
  std::vector<domain::event> window;
  window.reserve(missed->size());
  for (auto const& stored : *missed)
    if (auto decoded = codec::decode_event(stored.payload, stored.seq); decoded && decoded->room == name_)
      window.push_back(std::move(decoded->event));
  std::vector<protocol::peer_entry> peers;
  for (auto const& m : domain::members_before(members_at_resume, last_seq, window))
    if (m.peer != peer) peers.push_back({m.peer, m.meta_json, m.instance});
  endpoint->join_settled(true, make_frame(protocol::joined_message(id, name_, peer, peers, last_seq,
                                                                    resume_token_for(peer, local->join_seq),
                                                                    ctx_.instance_id)));
  std::size_t replayed = 0;
  for (auto const& e : window) {
    if (!domain::is_recipient(e, peer, local->join_seq)) continue;
    frame_ptr frame;
    if (auto const* j = std::get_if<domain::peer_joined>(&e.body))
      frame = make_frame(protocol::peer_joined_message(j->peer, j->meta_json, e.seq, e.instance));
    else if (auto const* l = std::get_if<domain::peer_left>(&e.body))
      frame = make_frame(protocol::peer_left_message(l->peer, l->reason, e.seq));
    else if (auto const* sig = std::get_if<domain::signal_sent>(&e.body))
      frame = make_frame(protocol::signal_message(sig->from, sig->to, sig->data_json, e.seq));
    else
      continue;
    endpoint->deliver(frame);
    ++ctx_.counters.frames_sent;
    ++replayed;
  }
  ctx_.counters.resume_replayed_events += replayed;
  for (auto& frame : local->held_back) {
    endpoint->deliver(frame);
    ++ctx_.counters.frames_sent;
  }
  local->held_back.clear();
  local->replaying = false;
  ctx_.logger->debug("room={} peer={} resumed: {} missed events replayed", name_, peer, replayed);
}

}  // namespace sig::service
