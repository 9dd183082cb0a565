#pragma once
// Reading room history for people: the one implementation behind
// `sigstream history|state|rooms` and the admin API. It reads JetStream
// through event_log, decodes, folds with the instances' own `evolve`, selects
// (history/selection) and hands events to a writer (history/formats).
// Blocking: run it on a worker thread or in a CLI, never on an io_context.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ports/history_source.hpp"
#include "domain/room_state.hpp"
#include "history/formats.hpp"
#include "history/selection.hpp"

namespace sig::service {

// Called now and then during long reads: events read so far, and the
// sequence the read goes up to (0 when following).
using read_progress = std::function<void(std::uint64_t read, std::uint64_t last_seq, std::uint64_t head)>;

struct history_query {
  std::string room;
  history::selection selection;
  std::uint64_t limit = 0;  // 0: no limit
  bool follow = false;      // keep going with live events until `stop`
  // Fold from the room's first event even when `since` would let the read
  // start later: needed where the room's state before each event matters.
  bool needs_state = false;
  // Following: runs after every 10 s without an event; false stops.
  std::function<bool()> on_quiet;
};

enum class read_outcome {
  done,        // everything asked for was written
  no_history,  // the room has no event in the stream
  stopped,     // `stop` was set (interrupted, client gone)
  failed,      // NATS error (logged by event_log)
};

struct history_stats {
  read_outcome outcome = read_outcome::done;
  std::uint64_t read = 0, shown = 0, unreadable = 0;
};

history_stats read_history(history_source& log, history_query const& query, history::history_writer& out,
                           std::atomic<bool> const& stop, read_progress const& progress = {});

// The room's state after the last event at or before `at` (all of it when
// absent). nullopt `state` with outcome no_history / failed.
struct state_at {
  read_outcome outcome = read_outcome::done;
  domain::room_state state;
  std::uint64_t events = 0;  // events folded
  std::int64_t last_time_ms = 0;
  std::map<std::string, std::int64_t> join_times;  // of the members, Unix ms
};
state_at read_state(history_source& log, std::string const& room, std::optional<history::point> at,
                    std::atomic<bool> const& stop, read_progress const& progress = {});

struct room_overview {
  std::string room;
  std::size_t members = 0;
  std::uint64_t events = 0;
  std::uint64_t last_seq = 0;
  std::int64_t last_time_ms = 0;
};

// The JSON shapes of one room's state and of a room overview: the same for
// `sigstream state --format json`, `sigstream rooms --format jsonl` and the
// admin API. `redact` masks addresses in members' meta.
std::string state_json(std::string const& room, state_at const& st, bool redact);

// Every room with history, newest activity first, by folding the whole
// stream. Incremental: each call reads only what was appended since the
// last one, so an instance answering the admin API pays the full read once.
// Thread-safe.
std::string overview_json(room_overview const& r);

class room_index {
 public:
  // nullopt if the stream could not be read.
  std::optional<std::vector<room_overview>> rooms(history_source& log, std::atomic<bool> const& stop,
                                                  read_progress const& progress = {});
  // Folds what was appended since the last call. False if the stream could not be read.
  bool catch_up(history_source& log, std::atomic<bool> const& stop, read_progress const& progress = {});

  struct placed_member {
    std::string room;
    domain::member member;
  };
  // Members of every room (as folded so far) that `pick` selects.
  std::vector<placed_member> members_where(std::function<bool(domain::member const&)> const& pick);
  // The fold of one room so far (empty if unknown).
  domain::room_state state_of(std::string const& room);
  // The stream's sequences went back below what was already read: it was
  // deleted and made again, or restored from an older backup. Nothing read
  // from it is trusted any more (catch_up returns false).
  bool stream_went_back() const { return went_back_; }

 private:
  bool catch_up_locked(history_source& log, std::atomic<bool> const& stop, read_progress const& progress);

  struct entry {
    domain::room_state state;
    std::uint64_t events = 0;
    std::int64_t last_time_ms = 0;
  };
  std::mutex mutex_;
  std::map<std::string, entry> rooms_;
  std::uint64_t next_seq_ = 1;
  std::atomic<bool> went_back_{false};
};

}  // namespace sig::service
