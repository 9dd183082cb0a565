#pragma once
// The peers this instance holds a connection for, readable from any thread.
// Rooms keep it up to date; the liveness monitor asks it which members
// recorded under this instance's id no connection here holds (left behind by
// an earlier run of the instance, or whose leave could not be recorded while
// NATS was away).
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace sig::service {

class held_peers {
 public:
  void add(std::string const& peer) {
    std::lock_guard lock(mutex_);
    peers_.insert(peer);
  }
  void remove(std::string const& peer) {
    std::lock_guard lock(mutex_);
    peers_.erase(peer);
  }
  bool holds(std::string const& peer) const {
    std::lock_guard lock(mutex_);
    return peers_.count(peer) != 0;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_set<std::string> peers_;
};

}  // namespace sig::service
