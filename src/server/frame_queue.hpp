#pragma once
// A connection's outgoing frames, first in first out. A vector and a read
// position rather than std::deque, whose empty state already holds a
// 512-byte block: most connections are idle, most of the time, and hold
// none of it.
#include <cstddef>
#include <utility>
#include <vector>

#include "ports/peer_endpoint.hpp"

namespace sig::server {

class frame_queue {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  service::frame_ptr const& front() const { return items_[head_]; }
  service::frame_ptr const& at(std::size_t i) const { return items_[head_ + i]; }
  service::frame_ptr const& back() const { return items_.back(); }
  void push_back(service::frame_ptr frame) { items_.push_back(std::move(frame)); }
  void pop_front() {
    items_[head_++].reset();
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      // Half of it spent: move the rest down, once in a while.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void pop_back() {
    items_.pop_back();
    if (head_ == items_.size()) clear();
  }
  // Empties it; a large buffer left by a burst is given back.
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > 64) items_.shrink_to_fit();
  }

 private:
  std::vector<service::frame_ptr> items_;
  std::size_t head_ = 0;
};

}  // namespace sig::server
