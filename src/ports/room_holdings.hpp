#pragma once
// The rooms an instance may hold members in, recorded outside the instance
// so that, if it dies without a word, the survivors know which rooms to
// look into to expire its peers, without reading the whole stream. Written
// when a room starts or stops being followed here: at the rate rooms come
// and go on an instance, never per signal.
#include <functional>
#include <string>

namespace sig::service {

class room_holdings {
 public:
  virtual ~room_holdings() = default;
  // From now on this instance may hold members of the room. `done(true)`
  // once the record is durable; nothing of the room may be appended before.
  // Thread-safe; `done` runs on any thread.
  virtual void hold(std::string const& room_token, std::string const& room_name, std::function<void(bool)> done) = 0;
  // This instance follows the room no more. Thread-safe, non-blocking.
  virtual void release(std::string const& room_token) = 0;
};

}  // namespace sig::service
