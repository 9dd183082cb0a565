#pragma once
// What every client connection of an instance shares. Owned by the instance.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "admission/address_limiter.hpp"
#include "admission/client_address.hpp"
#include "auth/join_token.hpp"
#include "protocol/messages.hpp"

namespace spdlog { class logger; }
namespace sig::service { class room_directory; struct metrics; class admin_api; }

namespace sig::server {

class static_files;
class session_registry;

struct connection_limits {
  std::size_t max_frame_bytes = 80 * 1024;  // over it: close 1009
  std::size_t write_queue_frames = 1024;    // a client this far behind is closed
  std::size_t write_queue_bytes = 4 * 1024 * 1024;
  std::chrono::seconds idle_timeout{30};    // pings go out at half of it
  std::chrono::seconds handshake_timeout{10};
  protocol::limits message;
  std::size_t max_connections = 10'000;       // WebSocket upgrades past it get 503
  std::chrono::milliseconds join_timeout{10'000};  // a connection that never joins is closed (1008)
  // Signals per connection: a token bucket. Over it: `rate-limited`; a
  // client that keeps going (abuse_strikes refusals within a second of each
  // other) is closed with 1008.
  double signal_rate = 100;
  double signal_burst = 200;
  int abuse_strikes = 20;
  // Browser origins allowed to open WebSockets; empty: any. A request
  // without an Origin header (not a browser) is not an origin check's
  // business.
  std::vector<std::string> allowed_origins;
  // Proxies whose X-Forwarded-For is believed (HAProxy in front); the
  // per-address limits count the client address they report.
  std::vector<admission::network> trusted_proxies;
};

// What one listening address serves. `all`: everything on one port (the
// default). With a separate admin address, the public one serves `clients`
// (/ws, the web pages, health) and the admin one `operators` (the admin API
// and page, /metrics, health), so neither is reachable from the other.
enum class endpoint_role { all, clients, operators };

struct connection_context {
  service::room_directory& directory;
  service::metrics& counters;
  std::shared_ptr<spdlog::logger> logger;
  std::string instance_id;
  connection_limits limits;
  std::function<bool()> ready;          // can the event log take requests now?
  std::function<std::string()> metrics_text;
  std::shared_ptr<static_files const> web;  // null: no web root configured
  service::admin_api* admin = nullptr;      // null: no admin API at all
  // Runs blocking admin work off the io threads.
  std::function<void(std::function<void()>)> run_admin;
  session_registry* sessions = nullptr;  // null: nobody drains
  std::atomic<bool> const* draining = nullptr;  // true: stopping; refuse new work
  // Verifies `resume` tokens (the rooms issue them with the same secret).
  // Empty: resume is off.
  std::string resume_secret;
  // Join keys (HS256): a join needs a token signed with one of them. Empty:
  // the service is open.
  std::vector<auth::signing_key> join_keys;
  // Joins per second per client address; null: unlimited.
  admission::address_limiter* join_limiter = nullptr;
  endpoint_role role = endpoint_role::all;
  bool is_draining() const { return draining != nullptr && draining->load(); }
  bool serves_clients() const { return role != endpoint_role::operators; }
  bool serves_operators() const { return role != endpoint_role::clients; }
};

}  // namespace sig::server
