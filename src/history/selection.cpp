#include "history/selection.hpp"

#include <variant>
#include <vector>

#include "protocol/messages.hpp"

namespace sig::history {

std::optional<kinds> parse_kinds(std::string_view text, std::string* error) {
  kinds out{false, false, false, false};
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string_view word = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (word == "join") out.join = true;
    else if (word == "leave") out.leave = true;
    else if (word == "signal") out.signal = true;
    else if (word == "resume") out.resume = true;
    else {
      if (error) *error = "\"" + std::string(word) + "\" is not a kind (join, leave, signal, resume)";
      return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

namespace {

bool at_or_after(point const& p, domain::event const& e) {
  return p.what == point::kind::sequence ? e.seq >= p.seq : e.time_ms >= p.time_ms;
}

bool at_or_before(point const& p, domain::event const& e) {
  return p.what == point::kind::sequence ? e.seq <= p.seq : e.time_ms <= p.time_ms;
}

bool kind_selected(kinds const& k, domain::event const& e) {
  if (std::holds_alternative<domain::peer_joined>(e.body)) return k.join;
  if (std::holds_alternative<domain::peer_left>(e.body)) return k.leave;
  if (std::holds_alternative<domain::peer_resumed>(e.body)) return k.resume;
  return k.signal;
}

// The peer's own join or leave, or a signal it sent.
bool acted(domain::event const& e, std::string_view peer) {
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) return j->peer == peer;
  if (auto const* l = std::get_if<domain::peer_left>(&e.body)) return l->peer == peer;
  if (auto const* r = std::get_if<domain::peer_resumed>(&e.body)) return r->peer == peer;
  return std::get<domain::signal_sent>(e.body).from == peer;
}

bool own_join(domain::event const& e, domain::room_state const& before, std::string_view peer) {
  auto const* j = std::get_if<domain::peer_joined>(&e.body);
  return j != nullptr && j->peer == peer && !before.has(peer);
}

}  // namespace

bool after_since(selection const& s, domain::event const& e) { return !s.since || at_or_after(*s.since, e); }

bool past_until(selection const& s, domain::event const& e) { return s.until && !at_or_before(*s.until, e); }

bool was_sent_to(domain::event const& e, domain::room_state const& before, std::string_view peer) {
  if (own_join(e, before, peer)) return true;
  auto const* m = before.find(peer);
  return m != nullptr && domain::is_recipient(e, peer, m->join_seq);
}

bool selected(selection const& s, domain::event const& e, domain::room_state const& before) {
  if (!kind_selected(s.kind, e)) return false;
  if (!s.peer.empty()) {
    bool signal = std::holds_alternative<domain::signal_sent>(e.body);
    // As receiver: signals only; others' joins and leaves are not "of" this peer.
    if (!acted(e, s.peer) && !(signal && was_sent_to(e, before, s.peer))) return false;
  }
  if (!s.as_peer.empty() && !was_sent_to(e, before, s.as_peer)) return false;
  return true;
}

std::optional<std::string> message_sent_to(domain::event const& e, domain::room_state const& before,
                                           std::string_view room, std::string_view peer) {
  if (!was_sent_to(e, before, peer)) return std::nullopt;
  // The peer's own join: what it was answered, not what the others heard.
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body); j != nullptr && j->peer == peer) {
    std::vector<protocol::peer_entry> peers;
    peers.reserve(before.members.size());
    for (auto const& m : before.members) peers.push_back({m.peer, m.meta_json, m.instance});
    return protocol::joined_message({}, room, peer, peers, e.seq, {}, e.instance);
  }
  return protocol::event_frame(e);
}

}  // namespace sig::history
