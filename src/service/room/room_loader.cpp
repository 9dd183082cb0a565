#include "service/room/room_loader.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>

#include "ports/presence_store.hpp"

namespace sig::service {

namespace {
constexpr auto cache_load_bound = std::chrono::seconds(2);
}  // namespace

std::optional<loaded_room> load_room(event_reads& reads, presence_store* cache, std::string const& room_token,
                                     domain::room_subjects const& subjects) {
  std::optional<cached_room> cached;
  if (cache != nullptr) {
    // The cache answers within its own timeout while the instance runs; the
    // bound here is for an instance stopping, whose loop no longer runs.
    auto promise = std::make_shared<std::promise<std::optional<cached_room>>>();
    auto future = promise->get_future();
    cache->load(room_token, [promise](auto value) { promise->set_value(std::move(value)); });
    if (future.wait_for(cache_load_bound) == std::future_status::ready) cached = future.get();
  }
  auto head = reads.last_seq(subjects.events);
  if (!head) return std::nullopt;
  return finish_load(reads, begin_load(reads.format(), cached, *head), subjects);
}

namespace {
bool holds_any(domain::room_state const& state, std::vector<std::string> const& peers) {
  return std::any_of(peers.begin(), peers.end(), [&](std::string const& peer) { return state.has(peer); });
}
}  // namespace

loaded_room begin_load(stored_format const& format, std::optional<cached_room> const& cached, std::uint64_t head,
                       std::vector<std::string> joining) {
  loaded_room out;
  out.head = head;
  out.joining = std::move(joining);
  // A snapshot newer than the stream comes from another stream (the log
  // was reset): never serve it.
  out.cache_ahead = cached && cached->seq > head;
  if (cached) out.cached_seq = cached->seq;
  if (cached && cached->seq <= head) {
    std::uint64_t events = 0;
    if (auto state = format.decode_snapshot(cached->snapshot, &events);
        state && state->last_seq == cached->seq && !holds_any(*state, out.joining)) {
      out.base = std::move(*state);
      out.room_events = events;
      out.from_cache = true;
    }
  }
  out.cache_needs_repair = !out.from_cache || out.base.last_seq < head;
  return out;
}

// Nothing to read when Redis is up to the head, or the room has no event
// yet; a snapshot ahead of the head is checked against the stream again.
bool needs_reads(loaded_room const& room) {
  return room.cache_ahead || (room.head != 0 && !(room.from_cache && room.base.last_seq == room.head));
}

std::optional<loaded_room> finish_load(event_reads& reads, loaded_room out, domain::room_subjects const& subjects) {
  // The head and the snapshot are read side by side: another instance may
  // append and update Redis between the two. Only a head that is still
  // behind the snapshot now means the stream was reset.
  if (out.cache_ahead) {
    auto now = reads.last_seq(subjects.events);
    if (!now) return std::nullopt;
    if (*now >= out.cached_seq) {
      out.cache_ahead = false;
      out.cache_needs_repair = false;  // Redis is newer than this load: leave it
    }
  }
  if (!needs_reads(out)) return out;
  // The stream's own snapshot bounds the replay when Redis has nothing
  // newer (it is empty, stale or down).
  if (auto snap = reads.last_message(subjects.snapshot)) take_stream_snapshot(reads.format(), out, *snap);
  auto events = reads.read(subjects.events, out.base.last_seq + 1, out.head);
  if (!events) return std::nullopt;
  out.events = std::move(*events);
  return out;
}

void take_stream_snapshot(stored_format const& format, loaded_room& room, stored_message const& snap) {
  if (snap.seq == 0) return;
  std::uint64_t events = 0;
  auto state = format.decode_snapshot(snap.payload, &events);
  if (state && state->last_seq <= room.head && state->last_seq > room.base.last_seq && !holds_any(*state, room.joining)) {
    room.base = std::move(*state);
    room.room_events = events;
    room.from_stream_snapshot = true;
  }
}

namespace {

// One read after another, each sent from the caller's strand once the
// previous answer is there.
struct event_chain : std::enable_shared_from_this<event_chain> {
  event_store& store;
  std::string subject;
  std::uint64_t to;
  std::size_t max_messages;
  hop_fn hop;
  std::function<void(std::optional<std::vector<stored_message>>)> done;
  std::vector<stored_message> read;

  event_chain(event_store& s, std::string subj, std::uint64_t last, std::size_t most, hop_fn h,
              std::function<void(std::optional<std::vector<stored_message>>)> d)
      : store(s), subject(std::move(subj)), to(last), max_messages(most), hop(std::move(h)), done(std::move(d)) {}

  void next(std::uint64_t from) {
    auto self = shared_from_this();
    bool sent = store.read_next(subject, from, [self](std::optional<stored_message> message) {
      self->hop([self, message = std::move(message)]() mutable { self->take(std::move(message)); });
    });
    if (!sent) done(std::nullopt);
  }

  void take(std::optional<stored_message> message) {
    if (!message) return done(std::nullopt);
    // Nothing more on the subject, or only what came after the head (the
    // live feed brings that): all there is.
    if (message->seq == 0 || message->seq > to) return done(std::move(read));
    std::uint64_t seq = message->seq;
    read.push_back(std::move(*message));
    if (seq >= to) return done(std::move(read));
    if (read.size() >= max_messages) return done(std::nullopt);
    next(seq + 1);
  }
};

}  // namespace

void read_events_async(event_store& store, std::string subject, std::uint64_t from, std::uint64_t to,
                       std::size_t max_messages, hop_fn hop,
                       std::function<void(std::optional<std::vector<stored_message>>)> done) {
  if (from > to) return done(std::vector<stored_message>{});
  auto chain = std::make_shared<event_chain>(store, std::move(subject), to, max_messages, std::move(hop), std::move(done));
  chain->next(from);
}

namespace {

// The stream's snapshot first, then the events after the base; the room
// travels along, owned here, until `done` has it.
struct async_load : std::enable_shared_from_this<async_load> {
  event_store& store;
  loaded_room room;
  std::string events_subject;
  std::size_t max_events;
  hop_fn hop;
  std::function<void(std::optional<loaded_room>)> done;

  async_load(event_store& s, loaded_room r, std::string subject, std::size_t most, hop_fn h,
             std::function<void(std::optional<loaded_room>)> d)
      : store(s), room(std::move(r)), events_subject(std::move(subject)), max_events(most), hop(std::move(h)),
        done(std::move(d)) {}

  void start(std::string const& snapshot_subject) {
    auto self = shared_from_this();
    bool sent = store.read_newest(snapshot_subject, [self](std::optional<stored_message> snap) {
      self->hop([self, snap = std::move(snap)]() mutable { self->take_snapshot(std::move(snap)); });
    });
    if (!sent) done(std::nullopt);
  }

  void take_snapshot(std::optional<stored_message> snap) {
    if (!snap) return done(std::nullopt);
    take_stream_snapshot(store.format(), room, *snap);
    read_events_async(store, events_subject, room.base.last_seq + 1, room.head, max_events, hop,
                      [self = shared_from_this()](std::optional<std::vector<stored_message>> read) {
                        if (!read) return self->done(std::nullopt);
                        self->room.events = std::move(*read);
                        self->done(std::move(self->room));
                      });
  }
};

}  // namespace

void finish_load_async(event_store& store, loaded_room room, domain::room_subjects const& subjects,
                       std::size_t max_events, hop_fn hop, std::function<void(std::optional<loaded_room>)> done) {
  if (room.cache_ahead) return done(std::nullopt);  // rare: the blocking way looks again
  std::make_shared<async_load>(store, std::move(room), subjects.events, max_events, std::move(hop), std::move(done))
      ->start(subjects.snapshot);
}

domain::room_state fold_loaded(stored_format const& format, loaded_room const& room, std::string const& room_name) {
  domain::room_state state = room.base;
  for (auto const& stored : room.events) {
    auto decoded = format.decode_event(stored.payload, stored.seq);
    if (!decoded || decoded->room != room_name) continue;
    state = domain::evolve(std::move(state), decoded->event);
  }
  return state;
}

}  // namespace sig::service
