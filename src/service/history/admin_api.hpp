#pragma once
// The admin HTTP API (/admin/rooms..., /admin/cluster): which rooms exist,
// who is in one and on which instance, a room's history streamed as jsonl
// (optionally following live events), and the instances with the NATS
// copies of the stream. HTTP-library free: the WebSocket/HTTP adapter
// hands requests in and implements `admin_reply`. Blocking (it reads
// JetStream): the adapter runs `handle` on a worker, never on an io thread.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/history/room_history.hpp"

namespace spdlog { class logger; }

namespace sig::service {

struct admin_settings {
  std::string token;    // empty: the admin API is off
  bool redact = true;   // mask IP addresses in payloads and meta
  std::size_t max_concurrent = 8;  // requests (streams included) at once
};

// How a response goes back. `chunk` blocks until the bytes are written and
// returns false once the client is gone, as does `client_gone()`.
class admin_reply {
 public:
  virtual ~admin_reply() = default;
  virtual void whole(int status, std::string content_type, std::string body,
                     std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  virtual bool begin_stream(std::string content_type) = 0;
  virtual bool chunk(std::string data) = 0;
  virtual void end_stream() = 0;
  virtual std::atomic<bool> const& client_gone() const = 0;
  // Makes client_gone() true: the instance is stopping.
  virtual void cancel() = 0;
};

struct admin_request {
  std::string_view method;  // GET or HEAD
  std::string_view target;  // path and query, as sent
  std::string_view authorization;  // the Authorization header, possibly empty
  std::string_view peer_address;   // for the log
};

class admin_api {
 public:
  // `index`: the instance's fold of every room, shared with the liveness monitor.
  admin_api(admin_settings settings, history_source& log, room_index& index, std::shared_ptr<spdlog::logger> logger);

  bool enabled() const { return !settings_.token.empty(); }
  // The API's own paths (/admin/rooms and below); the rest of /admin/ is the
  // admin page, served as static files.
  static bool is_api_path(std::string_view path);
  // Cheap checks the adapter can make on its io thread before queueing
  // work: admin off, bad token, too many requests. A non-zero status means
  // "answer this whole, now".
  struct quick_answer {
    int status = 0;
    std::string body;
  };
  quick_answer precheck(admin_request const& request);
  // Blocking. Call after a precheck that returned status 0, exactly once.
  void handle(admin_request const& request, admin_reply& reply);
  // Ends every request in progress (following streams included) soon, and
  // refuses new ones. For the instance's shutdown.
  void shutdown();

 private:
  void rooms(std::string_view query, admin_reply& reply);
  void cluster(admin_reply& reply);
  void room(std::string const& room, std::string_view query, admin_reply& reply);
  void history(std::string const& room, std::string_view query, admin_reply& reply);

  admin_settings settings_;
  history_source& log_;
  std::shared_ptr<spdlog::logger> logger_;
  room_index& index_;
  std::atomic<std::size_t> in_flight_{0};
  std::mutex active_mutex_;
  std::set<admin_reply*> active_;
  bool shut_down_ = false;  // under active_mutex_
};

}  // namespace sig::service
