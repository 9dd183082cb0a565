#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "service/room/ordered_feed.hpp"

using sig::service::live_message;
using sig::service::ordered_feed;

namespace {

// The live copy of stored event `seq`, whose predecessor on the room's subject was `previous`.
live_message copy(std::uint64_t seq, std::uint64_t previous) { return live_message{seq, previous, "e" + std::to_string(seq)}; }

std::vector<std::uint64_t> seqs(std::vector<live_message> const& messages) {
  std::vector<std::uint64_t> out;
  for (auto const& m : messages) out.push_back(m.seq);
  return out;
}

}  // namespace

TEST_CASE("ordered feed: in-order messages pass straight through", "[feed]") {
  ordered_feed feed;
  CHECK(feed.resume(0).empty());
  CHECK(seqs(feed.arrive(copy(1, 0))) == std::vector<std::uint64_t>{1});
  CHECK(seqs(feed.arrive(copy(4, 1))) == std::vector<std::uint64_t>{4});  // other rooms' seqs between: no gap
  CHECK(feed.mark() == 4);
  CHECK_FALSE(feed.has_hole());
}

TEST_CASE("ordered feed: a message overtaken by a later one is waited for, then both go in order", "[feed]") {
  ordered_feed feed;
  feed.resume(10);
  CHECK(feed.arrive(copy(12, 11)).empty());  // 11 is late
  CHECK(feed.has_hole());
  CHECK(feed.mark() == 10);
  CHECK(seqs(feed.arrive(copy(11, 10))) == std::vector<std::uint64_t>{11, 12});
  CHECK_FALSE(feed.has_hole());
  CHECK(feed.mark() == 12);
}

TEST_CASE("ordered feed: a lost message leaves a hole until a catch-up applies what was missing", "[feed]") {
  ordered_feed feed;
  feed.resume(5);
  CHECK(feed.arrive(copy(7, 6)).empty());
  CHECK(feed.arrive(copy(8, 7)).empty());
  CHECK(feed.held() == 2);
  // The room gives up waiting and reads from the stream after its mark.
  feed.pause();
  CHECK(feed.arrive(copy(9, 8)).empty());  // arrivals are only held meanwhile
  for (std::uint64_t seq : {6, 7}) feed.applied(seq);
  // 7 came from the stream as well as from the feed: applied once.
  CHECK(seqs(feed.resume(feed.mark())) == std::vector<std::uint64_t>{8, 9});
  CHECK_FALSE(feed.has_hole());
  CHECK(feed.mark() == 9);
}

TEST_CASE("ordered feed: what a rebuild already read is dropped when it arrives live", "[feed]") {
  ordered_feed feed;  // paused until the rebuild is done
  CHECK(feed.arrive(copy(3, 2)).empty());
  CHECK(feed.arrive(copy(4, 3)).empty());
  CHECK(feed.arrive(copy(5, 4)).empty());
  // The rebuild read the room up to 4.
  CHECK(seqs(feed.resume(4)) == std::vector<std::uint64_t>{5});
  CHECK(feed.arrive(copy(4, 3)).empty());  // a repeat of something applied
  CHECK_FALSE(feed.has_hole());
}

TEST_CASE("ordered feed: any arrival order of a room's messages is put back in stream order", "[feed]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    // A room's events at increasing but not consecutive stream seqs.
    std::vector<live_message> room;
    std::uint64_t seq = 0, previous = 0;
    for (int i = 0; i < 40; ++i) {
      seq += 1 + rng() % 3;
      room.push_back(copy(seq, previous));
      previous = seq;
    }
    auto arrival = room;
    // Local reordering, as the republishing does: swap neighbours now and then.
    for (std::size_t i = 0; i + 1 < arrival.size(); ++i)
      if (rng() % 4 == 0) std::swap(arrival[i], arrival[i + 1]);
    ordered_feed feed;
    feed.resume(0);
    std::vector<std::uint64_t> applied;
    for (auto& m : arrival)
      for (auto& out : feed.arrive(m)) applied.push_back(out.seq);
    CHECK(applied == seqs(room));
    CHECK_FALSE(feed.has_hole());
  }
}

TEST_CASE("ordered feed: it holds at most max_held, dropping the oldest", "[feed]") {
  ordered_feed feed(3);
  feed.resume(1);
  for (std::uint64_t seq = 10; seq < 15; ++seq) CHECK(feed.arrive(copy(seq, seq - 1)).empty());
  CHECK(feed.held() == 3);
  CHECK(feed.dropped() == 2);
}

TEST_CASE("ordered feed: the held messages tell up to where a catch-up must read", "[feed]") {
  ordered_feed feed;
  feed.resume(5);
  CHECK(feed.awaited() == 0);  // nothing held
  CHECK(feed.arrive(copy(8, 7)).empty());   // 6 and 7 missing
  CHECK(feed.awaited() == 7);
  CHECK(feed.arrive(copy(12, 10)).empty());  // and 9 (or 10: whatever the room had) before 12
  CHECK(feed.arrive(copy(10, 8)).empty());
  CHECK(feed.awaited() == 10);  // 10 is held, yet a read up to it covers every hole: 6, 7 and 9
  // Only what is above the mark counts.
  for (std::uint64_t seq : {6, 7}) feed.applied(seq);
  feed.applied(10);
  CHECK(feed.awaited() == 0);
  CHECK(seqs(feed.resume(feed.mark())) == std::vector<std::uint64_t>{12});
}
