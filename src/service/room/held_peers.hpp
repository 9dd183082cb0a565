#pragma once
// The peers this instance holds a connection for, readable from any thread.
// Rooms keep it up to date; the liveness monitor asks it which members
// recorded under this instance's id no connection here holds (left behind by
// an earlier run of the instance, or whose leave could not be recorded while
// NATS was away).
#include <functional>
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
    std::function<void()> emptied;
    {
      std::lock_guard lock(mutex_);
      if (peers_.erase(peer) != 0 && peers_.empty()) emptied = on_empty_;
    }
    if (emptied) emptied();
  }
  bool empty() const {
    std::lock_guard lock(mutex_);
    return peers_.empty();
  }
  // Runs (on the thread that removed the last peer) each time it becomes
  // empty: a draining instance waits for that.
  void on_empty(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    on_empty_ = std::move(callback);
  }
  bool holds(std::string const& peer) const {
    std::lock_guard lock(mutex_);
    return peers_.count(peer) != 0;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_set<std::string> peers_;
  std::function<void()> on_empty_;
};

}  // namespace sig::service
