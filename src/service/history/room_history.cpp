#include "service/history/room_history.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>

#include "domain/room_name.hpp"
#include "history/redact.hpp"
#include "history/time_point.hpp"
#include "protocol/messages.hpp"

namespace sig::service {

namespace {

using clock = std::chrono::steady_clock;

// Reports progress at most every 200 ms, so a fast read pays nothing for it.
class progress_ticker {
 public:
  progress_ticker(read_progress const& progress, std::uint64_t head) : progress_(progress), head_(head) {}
  void tick(std::uint64_t read, std::uint64_t seq) {
    if (!progress_ || (read & 255) != 0) return;
    auto now = clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    progress_(read, seq, head_);
  }

 private:
  read_progress const& progress_;
  std::uint64_t head_;
  clock::time_point last_ = clock::now();
};

read_outcome outcome_of(scan_end end) {
  switch (end) {
    case scan_end::caught_up: return read_outcome::done;
    case scan_end::stopped: return read_outcome::stopped;
    case scan_end::failed: return read_outcome::failed;
  }
  return read_outcome::failed;
}

// A start by time uses the stream's own timestamps, which can trail the
// appending instance's clock (the event's time) a little: start early, then
// select by the event's time.
constexpr std::int64_t start_time_margin_ms = 5000;

// Batches of messages from the thread reading NATS to the one formatting
// them, bounded so a slow output holds the reading back.
class message_pipe {
 public:
  static constexpr std::size_t batch_size = 256;

  // Hands a batch over (and leaves `batch` empty); false once the worker
  // wants nothing more.
  bool give(std::vector<stored_message>& batch) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return queue_.size() < max_batches || halted_; });
    if (halted_) return false;
    queue_.push_back(std::move(batch));
    batch.clear();
    ready_.notify_one();
    return true;
  }
  // The next batch; false when closed and drained, or halted.
  bool take(std::vector<stored_message>& batch) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !queue_.empty() || closed_ || halted_; });
    if (halted_ || queue_.empty()) return false;
    batch = std::move(queue_.front());
    queue_.pop_front();
    room_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    ready_.notify_all();
  }
  void halt() {
    std::lock_guard lock(mutex_);
    halted_ = true;
    room_.notify_all();
    ready_.notify_all();
  }
  bool halted() {
    std::lock_guard lock(mutex_);
    return halted_;
  }

 private:
  static constexpr std::size_t max_batches = 16;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::vector<stored_message>> queue_;
  bool closed_ = false, halted_ = false;
};

}  // namespace

history_stats read_history(history_source& log, history_query const& q, history::history_writer& out,
                           std::atomic<bool> const& stop, read_progress const& progress) {
  history_stats stats;
  std::string filter = log.subjects(domain::room_token(q.room)).events;
  auto head = log.last_seq(filter);
  if (!head) {
    stats.outcome = read_outcome::failed;
    return stats;
  }
  if (*head == 0 && !q.follow) {
    stats.outcome = read_outcome::no_history;
    return stats;
  }
  auto const& sel = q.selection;
  bool from_start = q.needs_state || !sel.peer.empty() || !sel.as_peer.empty() || !sel.since;
  scan_start start;
  if (!from_start) {
    if (sel.since->what == history::point::kind::sequence) start.seq = sel.since->seq;
    else start.time_ms = std::max<std::int64_t>(1, sel.since->time_ms - start_time_margin_ms);
  }

  domain::room_state state;
  std::atomic<bool> stopped_early{false};
  progress_ticker ticker(progress, q.follow ? 0 : *head);
  // Decodes, folds, selects and writes one message; false: nothing more wanted.
  auto process = [&](stored_message const& m) {
    auto decoded = log.format().decode_event(m.payload, m.seq);
    if (!decoded) {
      ++stats.unreadable;
      if (!sel.since || sel.since->what != history::point::kind::sequence || m.seq >= sel.since->seq)
        out.unreadable(m.seq, m.payload.size());
      return true;
    }
    auto const& e = decoded->event;
    if (history::past_until(sel, e)) {
      stopped_early = true;
      return false;
    }
    bool shown = history::after_since(sel, e) && history::selected(sel, e, state);
    if (shown) {
      out.event(e, state);
      ++stats.shown;
    }
    state = domain::evolve(std::move(state), e);
    if (shown && q.limit > 0 && stats.shown >= q.limit) {
      stopped_early = true;
      return false;
    }
    return true;
  };

  if (q.follow) {
    // Live lines go out one by one, as they come.
    scan_end end = log.scan(filter, start, true, stop, [&](stored_message&& m) {
      ++stats.read;
      ticker.tick(stats.read, m.seq);
      return process(m);
    }, q.on_quiet);
    stats.outcome = stopped_early ? read_outcome::done : outcome_of(end);
    return stats;
  }

  // A long read is two stages on two threads: this one takes messages from
  // NATS, a worker decodes and formats them (the larger cost, measured in
  // docs/benchmarks.md), in batches so the hand-over costs little.
  message_pipe pipe;
  std::thread worker([&] {
    std::vector<stored_message> batch;
    while (pipe.take(batch)) {
      for (auto const& m : batch) {
        if (!process(m)) {
          pipe.halt();
          break;
        }
      }
      batch.clear();
    }
  });
  std::vector<stored_message> batch;
  // A batch also goes when it has waited a little: a room whose events are
  // far apart in the stream still shows its first lines at once.
  auto batch_started = clock::now();
  scan_end end = log.scan(filter, start, false, stop, [&](stored_message&& m) {
    ++stats.read;
    ticker.tick(stats.read, m.seq);
    if (batch.empty()) batch_started = clock::now();
    batch.push_back(std::move(m));
    if (batch.size() >= message_pipe::batch_size || clock::now() - batch_started >= std::chrono::milliseconds(5))
      return pipe.give(batch);
    return !pipe.halted();
  });
  if (!batch.empty()) pipe.give(batch);
  pipe.close();
  worker.join();
  stats.outcome = stopped_early ? read_outcome::done : outcome_of(end);
  return stats;
}

state_at read_state(history_source& log, std::string const& room, std::optional<history::point> at,
                    std::atomic<bool> const& stop, read_progress const& progress) {
  state_at result;
  std::string filter = log.subjects(domain::room_token(room)).events;
  auto head = log.last_seq(filter);
  if (!head || *head == 0) {
    result.outcome = head ? read_outcome::no_history : read_outcome::failed;
    return result;
  }
  history::selection until;
  until.until = at;
  bool past = false;
  std::uint64_t read = 0;
  progress_ticker ticker(progress, *head);
  scan_end end = log.scan(filter, {}, false, stop, [&](stored_message&& m) {
    ticker.tick(++read, m.seq);
    auto decoded = log.format().decode_event(m.payload, m.seq);
    if (!decoded) return true;
    if (history::past_until(until, decoded->event)) {
      past = true;
      return false;
    }
    auto const& e = decoded->event;
    if (auto const* j = std::get_if<domain::peer_joined>(&e.body); j && !result.state.has(j->peer))
      result.join_times[j->peer] = e.time_ms;
    else if (auto const* l = std::get_if<domain::peer_left>(&e.body))
      result.join_times.erase(l->peer);
    result.state = domain::evolve(std::move(result.state), e);
    result.last_time_ms = decoded->event.time_ms;
    ++result.events;
    return true;
  });
  result.outcome = past ? read_outcome::done : outcome_of(end);
  return result;
}

std::string state_json(std::string const& room, state_at const& st, bool redact) {
  std::string out = fmt::format("{{\"room\":{},\"seq\":{},\"events\":{},\"members\":[", protocol::json_quote(room),
                                st.state.last_seq, st.events);
  for (std::size_t i = 0; i < st.state.members.size(); ++i) {
    auto const& m = st.state.members[i];
    std::string meta = m.meta_json.empty() ? "{}" : m.meta_json;
    if (redact) meta = history::redact_addresses(meta);
    auto joined = st.join_times.find(m.peer);
    out += fmt::format("{}{{\"peer\":{},\"meta\":{},\"instance\":{},\"joined_seq\":{},\"joined_at\":\"{}\"}}",
                       i ? "," : "", protocol::json_quote(m.peer), meta, protocol::json_quote(m.instance), m.join_seq,
                       history::rfc3339(joined == st.join_times.end() ? 0 : joined->second));
  }
  return out + "]}";
}

std::string overview_json(room_overview const& r) {
  return fmt::format("{{\"room\":{},\"members\":{},\"events\":{},\"last_seq\":{},\"last_activity\":\"{}\"}}",
                     protocol::json_quote(r.room), r.members, r.events, r.last_seq, history::rfc3339(r.last_time_ms));
}

bool room_index::catch_up(history_source& log, std::atomic<bool> const& stop, read_progress const& progress) {
  std::lock_guard lock(mutex_);
  return catch_up_locked(log, stop, progress);
}

bool room_index::catch_up_locked(history_source& log, std::atomic<bool> const& stop, read_progress const& progress) {
  std::string filter = log.subjects("*").events;  // every room's events
  // The stream's own last sequence answers "anything new?" without a lookup
  // across every room's subject: the liveness monitor asks every heartbeat
  // interval.
  auto head = log.stream_last_seq();
  if (!head) return false;
  if (*head + 1 < next_seq_) {
    // Sequences never go back in a stream: this one was deleted and made
    // again, or restored from an older backup (docs/operations.md).
    went_back_ = true;
    return false;
  }
  if (*head < next_seq_) return true;
  std::uint64_t read = 0;
  progress_ticker ticker(progress, *head);
  scan_end end = log.scan(filter, scan_start{next_seq_, 0}, false, stop, [&](stored_message&& m) {
    ticker.tick(++read, m.seq);
    next_seq_ = m.seq + 1;
    auto decoded = log.format().decode_event(m.payload, m.seq);
    if (!decoded) return true;
    entry& room = rooms_[decoded->room];
    room.state = domain::evolve(std::move(room.state), decoded->event);
    ++room.events;
    room.last_time_ms = decoded->event.time_ms;
    return true;
  });
  // Everything up to the head is read (snapshots are not events).
  if (end == scan_end::caught_up) next_seq_ = std::max(next_seq_, *head + 1);
  return end == scan_end::caught_up;
}

std::optional<std::vector<room_overview>> room_index::rooms(history_source& log, std::atomic<bool> const& stop,
                                                            read_progress const& progress) {
  std::lock_guard lock(mutex_);
  if (!catch_up_locked(log, stop, progress)) return std::nullopt;
  std::vector<room_overview> out;
  out.reserve(rooms_.size());
  for (auto const& [name, room] : rooms_)
    out.push_back(room_overview{name, room.state.members.size(), room.events, room.state.last_seq, room.last_time_ms});
  std::sort(out.begin(), out.end(), [](room_overview const& a, room_overview const& b) {
    return a.last_seq != b.last_seq ? a.last_seq > b.last_seq : a.room < b.room;
  });
  return out;
}

std::vector<room_index::placed_member> room_index::members_where(
    std::function<bool(domain::member const&)> const& pick) {
  std::lock_guard lock(mutex_);
  std::vector<placed_member> out;
  for (auto const& [name, room] : rooms_)
    for (auto const& m : room.state.members)
      if (pick(m)) out.push_back(placed_member{name, m});
  return out;
}

domain::room_state room_index::state_of(std::string const& room) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(room);
  return it == rooms_.end() ? domain::room_state{} : it->second.state;
}

}  // namespace sig::service
