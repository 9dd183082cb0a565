// The room following the stream: its rebuild (first join on an instance),
// the live feed put in order, catch-ups after a gap, and folding each event
// into the room's state and the frames its local peers are sent.
#include "service/room/room.hpp"

#include "domain/message_id.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <chrono>

#include "ports/presence_store.hpp"
#include "domain/liveness.hpp"
#include "service/room/room_directory.hpp"
#include "ports/room_holdings.hpp"
#include "service/room/room_loader.hpp"

namespace sig::service {

namespace asio = boost::asio;
using protocol::error_code;

namespace {
// Up to this many events are read one direct get at a time (a round trip
// each) when a room is rebuilt or catches up; more on a worker, whose
// consumer costs a few milliseconds of the server's and the worker's time
// to set up but then streams.
constexpr std::size_t short_read_limit = 16;
}  // namespace

// What a rebuild gathers: the presence cache's snapshot, the room's head
// read after the follow, and the holdings record, each arriving on the
// strand; then the room's membership, loaded from them.
struct room::sync_result {
  using clock = std::chrono::steady_clock;
  clock::time_point started = clock::now();
  // When each part came in, for the log line that says what a slow rebuild waited for.
  clock::time_point held_at, cached_at, head_at;
  int parts_left = 3;
  std::optional<cached_room> cached;
  std::optional<std::uint64_t> head;  // nullopt: the stream could not be read
  std::optional<loaded_room> loaded;  // nullopt: the stream could not be read
  bool held = false;                  // the room is recorded among this instance's holdings
};

// --- Following the stream. Runs on the room strand. ---------------------------

void room::start_sync() {
  phase_ = phase::syncing;
  feed_ = ordered_feed();
  std::weak_ptr<room> weak = weak_from_this();
  // Subscribe first, then read the head: anything stored after the read
  // comes live, anything up to it is in what the rebuild reads.
  live_ = ctx_.store.follow(token_, [weak](live_message message) {
    if (auto self = weak.lock())
      asio::post(self->strand_, [self, message = std::move(message)]() mutable { self->on_live(std::move(message)); });
  });
  if (!live_) {
    phase_ = phase::idle;
    fail_waiting(error_code::unavailable, log_unreachable);
    return;
  }
  ++ctx_.rebuilds_in_flight;  // until on_synced
  // The three reads go out at once and come back on the strand; a new room,
  // or one whose cached snapshot is current, is then ready without a worker.
  auto sync = std::make_shared<sync_result>();
  auto self = shared_from_this();
  auto part_done = [self, sync](auto fill) {
    asio::post(self->strand_, [self, sync, fill = std::move(fill)]() mutable {
      fill(*sync);
      if (--sync->parts_left == 0) self->on_parts_read(sync);
    });
  };
  // Recorded before anything of ours is appended to the room: if this
  // instance dies, the survivors find its peers there (liveness_monitor).
  if (ctx_.holdings != nullptr)
    ctx_.holdings->hold(token_, name_, [part_done](bool ok) {
      part_done([ok](sync_result& r) {
        r.held = ok;
        r.held_at = sync_result::clock::now();
      });
    });
  else
    part_done([](sync_result& r) {
      r.held = true;
      r.held_at = sync_result::clock::now();
    });
  if (ctx_.cache != nullptr)
    ctx_.cache->load(token_, [part_done](std::optional<cached_room> cached) {
      part_done([cached = std::move(cached)](sync_result& r) mutable {
        r.cached = std::move(cached);
        r.cached_at = sync_result::clock::now();
      });
    });
  else
    part_done([](sync_result& r) { r.cached_at = sync_result::clock::now(); });
  auto head_read = [part_done](std::optional<std::uint64_t> head) {
    part_done([head](sync_result& r) {
      r.head = head;
      r.head_at = sync_result::clock::now();
    });
  };
  if (!ctx_.store.head_after_follows(subject_, head_read)) {
    asio::post(ctx_.blocking, [self, head_read] {
      std::optional<std::uint64_t> head;
      if (self->ctx_.store.settle_follows()) head = self->ctx_.store.last_seq(self->subject_);
      head_read(head);
    });
  }
}

// The cache, the head and the holdings record are in: load the room from
// them, reading the stream on a worker only if they leave a gap.
void room::on_parts_read(std::shared_ptr<sync_result> sync) {
  if (!sync->head) {
    on_synced(sync);
    return;
  }
  auto loaded = begin_load(ctx_.store.format(), sync->cached, *sync->head, early_joiners());
  if (!needs_reads(loaded)) {
    sync->loaded = std::move(loaded);
    on_synced(sync);
    return;
  }
  // Most often a few events: another instance stored the room's first
  // joins a moment ago (a burst of joins into new rooms), or Redis is a
  // little behind. Read one by one on the strand, a worker's consumer would
  // cost more than they do (and a burst would queue on the workers).
  finish_load_async(ctx_.store, std::move(loaded), ctx_.store.subjects(token_), short_read_limit, hop(),
                    [self = shared_from_this(), sync](std::optional<loaded_room> read) {
                      if (read) {
                        ++self->ctx_.counters.short_reads;
                        sync->loaded = std::move(read);
                        self->on_synced(sync);
                        return;
                      }
                      // On a worker from the start again: begin_load is pure.
                      asio::post(self->ctx_.blocking, [self, sync, joining = self->early_joiners()] {
                        sync->loaded = finish_load(
                            self->ctx_.store, begin_load(self->ctx_.store.format(), sync->cached, *sync->head, joining),
                            self->ctx_.store.subjects(self->token_));
                        asio::post(self->strand_, [self, sync] { self->on_synced(sync); });
                      });
                    });
}

std::function<void(std::function<void()>)> room::hop() {
  return [self = shared_from_this()](std::function<void()> next) { asio::post(self->strand_, std::move(next)); };
}

void room::on_synced(std::shared_ptr<sync_result> sync) {
  --ctx_.rebuilds_in_flight;
  if (!sync->loaded || !sync->held) {
    ctx_.logger->warn("room={} could not {}", name_,
                      !sync->loaded ? "read its history from the stream" : "record that this instance follows it");
    live_.reset();
    feed_.clear();
    phase_ = phase::idle;
    fail_waiting(error_code::unavailable, log_unreachable);
    orphan_early_joins();
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
  auto now = sync_result::clock::now();
  auto ms = [&](sync_result::clock::time_point at) {
    return std::chrono::duration<double, std::milli>(at - sync->started).count();
  };
  ctx_.counters.room_sync_latency.observe(std::chrono::duration_cast<std::chrono::microseconds>(now - sync->started));
  ctx_.logger->debug(
      "room={} seq={} following ({} members, base from {}, {} events replayed) in {:.2f} ms: holdings record {:.2f}, "
      "head {:.2f}, Redis {:.2f}",
      name_, applied_seq_, state_.members.size(),
      result->from_stream_snapshot ? "the stream's snapshot" : result->from_cache ? "Redis" : "nothing",
      result->events.size(), ms(now), ms(sync->held_at), ms(sync->head_at), ms(sync->cached_at));
  if (result->cache_ahead && ctx_.cache != nullptr) {
    ctx_.logger->warn("room={} seq={} the presence cache is ahead of the stream (was the stream reset?); replacing it",
                      name_, applied_seq_);
    ctx_.cache->replace(token_, applied_seq_, ctx_.store.format().encode_snapshot(state_, applied_seq_));
    ++ctx_.counters.cache_repairs;
  } else if (result->cache_needs_repair && waiting_.empty() && waiting_resumes_.empty()) {
    // With a join or resume waiting (the usual reason for a rebuild), the
    // snapshot of its event, written a moment later, repairs the cache: one
    // write, not two. (If it is refused, the next change repairs it.)
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
  std::uint64_t from = feed_.mark() + 1;
  // The held live messages tell up to where events are missing (most often
  // one event): read just those, on the strand. With none held (an
  // acknowledged append that did not come back), up to the head.
  if (std::uint64_t awaited = feed_.awaited(); awaited >= from) {
    read_missing(from, awaited);
    return;
  }
  auto self = shared_from_this();
  bool reading = ctx_.store.head_after_follows(subject_, [self, from](std::optional<std::uint64_t> head) {
    asio::post(self->strand_, [self, from, head] {
      if (self->phase_ != phase::catching_up) return;
      if (!head) return self->catch_up_on_worker(from);
      self->read_missing(from, *head);
    });
  });
  if (!reading) catch_up_on_worker(from);
}

// The room's events from `from` to `to` by short reads; more than a few,
// or a failed read, on a worker (up to the head).
void room::read_missing(std::uint64_t from, std::uint64_t to) {
  read_events_async(ctx_.store, subject_, from, to, short_read_limit, hop(),
                    [self = shared_from_this(), from, to](std::optional<std::vector<stored_message>> messages) {
                      if (self->phase_ != phase::catching_up) return;
                      if (!messages) return self->catch_up_on_worker(from);
                      ++self->ctx_.counters.short_reads;
                      self->on_caught_up(std::move(messages), to);
                    });
}

void room::catch_up_on_worker(std::uint64_t from) {
  asio::post(ctx_.blocking, [self = shared_from_this(), from] {
    auto& log = self->ctx_.store;
    std::optional<std::vector<stored_message>> messages;
    if (auto head = log.last_seq(self->subject_)) messages = log.read(self->subject_, from, *head);
    asio::post(self->strand_, [self, messages = std::move(messages)]() mutable {
      self->on_caught_up(std::move(messages));
    });
  });
}

void room::on_caught_up(std::optional<std::vector<stored_message>> messages, std::uint64_t read_to) {
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
  // The read took all the stream holds of the room up to `read_to`: an
  // event it no longer holds (removed by the stream's limits) cannot be
  // delivered, and waiting for it would catch up again and again.
  feed_.applied(read_to);
  phase_ = phase::live;
  take_continuing(feed_.resume(feed_.mark()));
}

void room::apply(std::uint64_t seq, std::string const& payload) {
  applied_seq_ = seq;
  if (!pass_over(seq, payload)) fold_one(seq, payload);
  // Every instance following the room counts the same events, so they all
  // write the same snapshot here, and JetStream stores it once (message id).
  ++room_events_;
  if (phase_ != phase::syncing && ctx_.snapshot_every > 0 && room_events_ % ctx_.snapshot_every == 0)
    write_stream_snapshot();
}

// A signal to a peer held elsewhere changes nothing here but the room's
// position: it is not decoded at all. False: fold it in full.
bool room::pass_over(std::uint64_t seq, std::string const& payload) {
  auto outline = ctx_.store.format().outline_signal(payload);
  if (!outline || outline->to.empty() || outline->room != name_ || find_local(outline->to) != nullptr) return false;
  std::uint64_t ignored_before = state_.ignored_events;
  state_ = domain::evolve(std::move(state_), domain::event{seq, outline->time_ms, {}, domain::signal_sent{}});
  if (state_.ignored_events != ignored_before) ++ctx_.counters.ignored_events;
  if (phase_ == phase::live) ctx_.counters.delivery_latency.observe(std::chrono::milliseconds(now_ms() - outline->time_ms));
  if (awaited_ <= applied_seq_) echo_timer_.cancel();
  return true;
}

void room::fold_one(std::uint64_t seq, std::string const& payload) {
  auto decoded = ctx_.store.format().decode_event(payload, seq);
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

  if (auto const* left = std::get_if<domain::peer_left>(&e.body)) {
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
  }
  if (phase_ == phase::live) ctx_.counters.delivery_latency.observe(std::chrono::milliseconds(now_ms() - e.time_ms));
  // Tell this instance's peers, one serialized frame for all of them, made
  // only where one of its recipients is: most instances following a room
  // have none for a signal to one peer.
  frame_ptr frame;
  for (auto& local : locals_) {
    if (!domain::is_recipient(e, local.peer, local.join_seq)) continue;
    if (!frame) {
      auto text = protocol::event_frame(e);
      if (!text) break;
      frame = make_frame(std::move(*text));
    }
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
  ctx_.cache->store(token_, applied_seq_, ctx_.store.format().encode_snapshot(state_, applied_seq_));
}

void room::write_stream_snapshot() {
  ++ctx_.counters.stream_snapshots;
  asio::post(ctx_.blocking, [self = shared_from_this(), payload = ctx_.store.format().encode_snapshot(state_, applied_seq_, room_events_),
                             id = domain::snapshot_message_id(token_, applied_seq_)] {
    self->ctx_.store.put_snapshot(self->snapshot_subject_, payload, id);
  });
}

}  // namespace sig::service
