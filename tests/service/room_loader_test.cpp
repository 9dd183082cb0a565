#include <catch2/catch.hpp>

#include "adapters/codec/event_codec.hpp"
#include "ports/presence_store.hpp"
#include "service/room/room_loader.hpp"

using sig::service::begin_load;
using sig::service::finish_load;
using sig::service::needs_reads;

namespace {

// A room's stream as the loader reads it: the head of its events subject,
// which a test moves between the first read and the second.
struct scripted_reads final : sig::service::event_reads {
  std::vector<std::uint64_t> heads;  // answers to last_seq, in turn (the last one repeats)
  std::size_t head_reads = 0;
  std::size_t event_reads = 0;
  std::optional<std::uint64_t> last_seq(std::string const&) override {
    auto i = std::min(head_reads++, heads.size() - 1);
    return heads[i];
  }
  std::optional<std::vector<sig::service::stored_message>> read(std::string const&, std::uint64_t from,
                                                                std::uint64_t to) override {
    ++event_reads;
    std::vector<sig::service::stored_message> out;
    for (auto seq = from; seq <= to; ++seq) out.push_back({seq, ""});
    return out;
  }
  std::optional<sig::service::stored_message> last_message(std::string const&) override {
    return sig::service::stored_message{};
  }
  sig::service::stored_format const& format() const override { return protobuf; }
  sig::codec::protobuf_format protobuf;
};

sig::codec::protobuf_format const protobuf;

sig::service::cached_room cached_at(std::uint64_t seq) {
  sig::domain::room_state state;
  state.last_seq = seq;
  return {seq, sig::codec::encode_snapshot(state, seq)};
}

}  // namespace

TEST_CASE("room_loader: a snapshot at the head needs no read of the stream", "[room_loader]") {
  auto loaded = begin_load(protobuf, cached_at(7), 7);
  CHECK(loaded.from_cache);
  CHECK_FALSE(loaded.cache_ahead);
  CHECK_FALSE(loaded.cache_needs_repair);
  CHECK_FALSE(needs_reads(loaded));
}

TEST_CASE("room_loader: a snapshot written after the head was read is not taken for a reset stream",
          "[room_loader]") {
  // The head (3) and Redis (5) were read side by side while another
  // instance appended 4 and 5: the stream has them by the second look.
  scripted_reads reads;
  reads.heads = {5};
  auto begun = begin_load(protobuf, cached_at(5), 3);
  REQUIRE(begun.cache_ahead);
  auto loaded = finish_load(reads, begun, sig::domain::subjects_for_token("t", "room"));
  REQUIRE(loaded);
  CHECK_FALSE(loaded->cache_ahead);
  CHECK_FALSE(loaded->cache_needs_repair);  // Redis is newer than this load: left alone
  CHECK(loaded->head == 3);                 // 4 and 5 come on the live feed
  REQUIRE(loaded->events.size() == 3);
  CHECK(loaded->events.back().seq == 3);
}

TEST_CASE("room_loader: a snapshot a new room's stream never reached is also rechecked", "[room_loader]") {
  scripted_reads reads;
  reads.heads = {2};
  auto begun = begin_load(protobuf, cached_at(2), 0);
  REQUIRE(begun.cache_ahead);
  CHECK(needs_reads(begun));  // looked at again on a worker, though the room has no event
  auto loaded = finish_load(reads, begun, sig::domain::subjects_for_token("t", "room"));
  REQUIRE(loaded);
  CHECK_FALSE(loaded->cache_ahead);
  CHECK(loaded->events.empty());
  CHECK(reads.event_reads == 0);
}

TEST_CASE("room_loader: a snapshot still ahead of the stream on the second look is from a reset stream",
          "[room_loader]") {
  scripted_reads reads;
  reads.heads = {3};
  auto loaded = finish_load(reads, begin_load(protobuf, cached_at(40), 3), sig::domain::subjects_for_token("t", "room"));
  REQUIRE(loaded);
  CHECK(loaded->cache_ahead);
  CHECK_FALSE(loaded->from_cache);
  REQUIRE(loaded->events.size() == 3);
}
