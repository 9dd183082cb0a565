// The room over an in-memory event store: what each connection is sent,
// with the I/O loop run by the test. No socket, no NATS.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <variant>
#include <optional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "protocol/json.hpp"
#include "room_instance.hpp"

namespace {

using sig::test::field;

using namespace std::chrono_literals;
namespace asio = boost::asio;
using sig::service::frame_ptr;

// A connection as a room sees it: the frames it was sent, in order.
class recorded_peer final : public sig::service::peer_endpoint {
 public:
  void deliver(frame_ptr frame) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(*frame);
  }
  void join_settled(bool joined, frame_ptr frame) override {
    std::lock_guard lock(mutex_);
    if (joined) joined_ = true;
    frames_.push_back(*frame);
  }
  void evicted(std::string const& why) override {
    std::lock_guard lock(mutex_);
    evicted_ = why;
  }
  std::vector<std::string> frames() const {
    std::lock_guard lock(mutex_);
    return frames_;
  }
  // Frames whose "type" is `type`.
  std::vector<std::string> of_type(std::string const& type) const {
    std::vector<std::string> out;
    for (auto const& f : frames())
      if (f.find("\"type\":\"" + type + "\"") != std::string::npos) out.push_back(f);
    return out;
  }
  bool joined() const {
    std::lock_guard lock(mutex_);
    return joined_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> frames_;
  bool joined_ = false;
  std::string evicted_;
};

using instance = sig::test::room_instance;
using sig::test::run_until;

// Peers pa and pb, joined to room "r" of `in`, one after the other.
std::pair<std::shared_ptr<recorded_peer>, std::shared_ptr<recorded_peer>> two_peers(asio::io_context& io, instance& in) {
  auto a = std::make_shared<recorded_peer>(), b = std::make_shared<recorded_peer>();
  in.room("r")->join(a, "pa", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return a->joined(); }));
  in.room("r")->join(b, "pb", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return b->joined(); }));
  return {a, b};
}

std::string peer_id(recorded_peer const& p) {
  auto joined = p.of_type("joined");
  return joined.empty() ? std::string() : field(joined.front(), "peer");
}

// Room "r" of one instance with peers pa and pb joined: where most tests start.
struct two_peer_room {
  sig::test::memory_event_store store;
  asio::io_context io;
  instance i1{io, store, "i1"};
  std::shared_ptr<recorded_peer> a, b;
  two_peer_room() { std::tie(a, b) = two_peers(io, i1); }
};

}  // namespace

TEST_CASE("room: the second peer's joined lists the first, the first hears peer-joined", "[room]") {
  sig::test::memory_event_store store;
  asio::io_context io;
  instance i1(io, store, "i1");
  auto a = std::make_shared<recorded_peer>(), b = std::make_shared<recorded_peer>();
  i1.room("r")->join(a, "pa", "{}", std::string("1"));
  REQUIRE(run_until(io, [&] { return a->joined(); }));
  i1.room("r")->join(b, "pb", "{}", std::string("1"));
  REQUIRE(run_until(io, [&] { return b->joined() && !a->of_type("peer-joined").empty(); }));
  auto joined_b = b->of_type("joined").front();
  CHECK(joined_b.find("\"peer\":\"pa\"") != std::string::npos);
  CHECK(field(a->of_type("peer-joined").front(), "peer") == "pb");
  CHECK(store.events().size() == 2);
}

TEST_CASE_METHOD(two_peer_room, "room: a signal reaches its target once, and its sender gets the ack with the stored seq", "[room]") {
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"sdp":"x"})", std::string("7"));
  REQUIRE(run_until(io, [&] { return !a->of_type("signal").empty() && !b->of_type("ack").empty(); }));
  CHECK(a->of_type("signal").size() == 1);
  CHECK(b->of_type("signal").empty());
  CHECK(b->of_type("ack").front().find("\"seq\":3") != std::string::npos);
}

TEST_CASE("room: across two instances, peers that join at once each learn of the other exactly once", "[room]") {
  sig::test::memory_event_store store;
  asio::io_context io;
  // The head read with the follow (no worker), and the blocking way.
  store.blocking_reads = GENERATE(false, true);
  // Each instance's first join waits for the rebuild, or goes out with it.
  bool early = GENERATE(false, true);
  instance i1(io, store, "i1"), i2(io, store, "i2");
  i1.ctx.first_join_before_rebuild = early;
  i2.ctx.first_join_before_rebuild = early;
  std::vector<std::shared_ptr<recorded_peer>> peers;
  for (int k = 0; k < 6; ++k) {
    peers.push_back(std::make_shared<recorded_peer>());
    (k % 2 == 0 ? i1 : i2).room("r")->join(peers.back(), "p" + std::to_string(k), "{}", std::nullopt);
  }
  REQUIRE(run_until(io, [&] {
    for (auto& p : peers)
      if (!p->joined()) return false;
    // Everyone knows the five others: from `joined`, or from a peer-joined.
    for (auto& p : peers) {
      auto joined = p->of_type("joined").front();
      std::size_t listed = 0;
      for (auto at = joined.find("\"meta\""); at != std::string::npos; at = joined.find("\"meta\"", at + 1)) ++listed;
      if (listed + p->of_type("peer-joined").size() < 5) return false;
    }
    return true;
  }));
  for (auto& p : peers) {
    std::vector<std::string> known;
    auto joined = p->of_type("joined").front();
    for (int k = 0; k < 6; ++k)
      if (joined.find("\"peer\":\"p" + std::to_string(k) + "\",\"meta\"") != std::string::npos) known.push_back("p" + std::to_string(k));
    for (auto const& f : p->of_type("peer-joined")) known.push_back(field(f, "peer"));
    std::sort(known.begin(), known.end());
    std::vector<std::string> others;
    for (int k = 0; k < 6; ++k)
      if ("p" + std::to_string(k) != peer_id(*p)) others.push_back("p" + std::to_string(k));
    CHECK(known == others);
  }
  CHECK(i1.counters.joins_before_rebuild.load() + i2.counters.joins_before_rebuild.load() == (early ? 2u : 0u));
}

TEST_CASE("room: a room with history is rebuilt on another instance from its events", "[room]") {
  sig::test::memory_event_store store;
  asio::io_context io;
  store.blocking_reads = GENERATE(false, true);
  instance i1(io, store, "i1"), i2(io, store, "i2");
  auto [a, b] = two_peers(io, i1);
  i1.room("r")->leave(b, "pb", sig::domain::leave_reason::leave, std::string("7"));
  REQUIRE(run_until(io, [&] { return !a->of_type("peer-left").empty(); }));
  auto c = std::make_shared<recorded_peer>();
  i2.room("r")->join(c, "pc", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return c->joined() && !a->of_type("peer-joined").empty(); }));
  auto joined = c->of_type("joined").front();
  CHECK(joined.find("\"peer\":\"pa\"") != std::string::npos);
  CHECK(joined.find("\"peer\":\"pb\"") == std::string::npos);
  CHECK(i2.counters.room_syncs_by_replay.load() == 1);
  CHECK(i2.counters.replayed_events.load() == 3);  // pa, pb joined; pb left
  // Three events: read one at a time on the strand, unless the store cannot.
  CHECK(i2.counters.short_reads.load() == (store.blocking_reads ? 0 : 1));
}

TEST_CASE("room: a room with more history than a short read takes, or whose short read fails, is rebuilt on a worker",
          "[room]") {
  sig::test::memory_event_store store;
  asio::io_context io;
  bool long_history = GENERATE(true, false);
  instance i1(io, store, "i1"), i2(io, store, "i2");
  auto [a, b] = two_peers(io, i1);
  int signals = long_history ? 30 : 1;
  for (int n = 0; n < signals; ++n) i1.room("r")->signal(b, "pb", std::string("pa"), std::to_string(n), std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == static_cast<std::size_t>(signals); }));
  if (!long_history) store.fail_short_reads = 1;
  auto c = std::make_shared<recorded_peer>();
  i2.room("r")->join(c, "pc", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return c->joined() && a->of_type("peer-joined").size() == 2; }));
  auto joined = c->of_type("joined").front();
  CHECK(joined.find("\"peer\":\"pa\"") != std::string::npos);
  CHECK(joined.find("\"peer\":\"pb\"") != std::string::npos);
  CHECK(i2.counters.short_reads.load() == 0);
  CHECK(i2.counters.replayed_events.load() == static_cast<std::uint64_t>(2 + signals));
  CHECK(store.short_reads() > 0);  // tried first
}

TEST_CASE_METHOD(two_peer_room, "room: live copies that arrive swapped are delivered in stream order", "[room]") {
  store.swap_every = 3;
  for (int n = 0; n < 20; ++n) i1.room("r")->signal(b, "pb", std::string("pa"), std::to_string(n), std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == 20; }));
  auto signals = a->of_type("signal");
  for (int n = 0; n < 20; ++n) CHECK(signals[n].find("\"data\":" + std::to_string(n) + ",") != std::string::npos);
  CHECK(i1.counters.catch_ups == 0);
}

TEST_CASE_METHOD(two_peer_room, "room: a dropped live copy is noticed and read back from the stream", "[room]") {
  // Read one at a time on the strand; on a worker when the short read
  // fails, and where the store cannot read that way.
  int way = GENERATE(0, 1, 2);
  store.fail_short_reads = way == 1 ? 1000 : 0;
  store.blocking_reads = way == 2;
  store.drop_every = 4;
  for (int n = 0; n < 10; ++n) i1.room("r")->signal(b, "pb", std::string("pa"), std::to_string(n), std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == 10; }));
  auto signals = a->of_type("signal");
  for (int n = 0; n < 10; ++n) CHECK(signals[n].find("\"data\":" + std::to_string(n) + ",") != std::string::npos);
  CHECK(i1.counters.catch_ups >= 1);
  if (way == 0) CHECK(i1.counters.short_reads >= 1);
  else CHECK(i1.counters.short_reads == 0);
}

TEST_CASE_METHOD(two_peer_room, "room: a missing event the stream no longer holds does not hold the room up", "[room]") {
  // The live copy of the next stored event (the first signal) is lost, and
  // the stream's limits remove the event itself before the room reads it.
  store.drop_every = store.events().size() + 1;
  i1.room("r")->signal(b, "pb", std::string("pa"), "1", std::nullopt);
  REQUIRE(run_until(io, [&] { return store.events().size() == 3; }));
  store.erase(store.events().back().seq);
  store.drop_every = 0;
  i1.room("r")->signal(b, "pb", std::string("pa"), "2", std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == 1; }));
  CHECK(a->of_type("signal").front().find("\"data\":2,") != std::string::npos);
  CHECK(i1.counters.catch_ups == 1);
  // And the room goes on.
  i1.room("r")->signal(b, "pb", std::string("pa"), "3", std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == 2; }));
  CHECK(i1.counters.catch_ups == 1);
}

TEST_CASE_METHOD(two_peer_room, "room: an append refused for load answers unavailable at once and stores nothing", "[room]") {
  store.overloaded = true;
  auto appends_before = store.appends();
  i1.room("r")->signal(b, "pb", std::string("pa"), "1", std::string("9"));
  REQUIRE(run_until(io, [&] { return !b->of_type("error").empty(); }));
  CHECK(field(b->of_type("error").front(), "code") == "unavailable");
  CHECK(store.appends() == appends_before + 1);  // tried once, never again
  CHECK(store.events().size() == 2);
  CHECK(i1.counters.appends_refused_for_load == 1);
  // A leave is a record of membership: never refused for load.
  i1.room("r")->leave(b, "pb", sig::domain::leave_reason::leave, std::string("10"));
  REQUIRE(run_until(io, [&] { return !a->of_type("peer-left").empty(); }));
}

TEST_CASE_METHOD(two_peer_room, "room: a leave that fails is retried with backoff until stored, and the room waits for it", "[room]") {
  store.fail_next = 4;  // more than the 3 attempts before the client is answered
  i1.room("r")->leave(b, "pb", sig::domain::leave_reason::leave, std::string("5"));
  REQUIRE(run_until(io, [&] { return !b->of_type("error").empty(); }));
  CHECK(field(b->of_type("error").front(), "code") == "unavailable");
  // Kept trying in the background: the others hear of the leave once it is stored.
  REQUIRE(run_until(io, [&] { return !a->of_type("peer-left").empty(); }));
  auto events = store.events();
  CHECK(std::count_if(events.begin(), events.end(), [](auto const& e) { return e.seq > 2; }) == 1);
}

TEST_CASE_METHOD(two_peer_room, "room: a duplicate answered where the signal is not stored is stored again, once", "[room]") {
  // NATS says "duplicate, at the head" for a signal it never stored.
  store.phantom_duplicate_next = 1;
  auto stored_before = store.events().size();
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":7})", std::string("70"));
  REQUIRE(run_until(io, [&] { return !b->of_type("ack").empty() && a->of_type("signal").size() == 1; }));
  CHECK(store.events().size() == stored_before + 1);
  CHECK(b->of_type("ack").front().find(fmt::format("\"seq\":{}", store.events().back().seq)) != std::string::npos);
  CHECK(i1.counters.phantom_duplicates == 1);
  CHECK(a->of_type("signal").front().find(R"("data":{"n":7})") != std::string::npos);
}

TEST_CASE_METHOD(two_peer_room, "room: a leave answered as a duplicate where it is not stored is stored again, once", "[room]") {
  // The check is the append's, not the signal's: a record of membership
  // NATS claims and never stored would leave a ghost.
  store.phantom_duplicate_next = 1;
  auto stored_before = store.events().size();
  i1.room("r")->leave(b, "pb", sig::domain::leave_reason::leave, std::string("11"));
  REQUIRE(run_until(io, [&] { return !a->of_type("peer-left").empty() && !b->of_type("ack").empty(); }));
  CHECK(store.events().size() == stored_before + 1);
  CHECK(i1.counters.phantom_duplicates == 1);
}

TEST_CASE_METHOD(two_peer_room, "room: a duplicate answered with another seq is acknowledged with the stored one", "[room]") {
  store.lose_ack_next = 1;
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":8})", std::string("80"));
  REQUIRE(run_until(io, [&] { return !b->of_type("error").empty(); }));
  auto stored_at = store.events().back().seq;
  store.append("t.room.x.e", "other", "", sig::service::append_kind::request, [](sig::service::append_result) {});
  // Sent again: NATS names a seq 1 past the copy it stored.
  store.duplicate_seq_shift = 1;
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":8})", std::string("80"));
  REQUIRE(run_until(io, [&] { return !b->of_type("ack").empty(); }));
  CHECK(b->of_type("ack").front().find(fmt::format("\"seq\":{}", stored_at)) != std::string::npos);
  CHECK(i1.counters.phantom_duplicates == 0);
  CHECK(a->of_type("signal").size() == 1);
}

TEST_CASE_METHOD(two_peer_room, "room: a signal sent again with its id after an unconfirmed append is stored and delivered once", "[room]") {
  // Stored, but its acknowledgement never came: the client hears unavailable.
  store.lose_ack_next = 1;
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":1})", std::string("41"));
  REQUIRE(run_until(io, [&] { return !b->of_type("error").empty(); }));
  CHECK(field(b->of_type("error").front(), "code") == "unavailable");
  CHECK(b->of_type("error").front().find("same id") != std::string::npos);
  auto stored_before = store.events().size();
  // The same request again: found stored, acknowledged with the first copy's seq.
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":1})", std::string("41"));
  REQUIRE(run_until(io, [&] { return !b->of_type("ack").empty(); }));
  CHECK(store.events().size() == stored_before);
  CHECK(b->of_type("ack").front().find("\"seq\":3") != std::string::npos);
  CHECK(i1.counters.duplicate_requests == 1);
  // The same id with other content, or other content without an id, is a new signal.
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":2})", std::string("41"));
  i1.room("r")->signal(b, "pb", std::string("pa"), R"({"n":1})", std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == 3 && b->of_type("ack").size() == 2; }));
  CHECK(store.events().size() == stored_before + 2);
  auto signals = a->of_type("signal");
  CHECK(signals[0].find(R"("data":{"n":1})") != std::string::npos);
  CHECK(signals[1].find(R"("data":{"n":2})") != std::string::npos);
  CHECK(signals[2].find(R"("data":{"n":1})") != std::string::npos);
}

namespace {

// The presence cache as the room sees it, answered by the test: each load
// waits until the test gives it an answer.
class scripted_cache final : public sig::service::presence_store {
 public:
  void load(std::string, std::function<void(std::optional<sig::service::cached_room>)> done) override {
    std::lock_guard lock(mutex_);
    loads_.push_back(std::move(done));
  }
  void store(std::string, std::uint64_t, std::string) override {}
  void replace(std::string, std::uint64_t, std::string) override {}
  bool asked() const {
    std::lock_guard lock(mutex_);
    return !loads_.empty();
  }
  void answer(std::optional<sig::service::cached_room> cached) {
    std::vector<std::function<void(std::optional<sig::service::cached_room>)>> loads;
    {
      std::lock_guard lock(mutex_);
      loads.swap(loads_);
    }
    for (auto& done : loads) done(cached);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::function<void(std::optional<sig::service::cached_room>)>> loads_;
};

// Holds the instance's one worker until released (at the latest when it
// goes, before the instance): what the room reads there (its head, with
// `blocking_reads`) waits.
class held_worker {
 public:
  explicit held_worker(instance& in) {
    asio::post(in.blocking, [future = release_.get_future().share()] { future.wait(); });
  }
  ~held_worker() { let_go(); }
  void let_go() {
    if (std::exchange(released_, true)) return;
    release_.set_value();
  }

 private:
  std::promise<void> release_;
  bool released_ = false;
};

// Room "r" with pa and pb joined on i1; on i2 a room's first join goes out
// with the rebuild's reads, and the worker where i2 reads the room's head is
// held until the test lets it go.
struct early_join_room {
  sig::test::memory_event_store store;
  asio::io_context io;
  instance i1{io, store, "i1"};
  instance i2{io, store, "i2"};
  std::shared_ptr<recorded_peer> a, b;
  std::optional<held_worker> worker;
  early_join_room() {
    store.blocking_reads = true;
    i2.ctx.first_join_before_rebuild = true;
    std::tie(a, b) = two_peers(io, i1);
    worker.emplace(i2);
  }
};

std::size_t joins_of(sig::test::memory_event_store const& store, sig::service::stored_format const& format,
                     std::string const& peer) {
  std::size_t n = 0;
  for (auto const& e : store.events()) {
    auto decoded = format.decode_event(e.payload, e.seq);
    if (!decoded) continue;
    if (auto const* j = std::get_if<sig::domain::peer_joined>(&decoded->event.body); j && j->peer == peer) ++n;
  }
  return n;
}

bool left_recorded(sig::test::memory_event_store const& store, sig::service::stored_format const& format,
                   std::string const& peer) {
  for (auto const& e : store.events()) {
    auto decoded = format.decode_event(e.payload, e.seq);
    if (!decoded) continue;
    if (auto const* l = std::get_if<sig::domain::peer_left>(&decoded->event.body); l && l->peer == peer) return true;
  }
  return false;
}

}  // namespace

TEST_CASE_METHOD(early_join_room,
                 "room: a room's first join on an instance is stored before the rebuild has answered, then settled as "
                 "any join",
                 "[room]") {
  auto c = std::make_shared<recorded_peer>();
  i2.room("r")->join(c, "pc", "{}", std::string("3"));
  REQUIRE(run_until(io, [&] { return joins_of(store, store.format(), "pc") == 1; }));
  // Stored while the rebuild still waits for the room's head.
  CHECK_FALSE(c->joined());
  CHECK(i2.counters.joins_before_rebuild.load() == 1);
  worker->let_go();
  REQUIRE(run_until(io, [&] { return c->joined() && !a->of_type("peer-joined").empty() && b->of_type("peer-joined").size() == 1; }));
  auto joined = c->of_type("joined").front();
  CHECK(joined.find("\"peer\":\"pa\"") != std::string::npos);
  CHECK(joined.find("\"peer\":\"pb\"") != std::string::npos);
  CHECK(field(a->of_type("peer-joined").back(), "peer") == "pc");
  // It signals and is signalled like any member.
  i2.room("r")->signal(c, "pc", std::string("pa"), "1", std::nullopt);
  i1.room("r")->signal(a, "pa", std::string("pc"), "2", std::nullopt);
  REQUIRE(run_until(io, [&] { return a->of_type("signal").size() == 1 && c->of_type("signal").size() == 1; }));
  CHECK(joins_of(store, store.format(), "pc") == 1);
}

TEST_CASE_METHOD(early_join_room, "room: a snapshot that already holds the early joiner is not the rebuild's base",
                 "[room]") {
  // Another instance folded the new join, and the next one, and wrote
  // Redis before this instance's load was answered, and the head is read
  // after both: taken as the base, that snapshot would swallow the join
  // this instance waits for, and the joiner would never hear of the next.
  scripted_cache cache;
  i2.ctx.cache = &cache;
  auto c = std::make_shared<recorded_peer>();
  i2.room("r")->join(c, "pc", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return joins_of(store, store.format(), "pc") == 1 && cache.asked(); }));
  auto d = std::make_shared<recorded_peer>();
  i1.room("r")->join(d, "pd", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return d->joined(); }));
  // Redis as i1 left it: every event so far folded in.
  sig::domain::room_state state;
  for (auto const& e : store.events()) {
    auto decoded = store.format().decode_event(e.payload, e.seq);
    REQUIRE(decoded);
    state = sig::domain::evolve(std::move(state), decoded->event);
  }
  REQUIRE(state.has("pc"));
  cache.answer(sig::service::cached_room{state.last_seq, store.format().encode_snapshot(state, state.last_seq)});
  worker->let_go();
  REQUIRE(run_until(io, [&] { return c->joined() && c->of_type("peer-joined").size() == 1; }));
  auto joined = c->of_type("joined").front();
  CHECK(joined.find("\"peer\":\"pa\"") != std::string::npos);
  CHECK(joined.find("\"peer\":\"pd\"") == std::string::npos);  // it joined after pc
  CHECK(field(c->of_type("peer-joined").front(), "peer") == "pd");
  CHECK(i2.counters.room_syncs_from_cache.load() == 0);
}

TEST_CASE_METHOD(early_join_room,
                 "room: when the rebuild fails after the early join was stored, the joiner hears unavailable and its "
                 "leave is recorded",
                 "[room]") {
  auto c = std::make_shared<recorded_peer>();
  i2.room("r")->join(c, "pc", "{}", std::string("5"));
  REQUIRE(run_until(io, [&] { return joins_of(store, store.format(), "pc") == 1 && !a->of_type("peer-joined").empty(); }));
  // The head cannot be read: the rebuild fails. NATS comes back a moment later.
  store.connected = false;
  worker->let_go();
  REQUIRE(run_until(io, [&] { return !c->of_type("error").empty(); }));
  CHECK(field(c->of_type("error").front(), "code") == "unavailable");
  CHECK_FALSE(c->joined());
  store.connected = true;
  REQUIRE(run_until(io, [&] { return !a->of_type("peer-left").empty(); }));
  CHECK(field(a->of_type("peer-left").front(), "peer") == "pc");
  CHECK(left_recorded(store, store.format(), "pc"));
  // The room is whole again on i2: a new joiner there sees pa and pb only.
  auto e = std::make_shared<recorded_peer>();
  i2.room("r")->join(e, "pe", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return e->joined(); }));
  CHECK(e->of_type("joined").front().find("\"peer\":\"pc\"") == std::string::npos);
  CHECK(e->of_type("joined").front().find("\"peer\":\"pb\"") != std::string::npos);
}

TEST_CASE("room: an early first join is not checked against a full room; the next join there is", "[room]") {
  // The documented price (configuration.md, --max-room-peers): a full room
  // takes one more member per instance that starts following it.
  sig::test::memory_event_store store;
  asio::io_context io;
  instance i1(io, store, "i1"), i2(io, store, "i2");
  i1.ctx.max_room_peers = 2;
  i2.ctx.max_room_peers = 2;
  i2.ctx.first_join_before_rebuild = true;
  auto [a, b] = two_peers(io, i1);
  auto c = std::make_shared<recorded_peer>(), d = std::make_shared<recorded_peer>();
  i2.room("r")->join(c, "pc", "{}", std::nullopt);
  REQUIRE(run_until(io, [&] { return c->joined(); }));
  i2.room("r")->join(d, "pd", "{}", std::string("1"));
  REQUIRE(run_until(io, [&] { return !d->of_type("error").empty(); }));
  CHECK(field(d->of_type("error").front(), "code") == "room-full");
}
