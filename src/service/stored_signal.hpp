#pragma once
// Where a signal acknowledged as a duplicate really is. nats-server 2.9.10
// can answer a message id it has seen with a sequence where that message is
// not stored: its duplicate map keeps the sequence a proposal had when a
// leader stepped down or quorum was lost, and the entry was then committed
// elsewhere or not at all (nats_cluster.test.mjs saw both: acknowledged as
// 187, stored at 190; acknowledged, stored nowhere). So a duplicate is
// believed only once the stream shows the signal. Blocking: a worker thread.
#include <cstdint>
#include <optional>
#include <string>

#include "domain/event.hpp"
#include "service/event_store.hpp"

namespace sig::service {

struct stored_signal_search {
  bool read_failed = false;             // the stream could not be read, or the range was too long to read
  std::optional<std::uint64_t> seq;     // where the signal is stored; nullopt: nowhere in the range read
};

// Looks for `signal` of room `room_name` on `subject` around `claimed` (the
// sequence the duplicate answer named): from a little before it to the
// subject's head, at most `max_events` events.
stored_signal_search find_stored_signal(event_reads& reads, std::string const& subject, std::string const& room_name,
                                        domain::signal_sent const& signal, std::uint64_t claimed,
                                        std::uint64_t max_events = 4096);

}  // namespace sig::service
