// sigstream-bench's pure parts: the frames it writes and how it reads the
// answers, in sigstream's protocol and in Socket.IO's (Engine.IO 4 on a
// WebSocket, as tools/bench/baseline/server.mjs speaks it), and the
// per-second figures of the overload's recovery step.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "bench/bench_placement.hpp"
#include "bench/bench_protocol.hpp"
#include "bench/bench_stats.hpp"

using namespace sig::bench;
using kind = inbound::kind;

TEST_CASE("a signal's request id names its step and number") {
  auto id = signal_request(7, 123'456);
  REQUIRE(is_signal_request(id));
  REQUIRE(request_step(id) == 7);
  REQUIRE(request_number(id) == 123'456);
  REQUIRE_FALSE(is_signal_request(join_request));
  REQUIRE_FALSE(is_signal_request(leave_request));
}

TEST_CASE("sigstream: the bench's frames and the server's answers") {
  auto p = make_sigstream_protocol();
  REQUIRE(p->ready_on_open());
  REQUIRE(p->instance_header() == "X-Sigstream-Instance");
  REQUIRE(p->join("r-1", R"({"bench":"x"})") == R"({"type":"join","room":"r-1","meta":{"bench":"x"},"id":1})");
  REQUIRE(p->join("r-1", "") == R"({"type":"join","room":"r-1","id":1})");
  REQUIRE(p->leave() == R"({"type":"leave","id":2})");
  auto id = signal_request(3, 9);
  REQUIRE(p->signal("p1", R"({"k":3})", 0) == R"({"type":"signal","to":"p1","data":{"k":3}})");
  REQUIRE(p->signal("p1", R"({"k":3})", id) ==
          R"({"type":"signal","to":"p1","data":{"k":3},"id":)" + std::to_string(id) + "}");

  auto joined = p->read(R"({"type":"joined","id":1,"room":"r","peer":"abc","peers":[],"seq":4})");
  REQUIRE(joined.what == kind::joined);
  REQUIRE(joined.text == "abc");
  REQUIRE(p->read(R"({"type":"ack","id":2,"seq":5})").what == kind::left);
  auto acked = p->read(R"({"type":"ack","id":)" + std::to_string(id) + R"(,"seq":6})");
  REQUIRE(acked.what == kind::signal_acked);
  REQUIRE(acked.request == id);
  auto refused = p->read(R"({"type":"error","id":)" + std::to_string(id) + R"(,"code":"unavailable","message":"m"})");
  REQUIRE(refused.what == kind::signal_refused);
  REQUIRE(refused.text == "unavailable");
  // An append the instance could not confirm in time: counted apart, since
  // it may still be delivered (the ledger must not call that a violation).
  auto unconfirmed = p->read(R"({"type":"error","id":)" + std::to_string(id) +
                             R"(,"code":"unavailable","message":"the event log did not confirm the signal in time; it may )"
                             R"(still be delivered: send it again with the same id, which stores it at most once"})");
  REQUIRE(unconfirmed.what == kind::signal_refused);
  REQUIRE(unconfirmed.text == sig::bench::unconfirmed_code);
  REQUIRE(p->read(R"({"type":"error","id":1,"code":"room-full"})").what == kind::join_refused);
  auto unnamed = p->read(R"({"type":"error","code":"rate-limited"})");
  REQUIRE(unnamed.what == kind::error);
  REQUIRE(unnamed.text == "rate-limited");
  std::string frame = R"({"type":"signal","from":"a","data":{"k":3,"t":10,"n":1},"seq":7})";
  auto signal = p->read(frame);
  REQUIRE(signal.what == kind::signal);
  REQUIRE(signal.data == R"({"k":3,"t":10,"n":1})");
  REQUIRE(p->read(R"({"type":"peer-joined","peer":"b","seq":8})").what == kind::nothing);
  REQUIRE(p->read("not json").what == kind::bad);
}

TEST_CASE("Socket.IO: the handshake, pings, events and acknowledgements") {
  auto p = make_socketio_protocol();
  REQUIRE_FALSE(p->ready_on_open());
  REQUIRE(p->path() == "/socket.io/?EIO=4&transport=websocket");
  REQUIRE(p->instance_header() == "X-Baseline-Instance");

  // Engine.IO open, answered by a Socket.IO connect to the main namespace;
  // the connection is usable once the server confirms it.
  auto open = p->read(R"(0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})");
  REQUIRE(open.what == kind::nothing);
  REQUIRE(open.reply == "40");
  REQUIRE(p->read(R"(40{"sid":"s1"})").what == kind::ready);
  REQUIRE(p->read("2").reply == "3");
  REQUIRE(p->read("44{\"message\":\"no\"}").what == kind::error);

  REQUIRE(p->join("r-1", R"({"bench":"x"})") == R"(421["join",{"room":"r-1","meta":{"bench":"x"}}])");
  REQUIRE(p->leave() == R"(422["leave",{}])");
  auto id = signal_request(3, 9);
  REQUIRE(p->signal("s2", R"({"k":3})", id) == "42" + std::to_string(id) + R"(["signal",{"to":"s2","data":{"k":3}}])");
  REQUIRE(p->signal("s2", R"({"k":3})", 0) == R"(42["signal",{"to":"s2","data":{"k":3}}])");

  auto joined = p->read(R"(431[{"peer":"s1","peers":[{"peer":"s0"}]}])");
  REQUIRE(joined.what == kind::joined);
  REQUIRE(joined.text == "s1");
  REQUIRE(p->read(R"(431[{"error":"already-in-room"}])").what == kind::join_refused);
  REQUIRE(p->read(R"(432[{"ok":true}])").what == kind::left);
  auto acked = p->read("43" + std::to_string(id) + R"([{"ok":true}])");
  REQUIRE(acked.what == kind::signal_acked);
  REQUIRE(acked.request == id);
  auto refused = p->read("43" + std::to_string(id) + R"([{"error":"not-in-room"}])");
  REQUIRE(refused.what == kind::signal_refused);
  REQUIRE(refused.text == "not-in-room");

  std::string frame = R"(42["signal",{"from":"s0","data":{"k":3,"t":10,"n":1,"p":"a,b]}"}}])";
  auto signal = p->read(frame);
  REQUIRE(signal.what == kind::signal);
  REQUIRE(signal.data == R"({"k":3,"t":10,"n":1,"p":"a,b]}"})");
  REQUIRE(p->read(R"(42["peer-joined",{"peer":"s3","meta":{}}])").what == kind::nothing);
  REQUIRE(p->read("42not json").what == kind::bad);
  REQUIRE(p->read("x").what == kind::bad);
}

TEST_CASE("the recovery step's seconds: by send schedule, and back to normal when every later second is") {
  // 4 signals a second for 3 seconds; signal 6 never came, 9..12 were slow.
  std::vector<std::int64_t> latencies;
  std::vector<std::uint64_t> numbers;
  for (std::uint64_t n = 1; n <= 12; ++n) {
    if (n == 6) continue;
    numbers.push_back(n);
    latencies.push_back(n <= 8 ? 1'000'000 : 2'000'000);  // 1 ms, then 2 ms
  }
  auto windows = per_second(latencies, numbers, 4, 12);
  REQUIRE(windows.size() == 3);
  REQUIRE(windows[0].sent == 4);
  REQUIRE(windows[0].received == 4);
  REQUIRE(windows[1].received == 3);
  REQUIRE(windows[2].p99_ms == Approx(2.0));
  REQUIRE(back_to_normal(windows, 5.0) == 2.0);       // second 1 missed a signal
  REQUIRE(back_to_normal(windows, 1.5) == std::nullopt);  // the last second is too slow
  REQUIRE(per_second({}, {}, 0, 10).empty());
}

TEST_CASE("parse_prometheus: a family's labelled series are summed under its name and kept whole", "[bench]") {
  auto values = sig::bench::parse_prometheus(
      "# HELP sigstream_events_appended_total Events.\n"
      "# TYPE sigstream_events_appended_total counter\n"
      "sigstream_events_appended_total{kind=\"join\"} 3\n"
      "sigstream_events_appended_total{kind=\"signal\"} 40\n"
      "sigstream_connections 7\n"
      "sigstream_peers_expired_total{reason=\"instance_dead\"} 2\n"
      "sigstream_peers_expired_total{reason=\"no_resume\"} 5\n");
  CHECK(sig::bench::metric(values, "sigstream_events_appended_total") == 43);
  CHECK(sig::bench::metric(values, "sigstream_connections") == 7);
  CHECK(sig::bench::metric(values, "sigstream_peers_expired_total") == 7);
  CHECK(sig::bench::metric(values, R"(sigstream_peers_expired_total{reason="instance_dead"})") == 2);
  CHECK(sig::bench::metric(values, "sigstream_missing") == 0);
}

TEST_CASE("rooms spread: each room's peers on distinct instances while they last", "[bench][placement]") {
  std::vector<std::string> on = {"i1", "i1", "i1", "i1", "i2", "i2", "i2", "i2", "i3", "i3", "i3", "i3"};
  auto chosen = assign_rooms(on, 3, 4, {"i1", "i2", "i3"});
  REQUIRE(chosen.rooms.size() == 3);
  CHECK(chosen.fully_spread == 3);
  for (auto const& room : chosen.rooms) {
    std::set<std::string> instances;
    for (auto i : room) instances.insert(on[i]);
    CHECK(instances.size() == 3);
  }
}

TEST_CASE("rooms together: each room's peers on one instance, rooms balanced over the instances", "[bench][placement]") {
  std::vector<std::string> on = {"i1", "i2", "i3", "i1", "i2", "i3", "i1", "i2", "i3", "i1", "i2", "i3", "i1", "i2"};
  auto chosen = assign_rooms(on, 3, 4, {"i1", "i2", "i3"}, true);
  REQUIRE(chosen.rooms.size() == 3);
  CHECK(chosen.fully_spread == 3);
  std::set<std::string> hosts;
  std::set<std::size_t> taken;
  for (auto const& room : chosen.rooms) {
    REQUIRE(room.size() == 4);
    std::set<std::string> instances;
    for (auto i : room) {
      instances.insert(on[i]);
      CHECK(taken.insert(i).second);  // no connection in two rooms
    }
    CHECK(instances.size() == 1);
    hosts.insert(*instances.begin());
  }
  CHECK(hosts.size() == 3);
  // Not enough on any one instance for a fourth room.
  CHECK(assign_rooms(on, 4, 4, {"i1", "i2", "i3"}, true).rooms.size() == 3);
  // Connections on instances outside `allowed` are never used.
  CHECK(assign_rooms(on, 1, 4, {"i3"}, true).rooms.size() == 1);
  CHECK(assign_rooms(on, 2, 4, {"i3"}, true).rooms.size() == 1);
}
