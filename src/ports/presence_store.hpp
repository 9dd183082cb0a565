#pragma once
// The port to the presence cache: per room, a membership snapshot and the
// stream sequence it reflects. Only a cache: a failure is the adapter's to
// log and count, and the caller falls back to replaying the stream. The
// Redis adapter (adapters/redis/presence_cache) implements it.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace sig::service {

struct cached_room {
  std::uint64_t seq = 0;
  std::string snapshot;  // RoomSnapshot bytes
};

class presence_store {
 public:
  virtual ~presence_store() = default;
  // `done` runs on the store's own thread or strand (hand it off). nullopt: nothing
  // cached, or the cache unreachable.
  virtual void load(std::string room_token, std::function<void(std::optional<cached_room>)> done) = 0;
  // Writes unless the cache already holds a snapshot at `seq` or newer: an
  // update that arrives late never overwrites a newer one.
  virtual void store(std::string room_token, std::uint64_t seq, std::string snapshot) = 0;
  // Writes whatever is there: for an entry found *ahead* of the stream (the
  // stream was reset), which the compare-and-set would otherwise keep.
  virtual void replace(std::string room_token, std::uint64_t seq, std::string snapshot) = 0;
};

}  // namespace sig::service
