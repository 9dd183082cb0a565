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

namespace {

// Protobuf's wire format, as far as a RoomEvent needs it.
struct wire_reader {
  std::string_view bytes;
  std::size_t at = 0;

  bool varint(std::uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64 && at < bytes.size(); shift += 7) {
      auto b = static_cast<unsigned char>(bytes[at++]);
      out |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool field(std::uint32_t& number, std::uint32_t& wire_type) {
    std::uint64_t key = 0;
    if (!varint(key) || key == 0 || (key >> 3) > 536870911) return false;
    number = static_cast<std::uint32_t>(key >> 3);
    wire_type = static_cast<std::uint32_t>(key & 7);
    return true;
  }
  bool delimited(std::string_view& out) {
    std::uint64_t length = 0;
    if (!varint(length) || length > bytes.size() - at) return false;
    out = bytes.substr(at, static_cast<std::size_t>(length));
    at += static_cast<std::size_t>(length);
    return true;
  }
  bool skip(std::uint32_t wire_type) {
    std::uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire_type) {
      case 0: return varint(ignored);
      case 1: if (bytes.size() - at < 8) return false; at += 8; return true;
      case 2: return delimited(ignored_bytes);
      case 5: if (bytes.size() - at < 4) return false; at += 4; return true;
      default: return false;
    }
  }
};

}  // namespace

std::optional<signal_outline> outline_signal(std::string_view bytes) {
  signal_outline out;
  std::string_view signal;
  bool is_signal = false;
  wire_reader r{bytes};
  while (r.at < bytes.size()) {
    std::uint32_t number = 0, wire_type = 0;
    if (!r.field(number, wire_type)) return std::nullopt;
    if (number == 1 && wire_type == 2) {
      if (!r.delimited(out.room)) return std::nullopt;
    } else if (number == 2 && wire_type == 0) {
      std::uint64_t t = 0;
      if (!r.varint(t)) return std::nullopt;
      out.time_ms = static_cast<std::int64_t>(t);
    } else if (number == 12 && wire_type == 2) {
      if (!r.delimited(signal)) return std::nullopt;
      is_signal = true;
    } else if (number >= 10 && number <= 19) {
      return std::nullopt;  // another kind of event (or a kind this version does not know)
    } else if (!r.skip(wire_type)) {
      return std::nullopt;
    }
  }
  if (!is_signal) return std::nullopt;
  wire_reader s{signal};
  while (s.at < signal.size()) {
    std::uint32_t number = 0, wire_type = 0;
    if (!s.field(number, wire_type)) return std::nullopt;
    if (number == 2 && wire_type == 2) {
      if (!s.delimited(out.to)) return std::nullopt;
    } else if (!s.skip(wire_type)) {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace sig::codec
