#pragma once
// Reading one room's membership from storage: the newer of its Redis
// snapshot and the stream's own snapshot, then the room's events after it.
// Shared by a room's rebuild (its first join on an instance) and by the
// expiry of a dead instance's peers. Blocking: a worker or liveness thread.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/room_state.hpp"
#include "ports/event_store.hpp"
#include "ports/presence_store.hpp"

namespace sig::service {

struct loaded_room {
  domain::room_state base;              // the snapshot's state (empty: from the beginning)
  std::vector<stored_message> events;   // the room's events after `base`, up to `head`
  std::uint64_t head = 0;               // the room's last sequence when read
  std::uint64_t room_events = 0;        // events folded into `base` (its snapshot's count)
  bool from_cache = false;
  bool from_stream_snapshot = false;
  bool cache_needs_repair = false;      // Redis missing, unreadable or behind
  bool cache_ahead = false;             // Redis claims a sequence the stream never reached
  std::uint64_t cached_seq = 0;         // what Redis claimed
};

// nullopt when the stream could not be read. `cache` may be null.
std::optional<loaded_room> load_room(event_reads& reads, presence_store* cache, std::string const& room_token,
                                     domain::room_subjects const& subjects);

// The two halves of load_room, for a caller that has the Redis snapshot and
// the room's head already (read without blocking). begin_load settles what
// they alone tell (pure); when needs_reads() is false the room is loaded,
// else finish_load (blocking) reads the stream's snapshot and the events.
loaded_room begin_load(stored_format const& format, std::optional<cached_room> const& cached, std::uint64_t head);
bool needs_reads(loaded_room const& room);
std::optional<loaded_room> finish_load(event_reads& reads, loaded_room room, domain::room_subjects const& subjects);

// `base` with `events` folded in (events of another room or unreadable
// ones are skipped): the room's state at `head`.
domain::room_state fold_loaded(stored_format const& format, loaded_room const& room, std::string const& room_name);

}  // namespace sig::service
