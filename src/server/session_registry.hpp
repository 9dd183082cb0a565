#pragma once
// Every open WebSocket session of an instance, so that a draining instance
// can ask each client to move elsewhere. Thread-safe.
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace sig::server {

class ws_session;

class session_registry {
 public:
  void add(std::shared_ptr<ws_session> const& session);
  void remove(ws_session const* session);
  // Closes every session with 1012 (service restart): the instance is
  // draining and clients should reconnect to another one.
  void move_all_elsewhere();
  bool empty();
  // Runs (on the thread of the last session's end) each time the registry
  // becomes empty: a draining instance waits for that.
  void on_empty(std::function<void()> callback);

 private:
  std::mutex mutex_;
  std::map<ws_session const*, std::weak_ptr<ws_session>> sessions_;
  std::function<void()> on_empty_;
};

}  // namespace sig::server
