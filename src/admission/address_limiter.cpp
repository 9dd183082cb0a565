#include "admission/address_limiter.hpp"

#include <algorithm>
#include <iterator>

namespace sig::admission {

address_limiter::address_limiter(double rate, double burst, std::size_t max_keys)
    : rate_(std::max(rate, 1e-9)), burst_(std::max(burst, 1.0)), max_keys_(std::max<std::size_t>(max_keys, 1)) {}

bool address_limiter::allow(std::string_view key, clock::time_point now) {
  std::lock_guard lock(mutex_);
  // A sweep once a second, or every 100 ms while the table is full: the cost
  // of forgetting stays off the common path, also under a spray of addresses.
  auto since = now - swept_at_;
  if (since >= std::chrono::seconds(1) || (buckets_.size() >= max_keys_ && since >= std::chrono::milliseconds(100)))
    forget_full(now);
  auto found = buckets_.find(std::string(key));
  if (found == buckets_.end()) {
    if (buckets_.size() >= max_keys_) return false;
    found = buckets_.emplace(std::string(key), token_bucket{}).first;
  }
  return found->second.take(now, rate_, burst_);
}

std::size_t address_limiter::tracked() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

void address_limiter::forget_full(clock::time_point now) {
  swept_at_ = now;
  std::erase_if(buckets_, [&](auto const& entry) { return entry.second.full_at(now, rate_, burst_); });
}

}  // namespace sig::admission
