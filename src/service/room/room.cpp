// The room's commands (join, signal, leave, a dropped connection), its local
// peers, and its appends to the stream.
#include "service/room/room.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <random>

#include "domain/liveness.hpp"
#include "domain/message_id.hpp"
#include "domain/room_name.hpp"
#include "service/room/room_directory.hpp"
#include "ports/room_holdings.hpp"
#include "service/room/stored_event.hpp"

namespace sig::service {

namespace asio = boost::asio;
using protocol::error_code;

namespace {

// An append's failure for a log line: the code's words, and the store's.
std::string failure(append_result const& result) {
  return result.detail.empty() ? result.error.message() : result.error.message() + ": " + result.detail;
}

}  // namespace

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
  // Jitter only has to differ between rooms and instances. std::random_device
  // costs a CPUID probe per construction (13 % of the I/O thread in a burst
  // of first joins on this VM), so the seed is the room, the instance and the clock.
  rng_.seed(static_cast<std::uint_fast32_t>(std::hash<std::string>{}(token_ + ctx_.instance_id) ^
                                            static_cast<std::size_t>(std::chrono::steady_clock::now().time_since_epoch().count())));
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
  if (phase_ == phase::idle && ctx_.first_join_before_rebuild.load(std::memory_order_relaxed) &&
      ctx_.rebuilds_in_flight.load(std::memory_order_relaxed) == 0) {
    start_sync();
    if (phase_ == phase::syncing) {
      admit_early(std::move(request));
    } else if (auto endpoint = request.endpoint.lock()) {  // the live feed could not be followed
      reply_join_error(endpoint, request.id, error_code::unavailable, log_unreachable);
    }
    return;
  }
  waiting_.push_back(std::move(request));
  if (phase_ == phase::idle) start_sync();
  else if (phase_ == phase::live) admit_waiting();
}

// The room's first join here goes out right behind the rebuild's reads
// (start_sync sent them, and the holdings record before them), without
// waiting for their answers: a first join then costs one round trip to
// NATS, as a join into a followed room does. Only while no other rebuild
// is in flight here (room_context.hpp says why). It is decided on no state: a
// fresh peer id is never a member yet, and the room-full check, made on
// each instance's view anyway, lets a full room take one more member per
// instance that starts following it. Its echo, or the rebuild's read of
// it, settles it like any other join.
void room::admit_early(join_request request) {
  request.early = true;
  // On no state and nothing in flight, as the comment above says.
  if (append_join(std::move(request), domain::room_state{}, 0)) ++ctx_.counters.joins_before_rebuild;
}

// Decides a join on `state`, with `in_flight` joins not yet in it (the
// domain's rule, room-full included), and appends it; its outcome comes
// back to on_join_appended. False when it was refused (the client heard why).
bool room::append_join(join_request request, domain::room_state const& state, std::size_t in_flight) {
  std::string peer = request.peer;
  auto decision = domain::decide_join(state, peer, request.meta_json, domain::join_limits{ctx_.max_room_peers, in_flight});
  if (std::holds_alternative<domain::rejection>(decision)) {  // room_full
    if (auto endpoint = request.endpoint.lock())
      reply_join_error(endpoint, request.id, error_code::room_full, "this room is full");
    return false;
  }
  auto* events = std::get_if<std::vector<domain::event_body>>(&decision);
  if (events == nullptr || events->empty()) return false;  // ids are fresh: cannot happen
  pending_.emplace(peer, std::move(request));
  append(std::move(events->front()), append_kind::request,
         [self = shared_from_this(), peer](append_result result) { self->on_join_appended(peer, result); });
  return true;
}

std::vector<std::string> room::early_joiners() const {
  std::vector<std::string> out;
  for (auto const& [peer, request] : pending_)
    if (request.early) out.push_back(peer);
  return out;
}

void room::on_join_appended(std::string const& peer, append_result const& result) {
  auto it = pending_.find(peer);
  if (it != pending_.end() && it->second.orphaned) {
    // Its rebuild failed meanwhile and the client heard so: a join that
    // may be stored must not stay a member nobody holds.
    auto request = std::move(it->second);
    pending_.erase(it);
    if (result.ok || result.outcome_unknown()) record_orphan_leave(request, result.ok ? result.seq : 0);
    return;
  }
  if (result.ok) {
    if (it != pending_.end()) it->second.seq = result.seq;
    expect_echo(result.seq);
    return;
  }
  if (it == pending_.end()) return;
  std::vector<join_request> failed{std::move(it->second)};
  pending_.erase(it);
  fail_joins(failed, error_code::unavailable,
             result.error == append_error::overloaded ? "the service is overloaded; try again shortly"
                                                      : "the event log did not take the join; try again");
  maybe_linger();
}

// The rebuild failed: early joins are answered `unavailable` now. One
// already stored gets its leave recorded; one still in flight is left to
// its append's outcome (on_join_appended).
void room::orphan_early_joins() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto& request = it->second;
    if (!request.early || request.orphaned) {
      ++it;
      continue;
    }
    if (auto endpoint = request.endpoint.lock())
      reply_join_error(endpoint, request.id, error_code::unavailable, log_unreachable);
    // Should a later rebuild fold it first, it is settled as abandoned: its leave.
    request.abandoned = true;
    if (request.seq != 0) {
      record_orphan_leave(request, request.seq);
      it = pending_.erase(it);
      continue;
    }
    request.orphaned = true;
    ++it;
  }
}

// The leave of an early join whose room could not be rebuilt: made without
// the room's state (decide_leave needs the member in it), and kept trying
// until stored, as every record of membership is. If the join was never
// stored, the leave changes nothing.
void room::record_orphan_leave(join_request const& request, std::uint64_t join_seq) {
  ctx_.logger->warn("room={} peer={} joined while the room could not be rebuilt here; recording its leave", name_,
                    request.peer);
  append(domain::peer_left{request.peer, domain::leave_reason::disconnect, ctx_.instance_id, request.meta_json,
                           join_seq},
         append_kind::membership, [](append_result) {});
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
    append_join(std::move(request), state_, pending_.size());
  }
  maybe_linger();  // every one of them may have gone meanwhile
}

void room::do_signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
                     std::string data_json, protocol::request_id id) {
  auto const* sender = find_local(peer);
  if (sender == nullptr) {
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
  // With an `id`, the same request sent again is stored at most once.
  std::string msg_id;
  if (id) {
    auto const& s = std::get<domain::signal_sent>(events.front());
    msg_id = domain::signal_message_id(sender->join_seq, *id, s.to, s.data_json);
  }
  append(std::move(events.front()), append_kind::request, [self = shared_from_this(), endpoint, id](append_result result) {
    if (!result.ok) {
      self->reply_error(endpoint, id, error_code::unavailable,
                        result.error == append_error::overloaded ? "the service is overloaded; try again shortly"
                        : result.outcome_unknown() && id
                            ? "the event log did not confirm the signal in time; it may still be delivered: send it "
                              "again with the same id, which stores it at most once"
                            : "the event log did not take the signal; try again");
      return;
    }
    if (result.duplicate) ++self->ctx_.counters.duplicate_requests;
    self->expect_echo(result.seq);
    if (id) endpoint->deliver(make_frame(protocol::ack_message(id, result.seq)));
  }, std::move(msg_id));
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
  std::string payload = ctx_.store.format().encode_event(name_, e);
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
  if (result.ok && result.duplicate) {
    confirm_duplicate(std::move(e), kind, std::move(done), attempt, std::move(msg_id), result.seq);
    return;
  }
  if (result.ok) {
    on_stored(std::move(done), std::move(result));
    return;
  }
  if (result.error == append_error::overloaded) {
    ++ctx_.counters.appends_refused_for_load;
    if (done) done(std::move(result));
    return;
  }
  constexpr int attempts_before_answer = 3;
  bool background = !done;
  // While NATS is away, nothing is gained by waiting: the client hears now.
  // Nor after a timeout: the client has waited a whole acknowledgement
  // timeout already (a cluster without quorum takes appends and never
  // answers), and three of them would outlast any client's patience.
  if (!background && (attempt + 1 >= attempts_before_answer || !ctx_.store.ready() || result.outcome_unknown())) {
    ++ctx_.counters.append_failures;
    done(result);
    if (kind != append_kind::membership) return;
    // A record of membership is kept trying, quietly, until stored.
    ++unrecorded_;
    ctx_.logger->warn("room={} a {} was not recorded ({}); retrying in the background", name_,
                      std::holds_alternative<domain::peer_left>(e.body) ? "leave" : "resume", failure(result));
    done = nullptr;
    background = true;
  }
  ++ctx_.counters.append_retries;
  ctx_.logger->debug("room={} append failed ({}); retrying", name_, failure(result));
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
                        append_result{false, 0, false, append_error::not_connected, "not connected to NATS"});
      return;
    }
    self->append_attempt(std::move(e), kind, std::move(done), attempt + 1, std::move(msg_id));
  });
}

// An append is stored: its requester hears it, or a record that had
// failed (retried in the background) is counted as stored.
void room::on_stored(std::function<void(append_result)> done, append_result result) {
  if (done) {
    done(std::move(result));
    return;
  }
  --unrecorded_;
  ctx_.logger->info("room={} seq={} a record that had failed is stored now", name_, result.seq);
  expect_echo(result.seq);
  maybe_linger();
}

// A duplicate answer is believed only once the stream shows the event
// (stored_event.hpp): found elsewhere, its stored sequence is the answer;
// found nowhere, the event is appended again under a new message id; the
// stream unreadable, it counts as a lost acknowledgement (retried, or the
// client hears `unavailable`).
void room::confirm_duplicate(domain::event e, append_kind kind, std::function<void(append_result)> done, int attempt,
                             std::string msg_id, std::uint64_t claimed) {
  asio::post(ctx_.blocking, [self = shared_from_this(), e = std::move(e), kind, done = std::move(done), attempt,
                             msg_id = std::move(msg_id), claimed]() mutable {
    auto found = find_stored_event(self->ctx_.store, self->subject_, self->name_, e.body, claimed);
    asio::post(self->strand_, [self, e = std::move(e), kind, done = std::move(done), attempt, msg_id = std::move(msg_id),
                               claimed, found]() mutable {
      if (found.seq) {
        if (*found.seq != claimed)
          self->ctx_.logger->warn("room={} NATS answered an event sent again (message id {}) with seq {}, but it is "
                                  "stored at {}: answered with {}",
                                  self->name_, msg_id, claimed, *found.seq, *found.seq);
        self->on_stored(std::move(done), append_result{true, *found.seq, true, {}, {}});
      } else if (found.read_failed) {
        self->on_appended(std::move(e), kind, std::move(done), attempt, std::move(msg_id),
                          append_result{false, 0, false, append_error::unconfirmed, "could not confirm a duplicate in the stream"});
      } else {
        self->ctx_.logger->warn("room={} NATS answered an event sent again (message id {}) as stored at seq {}, "
                                "where it is not: storing it again under a new message id",
                                self->name_, msg_id, claimed);
        ++self->ctx_.counters.phantom_duplicates;
        self->append_attempt(std::move(e), kind, std::move(done), attempt, msg_id + ".again");
      }
    });
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

}  // namespace sig::service
