// Resume (docs/protocol.md `resume`): a member continues on a new connection,
// through a `resumed` event, and is sent what it missed.
#include "service/room/room.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>


#include <algorithm>

#include "auth/resume_token.hpp"
#include "service/room/room_directory.hpp"

namespace sig::service {

namespace asio = boost::asio;
using protocol::error_code;

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
    auto decision =
        domain::decide_resume(state_, request.peer, request.join_seq, pending_resumes_.count(request.peer) != 0);
    if (auto const* rejected = std::get_if<domain::rejection>(&decision)) {
      std::string_view refusal =
          *rejected == domain::rejection::resume_in_progress
              ? "this peer is resuming on another connection already"
              : "this peer has left the room (it did not resume within the grace period); join afresh";
      ++ctx_.counters.resumes_refused;
      ctx_.logger->info("room={} peer={} resume refused: {}", name_, request.peer, refusal);
      ctx_.counters.count_error(static_cast<int>(error_code::unauthorized));
      endpoint->join_settled(false, make_frame(protocol::error_message(request.id, error_code::unauthorized, refusal)));
      continue;
    }
    std::string peer = request.peer;
    pending_resumes_.emplace(peer, std::move(request));
    auto& events = std::get<std::vector<domain::event_body>>(decision);
    append(std::move(events.front()), append_kind::membership, [self = shared_from_this(), peer](append_result result) {
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
    if (auto decoded = ctx_.store.format().decode_event(stored.payload, stored.seq); decoded && decoded->room == name_)
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
    auto text = protocol::event_frame(e);
    if (!text) continue;
    endpoint->deliver(make_frame(std::move(*text)));
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
