#include <catch2/catch.hpp>

#include <map>

#include "adapters/codec/event_codec.hpp"
#include "service/room/stored_event.hpp"

using sig::service::find_stored_event;

namespace {

// A room subject holding given events at given sequences; reads can be made to fail.
struct room_stream final : sig::service::event_reads {
  std::map<std::uint64_t, std::string> events;
  bool fail_reads = false;
  std::optional<std::uint64_t> last_seq(std::string const&) override {
    if (fail_reads) return std::nullopt;
    return events.empty() ? 0 : events.rbegin()->first;
  }
  std::optional<std::vector<sig::service::stored_message>> read(std::string const&, std::uint64_t from,
                                                                std::uint64_t to) override {
    if (fail_reads) return std::nullopt;
    std::vector<sig::service::stored_message> out;
    for (auto it = events.lower_bound(from); it != events.end() && it->first <= to; ++it)
      out.push_back({it->first, it->second});
    return out;
  }
  std::optional<sig::service::stored_message> last_message(std::string const&) override { return std::nullopt; }
  sig::service::stored_format const& format() const override { return protobuf; }
  sig::codec::protobuf_format protobuf;
  void put(std::uint64_t seq, std::string const& room, sig::domain::event_body body) {
    events[seq] = sig::codec::encode_event(room, sig::domain::event{seq, 0, "i1", std::move(body)});
  }
};

sig::domain::signal_sent hello{"pa", std::string("pb"), R"({"n":1})"};

}  // namespace

TEST_CASE("stored_event: found where the duplicate answer said, or near it", "[stored_event]") {
  room_stream s;
  s.put(187, "r", sig::domain::signal_sent{"pa", std::string("pb"), R"({"n":0})"});
  s.put(190, "r", hello);
  s.put(191, "other room", hello);
  auto at = find_stored_event(s, "subj", "r", hello, 187);
  CHECK_FALSE(at.read_failed);
  REQUIRE(at.seq);
  CHECK(*at.seq == 190);
  CHECK(*find_stored_event(s, "subj", "r", hello, 190).seq == 190);
}

TEST_CASE("stored_event: stored nowhere, or the stream unreadable, or too far to read, is said so", "[stored_event]") {
  room_stream s;
  s.put(5, "r", sig::domain::signal_sent{"pa", std::string("pb"), R"({"n":2})"});
  auto nowhere = find_stored_event(s, "subj", "r", hello, 5);
  CHECK_FALSE(nowhere.read_failed);
  CHECK_FALSE(nowhere.seq);
  // A stream with nothing at all: stored nowhere, not a failure.
  room_stream empty;
  auto none = find_stored_event(empty, "subj", "r", hello, 3);
  CHECK_FALSE(none.read_failed);
  CHECK_FALSE(none.seq);
  s.fail_reads = true;
  CHECK(find_stored_event(s, "subj", "r", hello, 5).read_failed);
  // More events past the claim than it reads: unknown, not absent.
  room_stream long_room;
  for (std::uint64_t seq = 1; seq <= 50; ++seq) long_room.put(seq, "r", sig::domain::signal_sent{"px", std::nullopt, "1"});
  auto capped = find_stored_event(long_room, "subj", "r", hello, 1, 10);
  CHECK(capped.read_failed);
  CHECK_FALSE(capped.seq);
}
