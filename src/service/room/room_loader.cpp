#include "service/room/room_loader.hpp"

#include <future>

#include "ports/presence_store.hpp"

namespace sig::service {

std::optional<loaded_room> load_room(event_reads& reads, presence_store* cache, std::string const& room_token,
                                     domain::room_subjects const& subjects) {
  std::optional<cached_room> cached;
  if (cache != nullptr) {
    std::promise<std::optional<cached_room>> promise;
    auto future = promise.get_future();
    cache->load(room_token, [&promise](auto value) { promise.set_value(std::move(value)); });
    cached = future.get();  // bounded by the cache's own timeout
  }
  auto head = reads.last_seq(subjects.events);
  if (!head) return std::nullopt;
  return finish_load(reads, begin_load(reads.format(), cached, *head), subjects);
}

loaded_room begin_load(stored_format const& format, std::optional<cached_room> const& cached, std::uint64_t head) {
  loaded_room out;
  out.head = head;
  // A snapshot newer than the stream comes from another stream (the log
  // was reset): never serve it.
  out.cache_ahead = cached && cached->seq > head;
  if (cached) out.cached_seq = cached->seq;
  if (cached && cached->seq <= head) {
    if (auto state = format.decode_snapshot(cached->snapshot, &out.room_events);
        state && state->last_seq == cached->seq) {
      out.base = std::move(*state);
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
  if (auto snap = reads.last_message(subjects.snapshot); snap && snap->seq > 0) {
    std::uint64_t events = 0;
    auto state = reads.format().decode_snapshot(snap->payload, &events);
    if (state && state->last_seq <= out.head && state->last_seq > out.base.last_seq) {
      out.base = std::move(*state);
      out.room_events = events;
      out.from_stream_snapshot = true;
    }
  }
  auto events = reads.read(subjects.events, out.base.last_seq + 1, out.head);
  if (!events) return std::nullopt;
  out.events = std::move(*events);
  return out;
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
