#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "domain/liveness.hpp"

using sig::domain::liveness;
using namespace std::chrono_literals;

TEST_CASE("liveness: a heartbeat whose revision keeps changing is alive", "[liveness]") {
  liveness l(10s);
  auto t0 = liveness::clock::time_point{} + 1000s;
  l.heartbeat("i1", 1, t0);
  l.heartbeat("i1", 5, t0 + 8s);
  l.heartbeat("i1", 9, t0 + 16s);
  CHECK(l.alive("i1", t0 + 25s));
  CHECK(l.newly_dead(t0 + 25s).empty());
  CHECK(l.alive_instances(t0 + 25s) == std::vector<std::string>{"i1"});
  CHECK(l.alive_count(t0 + 25s) == 1);
}

TEST_CASE("liveness: a revision standing still for the timeout is dead, reported once", "[liveness]") {
  liveness l(10s);
  auto t0 = liveness::clock::time_point{} + 1000s;
  l.heartbeat("i1", 1, t0);
  l.heartbeat("i2", 2, t0);
  l.heartbeat("i2", 2, t0 + 9s);   // the same revision seen again: no sign of life
  l.heartbeat("i1", 3, t0 + 9s);
  CHECK(l.alive("i2", t0 + 9s));
  CHECK_FALSE(l.alive("i2", t0 + 10s));
  CHECK(l.alive_count(t0 + 9s) == 2);
  CHECK(l.alive_count(t0 + 10s) == 1);
  CHECK(l.newly_dead(t0 + 10s) == std::vector<std::string>{"i2"});
  CHECK(l.newly_dead(t0 + 11s).empty());
  CHECK(l.alive("i1", t0 + 18s));
  // It comes back: alive again, and a later death is reported again.
  l.heartbeat("i2", 7, t0 + 12s);
  l.heartbeat("i1", 4, t0 + 18s);
  CHECK(l.alive("i2", t0 + 12s));
  CHECK(l.newly_dead(t0 + 22s) == std::vector<std::string>{"i2"});
}

TEST_CASE("liveness: never seen is not alive; goodbye forgets without a death", "[liveness]") {
  liveness l(10s);
  auto t0 = liveness::clock::time_point{} + 1000s;
  CHECK_FALSE(l.alive("ghost", t0));
  l.heartbeat("i3", 1, t0);
  l.goodbye("i3");
  CHECK_FALSE(l.alive("i3", t0));
  CHECK(l.newly_dead(t0 + 60s).empty());
  CHECK(l.alive_instances(t0).empty());
  CHECK(l.alive_count(t0) == 0);
}
