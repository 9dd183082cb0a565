#include <catch2/catch.hpp>

#include <deque>
#include <random>
#include <string>

#include "server/frame_queue.hpp"

using sig::server::frame_queue;

namespace {
sig::service::frame_ptr frame(int n) { return std::make_shared<std::string const>(std::to_string(n)); }
}  // namespace

TEST_CASE("frame queue: first in, first out, like a deque under any mix of operations", "[frame_queue]") {
  std::mt19937 rng(3);
  frame_queue q;
  std::deque<std::string> model;
  int next = 0;
  for (int step = 0; step < 20000; ++step) {
    auto op = rng() % 10;
    if (op < 5) {
      q.push_back(frame(next));
      model.push_back(std::to_string(next++));
    } else if (op < 9 && !model.empty()) {
      REQUIRE(*q.front() == model.front());
      q.pop_front();
      model.pop_front();
    } else if (!model.empty()) {
      REQUIRE(*q.back() == model.back());
      q.pop_back();
      model.pop_back();
    }
    REQUIRE(q.size() == model.size());
    REQUIRE(q.empty() == model.empty());
  }
  q.clear();
  CHECK(q.empty());
}
