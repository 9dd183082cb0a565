#include <catch2/catch.hpp>

#include "adapters/codec/event_codec.hpp"
#include "memory_event_store.hpp"
#include "ports/presence_store.hpp"
#include "service/room/room_loader.hpp"

using sig::service::begin_load;
using sig::service::finish_load;
using sig::service::needs_reads;
using sig::service::finish_load_async;
using sig::service::read_events_async;

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

namespace {

// Continuations run at once: the memory store answers at once too.
sig::service::hop_fn const at_once = [](std::function<void()> next) { next(); };

void append(sig::test::memory_event_store& store, std::string const& subject, std::string const& payload) {
  store.append(subject, payload, {}, sig::service::append_kind::membership, [](sig::service::append_result r) {
    REQUIRE(r.ok);
  });
}

std::optional<std::vector<sig::service::stored_message>> read_async(sig::test::memory_event_store& store,
                                                                    std::uint64_t from, std::uint64_t to,
                                                                    std::size_t most) {
  std::optional<std::vector<sig::service::stored_message>> out;
  bool answered = false;
  read_events_async(store, "r", from, to, most, at_once, [&](auto read) {
    answered = true;
    out = std::move(read);
  });
  REQUIRE(answered);
  return out;
}

std::vector<std::uint64_t> seqs(std::vector<sig::service::stored_message> const& messages) {
  std::vector<std::uint64_t> out;
  for (auto const& m : messages) out.push_back(m.seq);
  return out;
}

}  // namespace

TEST_CASE("room_loader: a short read takes the subject's messages up to the head, one at a time",
          "[room_loader]") {
  sig::test::memory_event_store store;
  for (int k = 0; k < 4; ++k) {
    append(store, "r", "r" + std::to_string(k));      // seqs 1, 3, 5, 7
    append(store, "other", "o" + std::to_string(k));  // seqs 2, 4, 6, 8
  }
  append(store, "r", "after the head");  // seq 9: the live feed brings it
  auto read = read_async(store, 2, 7, 16);
  REQUIRE(read);
  CHECK(seqs(*read) == std::vector<std::uint64_t>{3, 5, 7});
  CHECK(read->front().payload == "r1");
  CHECK(store.short_reads() == 3);  // one per message, none past the head
  // Nothing at all to read, and a subject with nothing from there on.
  auto nothing = read_async(store, 8, 7, 16);
  REQUIRE(nothing);
  CHECK(nothing->empty());
  auto none_from_there = read_async(store, 10, 12, 16);
  REQUIRE(none_from_there);
  CHECK(none_from_there->empty());
}

TEST_CASE("room_loader: a short read gives up past its bound, on an error, and on a store that cannot",
          "[room_loader]") {
  sig::test::memory_event_store store;
  for (int k = 0; k < 5; ++k) append(store, "r", "e");
  CHECK_FALSE(read_async(store, 1, 5, 4));  // 5 due, 4 allowed: the blocking read then
  REQUIRE(read_async(store, 1, 5, 5));
  store.fail_short_reads = 1;
  CHECK_FALSE(read_async(store, 1, 5, 16));
  store.blocking_reads = true;
  auto asked = store.short_reads();
  CHECK_FALSE(read_async(store, 1, 5, 16));
  CHECK(store.short_reads() == asked);
}

TEST_CASE("room_loader: a load without a worker starts from the stream's snapshot when it is newer",
          "[room_loader]") {
  sig::test::memory_event_store store;
  auto subjects = sig::domain::subjects_for_token("t", "room");
  for (int k = 0; k < 3; ++k) append(store, subjects.events, "e");  // 1..3
  sig::domain::room_state at3;
  at3.last_seq = 3;
  append(store, subjects.snapshot, sig::codec::encode_snapshot(at3, 3, 3));  // 4
  append(store, subjects.events, "e");                                      // 5
  std::optional<sig::service::loaded_room> loaded;
  bool answered = false;
  // Redis is behind, at 1.
  finish_load_async(store, begin_load(protobuf, cached_at(1), 5), subjects, 16, at_once, [&](auto read) {
    answered = true;
    loaded = std::move(read);
  });
  REQUIRE(answered);
  REQUIRE(loaded);
  CHECK(loaded->from_stream_snapshot);
  CHECK(loaded->room_events == 3);
  CHECK(seqs(loaded->events) == std::vector<std::uint64_t>{5});
  // A Redis snapshot ahead of the head is looked at again the blocking way.
  answered = false;
  finish_load_async(store, begin_load(protobuf, cached_at(40), 5), subjects, 16, at_once, [&](auto read) {
    answered = true;
    loaded = std::move(read);
  });
  REQUIRE(answered);
  CHECK_FALSE(loaded);
}
