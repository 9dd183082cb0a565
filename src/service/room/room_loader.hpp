#pragma once
// Reading one room's membership from storage: the newer of its Redis
// snapshot and the stream's own snapshot, then the room's events after it.
// Shared by a room's rebuild (its first join on an instance) and by the
// expiry of a dead instance's peers. Blocking (a worker or liveness
// thread), except the *_async functions, which read a few events with
// the store's short reads.
#include <cstdint>
#include <functional>
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
  // Peers whose join this instance appended before reading the room (its
  // first join here): a snapshot that already holds one is no base, since
  // the joiner must get every event after its join, and a snapshot past it
  // has folded some in.
  std::vector<std::string> joining;
};

// nullopt when the stream could not be read. `cache` may be null.
std::optional<loaded_room> load_room(event_reads& reads, presence_store* cache, std::string const& room_token,
                                     domain::room_subjects const& subjects);

// The two halves of load_room, for a caller that has the Redis snapshot and
// the room's head already (read without blocking). begin_load settles what
// they alone tell (pure); when needs_reads() is false the room is loaded,
// else finish_load (blocking) reads the stream's snapshot and the events.
loaded_room begin_load(stored_format const& format, std::optional<cached_room> const& cached, std::uint64_t head,
                       std::vector<std::string> joining = {});
bool needs_reads(loaded_room const& room);
std::optional<loaded_room> finish_load(event_reads& reads, loaded_room room, domain::room_subjects const& subjects);

// The stream's own snapshot `snap` (seq 0: none), taken as the base when it
// is newer than the room's base, not past its head, and holds none of the
// room's `joining` peers.
void take_stream_snapshot(stored_format const& format, loaded_room& room, stored_message const& snap);

// Runs a continuation on the caller's strand.
using hop_fn = std::function<void(std::function<void()>)>;

// Without blocking: the messages on `subject` with from <= seq <= to, read
// one at a time by the store's short reads, each answer handed through
// `hop` before the next read goes out. For a room with few events to read:
// `done(messages)`, through `hop`; nullopt when this way cannot read them
// (a read failed, or more than `max_messages` are due), and at once when
// the store cannot read without blocking: then the blocking read.
void read_events_async(event_store& store, std::string subject, std::uint64_t from, std::uint64_t to,
                       std::size_t max_messages, hop_fn hop,
                       std::function<void(std::optional<std::vector<stored_message>>)> done);

// finish_load without blocking: the stream's snapshot, then the events
// after the base through read_events_async. nullopt (then finish_load on a
// worker) as there, and for a Redis snapshot ahead of the head.
void finish_load_async(event_store& store, loaded_room room, domain::room_subjects const& subjects,
                       std::size_t max_events, hop_fn hop, std::function<void(std::optional<loaded_room>)> done);

// `base` with `events` folded in (events of another room or unreadable
// ones are skipped): the room's state at `head`.
domain::room_state fold_loaded(stored_format const& format, loaded_room const& room, std::string const& room_name);

}  // namespace sig::service
