#pragma once
// A token bucket: `rate` tokens a second, at most `burst` saved up. Time is
// passed in, so the limit is a pure function of the calls made.
#include <algorithm>
#include <chrono>

namespace sig::admission {

struct token_bucket {
  double tokens = 0;
  std::chrono::steady_clock::time_point refilled_at{};
  bool started = false;

  // Takes one token if there is one. A new bucket starts full.
  bool take(std::chrono::steady_clock::time_point now, double rate, double burst) {
    if (!started) {
      started = true;
      tokens = burst;
    } else {
      double elapsed = std::chrono::duration<double>(now - refilled_at).count();
      tokens = std::min(burst, tokens + std::max(elapsed, 0.0) * rate);
    }
    refilled_at = std::max(refilled_at, now);
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  // True once the bucket has refilled completely: forgetting it changes nothing.
  bool full_at(std::chrono::steady_clock::time_point now, double rate, double burst) const {
    return !started || tokens + std::chrono::duration<double>(now - refilled_at).count() * rate >= burst;
  }
};

}  // namespace sig::admission
