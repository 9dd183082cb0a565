#include "service/room/stored_event.hpp"

#include <algorithm>


namespace sig::service {

stored_event_search find_stored_event(event_reads& reads, std::string const& subject, std::string const& room_name,
                                      domain::event_body const& body, std::uint64_t claimed, std::uint64_t max_events) {
  stored_event_search out;
  auto head = reads.last_seq(subject);
  if (!head) {
    out.read_failed = true;
    return out;
  }
  // The stored copy may sit a little before the claimed sequence too.
  constexpr std::uint64_t before = 256;
  std::uint64_t from = claimed > before ? claimed - before : 1;
  std::uint64_t to = std::min(*head, from + max_events - 1);
  if (from > to) return out;  // the room has nothing there: stored nowhere
  auto events = reads.read(subject, from, to);
  if (!events) {
    out.read_failed = true;
    return out;
  }
  for (auto const& stored : *events) {
    auto decoded = reads.format().decode_event(stored.payload, stored.seq);
    if (!decoded || decoded->room != room_name) continue;
    if (decoded->event.body == body) {
      out.seq = stored.seq;
      return out;
    }
  }
  // Not in a range cut short by max_events: unknown, not absent.
  if (to < *head) out.read_failed = true;
  return out;
}

}  // namespace sig::service
