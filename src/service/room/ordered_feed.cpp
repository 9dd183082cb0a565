#include "service/room/ordered_feed.hpp"

#include <algorithm>

namespace sig::service {

std::vector<live_message> ordered_feed::resume(std::uint64_t mark) {
  paused_ = false;
  if (mark > mark_) mark_ = mark;
  return take_continuing();
}

std::vector<live_message> ordered_feed::arrive(live_message message) {
  if (!paused_ && !held_) {
    // The usual case, kept cheap: the message continues the room, or was
    // applied already.
    if (message.seq <= mark_) return {};
    if (message.previous_subject_seq == mark_) {
      mark_ = message.seq;
      std::vector<live_message> out;
      out.push_back(std::move(message));
      return out;
    }
  }
  if (!held_) held_ = std::make_unique<std::deque<live_message>>();
  if (held_->size() >= max_held_) {
    held_->pop_front();
    ++dropped_;
  }
  held_->push_back(std::move(message));
  if (paused_) return {};
  return take_continuing();
}

std::uint64_t ordered_feed::awaited() const {
  std::uint64_t out = 0;
  if (held_)
    for (auto const& m : *held_)
      if (m.seq > mark_) out = std::max(out, m.previous_subject_seq);
  return out > mark_ ? out : 0;
}

// Whichever held message continues the mark, not just the oldest: the
// feed may arrive slightly out of order.
std::vector<live_message> ordered_feed::take_continuing() {
  std::vector<live_message> out;
  while (held_) {
    auto next = std::find_if(held_->begin(), held_->end(), [this](live_message const& m) {
      return m.seq <= mark_ || m.previous_subject_seq == mark_;
    });
    if (next == held_->end()) break;
    live_message message = std::move(*next);
    held_->erase(next);
    if (held_->empty()) held_.reset();
    if (message.seq <= mark_) continue;  // applied already
    mark_ = message.seq;
    out.push_back(std::move(message));
  }
  return out;
}

}  // namespace sig::service
