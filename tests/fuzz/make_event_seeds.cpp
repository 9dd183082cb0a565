// Writes the seed corpus of the event_decoder fuzz target: every kind of
// event and a snapshot, encoded by the real codec, plus hostile bytes a
// stream or cache could hold. The files are committed; this program only
// remakes them (after a schema change):
//   fuzz_make_event_seeds tests/fuzz/corpus/event_decoder
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "adapters/codec/event_codec.hpp"
#include "sigstream/events/v1/events.pb.h"

using namespace sig;
namespace pb = sigstream::events::v1;

namespace {

std::filesystem::path out_dir;

void write(std::string const& name, std::string const& bytes) {
  std::ofstream out(out_dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  std::printf("%s (%zu bytes)\n", name.c_str(), bytes.size());
}

domain::event make(domain::event_body body, std::string instance = "i1") {
  return {0, 1'700'000'000'123, std::move(instance), std::move(body)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  std::filesystem::create_directories(out_dir);

  std::string const room = "demo";
  std::string const odd_room = "r\xC3\xA9sum\xC3\xA9 *.> \xF0\x9F\x8E\x89";
  write("joined", codec::encode_event(room, make(domain::peer_joined{"pA", R"({"name":"ana"})"})));
  write("joined-odd-room", codec::encode_event(odd_room, make(domain::peer_joined{"pB", "{}"})));
  write("left-leave", codec::encode_event(room, make(domain::peer_left{"pA", domain::leave_reason::leave})));
  write("left-disconnect",
        codec::encode_event(room, make(domain::peer_left{"pA", domain::leave_reason::disconnect, "i1", R"({"name":"ana"})", 3})));
  write("left-expired",
        codec::encode_event(room, make(domain::peer_left{"pC", domain::leave_reason::expired, "i9", "{}", 18446744073709551615ULL})));
  write("resumed", codec::encode_event(room, make(domain::peer_resumed{"pA"}, "i2")));
  write("signal-to", codec::encode_event(room, make(domain::signal_sent{"pA", std::string("pB"), R"({"sdp":{"type":"offer","sdp":"v=0"}})"})));
  write("signal-broadcast", codec::encode_event(room, make(domain::signal_sent{"pA", std::nullopt, "[1,2,3]"})));
  write("signal-null-data", codec::encode_event(room, make(domain::signal_sent{"pA", std::nullopt, "null"})));

  domain::room_state state;
  state.members = {{"pA", R"({"name":"ana"})", "i1", 3}, {"pB", "{}", "i2", 7}};
  write("snapshot", codec::encode_snapshot(state, 9, 12));
  write("snapshot-empty", codec::encode_snapshot(domain::room_state{}, 4, 4));

  // Hostile: what this version must refuse (or read without harm).
  write("empty", "");
  std::string whole = codec::encode_event(room, make(domain::peer_joined{"pA", R"({"name":"ana"})"}));
  write("truncated", whole.substr(0, whole.size() - 3));
  {
    pb::RoomEvent e;  // no kind at all
    e.set_room(room);
    e.set_instance("i1");
    write("no-kind", e.SerializeAsString());
  }
  {
    pb::RoomEvent e;  // a leave without a reason
    e.set_room(room);
    e.mutable_left()->set_peer("pA");
    write("left-unspecified-reason", e.SerializeAsString());
  }
  {
    pb::RoomEvent e;  // a reason from a newer version
    e.set_room(room);
    e.mutable_left()->set_peer("pA");
    e.mutable_left()->set_reason(static_cast<pb::LeaveReason>(7));
    write("left-unknown-reason", e.SerializeAsString());
  }
  {
    pb::RoomEvent e;
    e.set_room(room);
    e.mutable_joined()->set_peer("");
    write("joined-empty-peer", e.SerializeAsString());
  }
  {
    pb::RoomEvent e;
    e.set_room(room);
    e.mutable_signal()->set_to("pB");
    write("signal-empty-from", e.SerializeAsString());
  }
  // A kind from a newer version (field 14, length-delimited) and invalid
  // UTF-8 in a string field, written byte by byte.
  write("unknown-kind", std::string("\x0a\x04" "demo" "\x72\x04\x0a\x02pA", 12));
  write("bad-utf8-room", std::string("\x0a\x02\xff\xfe" "\x52\x04\x0a\x02pA", 10));
  {
    pb::RoomSnapshot s;  // a member twice
    s.set_seq(9);
    for (int i = 0; i < 2; ++i) {
      auto* m = s.add_members();
      m->set_peer("pA");
      m->set_join_seq(3);
    }
    write("snapshot-duplicate", s.SerializeAsString());
  }
  {
    pb::RoomSnapshot s;  // a join after the snapshot's own seq
    s.set_seq(9);
    auto* m = s.add_members();
    m->set_peer("pA");
    m->set_join_seq(10);
    write("snapshot-future-join", s.SerializeAsString());
  }
  return 0;
}
