#pragma once
// A room's live feed, put in stream order. Pure: no clock, no I/O.
//
// The room keeps a mark: every event up to it has been applied. A live
// message continues the room when its "previous sequence of this subject"
// is the mark; one at or below the mark was applied already (a rebuild or a
// catch-up read it) and is dropped. Anything else is held: nats-server 2.9
// now and then republishes a message a little after a later one (several
// instances publishing into one room), so the message that continues the
// mark may still come. The room gives such a hole a short while (its
// reorder window) and then reads what is missing from the stream.
//
// While the room rebuilds or catches up, messages are only held; resume()
// then takes the held ones that continue the new mark.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "ports/event_store.hpp"

namespace sig::service {

class ordered_feed {
 public:
  // `max_held`: messages held at most; past it the oldest are dropped, and
  // the room's catch-up reads them from the stream anyway.
  explicit ordered_feed(std::size_t max_held = 1 << 16) : max_held_(max_held) {}

  std::uint64_t mark() const { return mark_; }
  bool paused() const { return paused_; }

  // Rebuilding or catching up: arrivals are only held.
  void pause() { paused_ = true; }
  // Every event up to `mark` is applied; the held messages that continue
  // it come back, in order, to be applied.
  std::vector<live_message> resume(std::uint64_t mark);
  // An event read from the stream (a rebuild or a catch-up) was applied.
  void applied(std::uint64_t seq) {
    if (seq > mark_) mark_ = seq;
  }
  // A live message came. Returns those that continue the room now, in
  // order (none while paused).
  std::vector<live_message> arrive(live_message message);

  // Held messages that do not continue the mark: something between is
  // late, or lost. The room waits its reorder window, then catches up.
  bool has_hole() const { return held_ != nullptr; }
  // The newest event the held messages wait for: the highest "previous
  // sequence" among them above the mark (0: none held). Every hole they
  // show lies at or below it, so a catch-up need read no further.
  std::uint64_t awaited() const;
  std::size_t held() const { return held_ ? held_->size() : 0; }
  // Messages dropped because too many were held.
  std::uint64_t dropped() const { return dropped_; }
  // Forgets everything held (the room lets go of the feed).
  void clear() { held_.reset(); }

 private:
  std::vector<live_message> take_continuing();

  std::size_t max_held_;
  std::uint64_t mark_ = 0;
  bool paused_ = true;  // until the first rebuild is done
  // Made when something is first held and dropped when emptied: an empty
  // std::deque already holds a 512-byte block, and most rooms never hold.
  std::unique_ptr<std::deque<live_message>> held_;
  std::uint64_t dropped_ = 0;
};

}  // namespace sig::service
