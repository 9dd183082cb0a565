#include "adapters/codec/event_codec.hpp"

#include "sigstream/events/v1/events.pb.h"

namespace sig::codec {

namespace pb = sigstream::events::v1;

namespace {

pb::LeaveReason to_proto(domain::leave_reason reason) {
  switch (reason) {
    case domain::leave_reason::leave: return pb::LEAVE_REASON_LEAVE;
    case domain::leave_reason::disconnect: return pb::LEAVE_REASON_DISCONNECT;
    case domain::leave_reason::expired: return pb::LEAVE_REASON_EXPIRED;
  }
  return pb::LEAVE_REASON_UNSPECIFIED;
}

std::optional<domain::leave_reason> from_proto(pb::LeaveReason reason) {
  switch (reason) {
    case pb::LEAVE_REASON_LEAVE: return domain::leave_reason::leave;
    case pb::LEAVE_REASON_DISCONNECT: return domain::leave_reason::disconnect;
    case pb::LEAVE_REASON_EXPIRED: return domain::leave_reason::expired;
    default: return std::nullopt;
  }
}

}  // namespace

std::string encode_event(std::string_view room, domain::event const& e) {
  pb::RoomEvent out;
  out.set_room(std::string(room));
  out.set_time_unix_ms(e.time_ms);
  out.set_instance(e.instance);
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) {
    auto* joined = out.mutable_joined();
    joined->set_peer(j->peer);
    joined->set_meta_json(j->meta_json);
  } else if (auto const* l = std::get_if<domain::peer_left>(&e.body)) {
    auto* left = out.mutable_left();
    left->set_peer(l->peer);
    left->set_reason(to_proto(l->reason));
    left->set_holder(l->holder);
    left->set_meta_json(l->meta_json);
    left->set_join_seq(l->join_seq);
  } else if (auto const* r = std::get_if<domain::peer_resumed>(&e.body)) {
    out.mutable_resumed()->set_peer(r->peer);
  } else if (auto const* s = std::get_if<domain::signal_sent>(&e.body)) {
    auto* signal = out.mutable_signal();
    signal->set_from(s->from);
    if (s->to) signal->set_to(*s->to);
    signal->set_data_json(s->data_json);
  }
  return out.SerializeAsString();
}

std::optional<decoded_event> decode_event(std::string_view bytes, std::uint64_t seq) {
  pb::RoomEvent in;
  if (!in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  decoded_event out;
  out.room = in.room();
  out.event.seq = seq;
  out.event.time_ms = in.time_unix_ms();
  out.event.instance = in.instance();
  switch (in.kind_case()) {
    case pb::RoomEvent::kJoined:
      if (in.joined().peer().empty()) return std::nullopt;
      out.event.body = domain::peer_joined{in.joined().peer(), in.joined().meta_json()};
      break;
    case pb::RoomEvent::kLeft: {
      auto reason = from_proto(in.left().reason());
      if (in.left().peer().empty() || !reason) return std::nullopt;
      auto const& l = in.left();
      out.event.body = domain::peer_left{l.peer(), *reason, l.holder(), l.meta_json(), l.join_seq()};
      break;
    }
    case pb::RoomEvent::kResumed:
      if (in.resumed().peer().empty()) return std::nullopt;
      out.event.body = domain::peer_resumed{in.resumed().peer()};
      break;
    case pb::RoomEvent::kSignal: {
      auto const& s = in.signal();
      if (s.from().empty()) return std::nullopt;
      std::optional<std::string> to;
      if (!s.to().empty()) to = s.to();
      out.event.body = domain::signal_sent{s.from(), std::move(to), s.data_json()};
      break;
    }
    default:
      return std::nullopt;
  }
  return out;
}

void silence_protobuf_log() { google::protobuf::SetLogHandler(nullptr); }

std::string encode_snapshot(domain::room_state const& state, std::uint64_t seq, std::uint64_t room_events) {
  pb::RoomSnapshot out;
  out.set_seq(seq);
  out.set_events(room_events);
  for (auto const& m : state.members) {
    auto* member = out.add_members();
    member->set_peer(m.peer);
    member->set_meta_json(m.meta_json);
    member->set_instance(m.instance);
    member->set_join_seq(m.join_seq);
  }
  return out.SerializeAsString();
}

std::optional<domain::room_state> decode_snapshot(std::string_view bytes, std::uint64_t* room_events) {
  pb::RoomSnapshot in;
  if (!in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  if (room_events != nullptr) *room_events = in.events();
  domain::room_state state;
  state.last_seq = in.seq();
  state.last_membership_seq = in.seq();
  for (auto const& m : in.members()) {
    if (m.peer().empty() || m.join_seq() > in.seq() || state.has(m.peer())) return std::nullopt;
    state.members.push_back(domain::member{m.peer(), m.meta_json(), m.instance(), m.join_seq()});
  }
  return state;
}

}  // namespace sig::codec
