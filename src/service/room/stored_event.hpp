#pragma once
// Where an event acknowledged as a duplicate really is. nats-server 2.9.10
// can answer a message id it has seen with a sequence where that message is
// not stored: its duplicate map keeps the sequence a proposal had when a
// leader stepped down or quorum was lost, and the entry was then committed
// elsewhere, or (the likely cause of one loaded run's loss) not at all:
// nats_cluster.test.mjs saw a resend acknowledged as 187 and stored at 190.
// So a duplicate is
// believed only once the stream shows the event. Blocking: a worker thread.
#include <cstdint>
#include <optional>
#include <string>

#include "domain/event.hpp"
#include "ports/event_store.hpp"

namespace sig::service {

struct stored_event_search {
  bool read_failed = false;             // the stream could not be read, or the range was too long to read
  std::optional<std::uint64_t> seq;     // where the event is stored; nullopt: nowhere in the range read
};

// Looks for `body` of room `room_name` on `subject` around `claimed` (the
// sequence the duplicate answer named): from a little before it to the
// subject's head, at most `max_events` events.
stored_event_search find_stored_event(event_reads& reads, std::string const& subject, std::string const& room_name,
                                      domain::event_body const& body, std::uint64_t claimed,
                                      std::uint64_t max_events = 4096);

}  // namespace sig::service
