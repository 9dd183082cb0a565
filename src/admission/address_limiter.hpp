#pragma once
// A rate limit per key (a client address): one token bucket per address,
// shared by every connection of the instance, whichever thread serves it.
// Memory is bounded: buckets that have refilled are forgotten (they would
// allow the same as a new one), and past max_keys the newest addresses are
// refused rather than letting a spray of addresses grow the table.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "admission/token_bucket.hpp"

namespace sig::admission {

class address_limiter {
 public:
  using clock = std::chrono::steady_clock;

  address_limiter(double rate, double burst, std::size_t max_keys = 100'000);

  // One event (a join) from `key` at `now`: allowed or not.
  bool allow(std::string_view key, clock::time_point now);
  std::size_t tracked() const;
  double rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  void forget_full(clock::time_point now);

  double rate_;
  double burst_;
  std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, token_bucket> buckets_;
  clock::time_point swept_at_{};
};

}  // namespace sig::admission
