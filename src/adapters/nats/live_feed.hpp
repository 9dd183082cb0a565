#pragma once
// Following rooms live: one core subscription per followed room on the
// stream's republished copy of its events, <prefix>.live.<token>.e (the
// stream's RePublish rule). A room is followed only where it has local
// peers, so an instance receives only the traffic its own peers need.
//
// Messages are offered by the data connection's loop (take()), matched to
// their room by subject and handed to its callback right there, on the
// loop's strand: no delivery thread, no queue. Thread-safe.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "ports/event_store.hpp"

struct __natsMsg;
struct __natsSubscription;

namespace sig::nats {

class connection;

class live_feed {
 public:
  live_feed(connection& conn, std::string subject_prefix, std::function<void(__natsMsg*)> spent);
  ~live_feed();
  live_feed(live_feed const&) = delete;
  live_feed& operator=(live_feed const&) = delete;

  // Subscribes now (non-blocking: the SUB goes out with the loop's next
  // write). Null if the connection refuses (closed).
  std::unique_ptr<service::live_follow> follow(std::string const& room_token,
                                               std::function<void(service::live_message)> on_message);

  // A message of the connection: true if it belonged to a followed room
  // (then delivered, and handed to `spent`).
  bool take(__natsMsg* msg);
  // Without inline delivery: delivers what nats.c queued to each
  // subscription. Runs on the loop's strand after every read pass.
  void drain_queued();

  std::size_t followed() const;

 private:
  struct follower;
  struct registry;
  class handle;
  void deliver(follower& f, __natsMsg* msg);
  void fail(std::error_code ec, std::string_view what) const;

  connection& conn_;
  std::string prefix_;  // "<prefix>.live."
  std::function<void(__natsMsg*)> spent_;
  // Shared with the handles, which may outlive the feed (a room freed with
  // the handlers of a stopped io_context): theirs is a weak reference.
  std::shared_ptr<registry> registry_;
  std::atomic<bool> header_fallback_logged_{false};
};

}  // namespace sig::nats
