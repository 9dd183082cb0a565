#include "domain/room_state.hpp"

namespace sig::domain {

std::string_view to_string(leave_reason reason) {
  switch (reason) {
    case leave_reason::leave: return "leave";
    case leave_reason::disconnect: return "disconnect";
    case leave_reason::expired: return "expired";
  }
  return "leave";
}

member const* room_state::find(std::string_view peer) const {
  auto it = std::find_if(members.begin(), members.end(),
                         [&](member const& m) { return m.peer == peer; });
  return it == members.end() ? nullptr : &*it;
}

namespace {

struct apply_body {
  room_state& state;
  event const& e;

  bool operator()(peer_joined const& joined) const {
    if (state.has(joined.peer)) return false;
    state.members.push_back(member{joined.peer, joined.meta_json, e.instance, e.seq});
    return true;
  }
  bool operator()(peer_left const& left) const {
    auto it = std::find_if(state.members.begin(), state.members.end(),
                           [&](member const& m) { return m.peer == left.peer; });
    if (it == state.members.end()) return false;
    // Decided on a view where another instance held the peer: it has
    // resumed since (elsewhere), and its new holder decides its leave.
    if (!left.holder.empty() && left.holder != it->instance) return false;
    state.members.erase(it);
    return true;
  }
  bool operator()(peer_resumed const& resumed) const {
    auto it = std::find_if(state.members.begin(), state.members.end(),
                           [&](member const& m) { return m.peer == resumed.peer; });
    if (it == state.members.end()) return false;  // it left (expired) first
    it->instance = e.instance;
    return true;
  }
  bool operator()(signal_sent const&) const { return true; }
};

}  // namespace

room_state evolve(room_state state, event const& e) {
  if (e.seq != 0 && e.seq <= state.last_seq) {
    ++state.ignored_events;
    return state;
  }
  bool changed = std::visit(apply_body{state, e}, e.body);
  if (!changed) ++state.ignored_events;
  state.last_seq = std::max(state.last_seq, e.seq);
  if (is_membership(e.body)) state.last_membership_seq = std::max(state.last_membership_seq, e.seq);
  return state;
}

decision decide_join(room_state const& state, std::string peer, std::string meta_json, join_limits limits) {
  if (state.has(peer)) return std::vector<event_body>{};
  if (state.members.size() + limits.joins_in_flight >= limits.max_peers) return rejection::room_full;
  return std::vector<event_body>{peer_joined{std::move(peer), std::move(meta_json)}};
}

decision decide_leave(room_state const& state, std::string peer, leave_reason reason) {
  auto const* m = state.find(peer);
  if (m == nullptr) return std::vector<event_body>{};
  return std::vector<event_body>{leave_of(*m, reason)};
}

peer_left leave_of(member const& m, leave_reason reason) {
  return peer_left{m.peer, reason, m.instance, m.meta_json, m.join_seq};
}

std::vector<peer_left> decide_expiry(room_state const& state, expiry_scope const& scope) {
  std::vector<peer_left> leaves;
  bool earlier_run = scope.this_run_from > 0;
  for (auto const& m : state.members) {
    if (m.instance != scope.instance) continue;
    if (earlier_run) {
      if (m.join_seq >= scope.this_run_from) continue;
      if (scope.held_here && scope.held_here(m.peer)) continue;
    }
    leaves.push_back(leave_of(m, leave_reason::expired));
  }
  return leaves;
}

decision decide_resume(room_state const& state, std::string peer, std::uint64_t join_seq, bool resume_in_flight) {
  auto const* m = state.find(peer);
  if (m == nullptr || m->join_seq != join_seq) return rejection::not_in_room;
  if (resume_in_flight) return rejection::resume_in_progress;
  return std::vector<event_body>{peer_resumed{std::move(peer)}};
}

std::vector<member> members_before(std::vector<member> const& after, std::uint64_t from_seq,
                                   std::vector<event> const& later) {
  std::vector<member> out;
  for (auto const& m : after)
    if (m.join_seq <= from_seq) out.push_back(m);
  for (auto const& e : later) {
    auto const* left = std::get_if<peer_left>(&e.body);
    if (left == nullptr || left->join_seq == 0 || left->join_seq > from_seq) continue;
    bool known = std::any_of(out.begin(), out.end(), [&](member const& m) { return m.peer == left->peer; });
    if (!known) out.push_back(member{left->peer, left->meta_json, left->holder, left->join_seq});
  }
  std::stable_sort(out.begin(), out.end(), [](member const& a, member const& b) { return a.join_seq < b.join_seq; });
  return out;
}

decision decide_signal(room_state const& state, std::string from,
                       std::optional<std::string> to, std::string data_json) {
  if (!state.has(from)) return rejection::not_in_room;
  // A peer addresses the *other* peers of its room; itself is not one of them.
  if (to && (*to == from || !state.has(*to))) return rejection::unknown_peer;
  return std::vector<event_body>{signal_sent{std::move(from), std::move(to), std::move(data_json)}};
}

bool is_recipient(event const& e, std::string_view peer, std::uint64_t join_seq) {
  if (join_seq >= e.seq) return false;
  if (auto const* j = std::get_if<peer_joined>(&e.body)) return j->peer != peer;
  if (auto const* l = std::get_if<peer_left>(&e.body)) return l->peer != peer;
  if (std::holds_alternative<peer_resumed>(e.body)) return false;  // nobody is told
  auto const& s = std::get<signal_sent>(e.body);
  if (s.from == peer) return false;
  return !s.to || *s.to == peer;
}

std::vector<std::string> recipients(event const& e, std::vector<local_peer> const& local_peers) {
  std::vector<std::string> out;
  for (auto const& p : local_peers)
    if (is_recipient(e, p.peer, p.join_seq)) out.push_back(p.peer);
  return out;
}

}  // namespace sig::domain
