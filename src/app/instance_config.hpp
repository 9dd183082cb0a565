#pragma once
// What one instance is made of, as given (every option of `sigstream serve`
// has a field here, with its default), and once checked: an
// instance_config whose addresses, keys, networks and origin list are
// parsed. The command line fills it (cli/serve_options); nothing here reads
// argv or the environment.
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "adapters/nats/connection.hpp"
#include "adapters/redis/connection.hpp"
#include "admission/client_address.hpp"
#include "auth/join_token.hpp"

namespace sig::app {

struct instance_settings {
  std::string listen = "127.0.0.1:8081";
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string stream = "SIGSTREAM";
  std::string subject_prefix = "sigstream";
  std::string instance_id;
  std::chrono::milliseconds retention_max_age{24 * 3'600'000};
  std::int64_t retention_max_bytes = 1LL << 30;
  std::chrono::milliseconds duplicate_window{120'000};
  std::int64_t stream_replicas = 1;
  std::int64_t threads = 1;
  std::int64_t max_appends_in_flight = 4096;
  std::chrono::milliseconds max_append_delay{250};
  std::int64_t max_frame_bytes = 80 << 10;
  std::int64_t max_meta_bytes = 4 << 10;
  std::int64_t max_data_bytes = 64 << 10;
  std::chrono::milliseconds idle_timeout{30'000};
  std::int64_t write_queue_frames = 1024;
  std::int64_t write_queue_bytes = 4 << 20;
  std::chrono::milliseconds room_linger{10'000};
  std::chrono::milliseconds shutdown_grace{10'000};
  std::string resume_secret;
  std::chrono::milliseconds resume_grace{30'000};
  std::chrono::milliseconds resume_token_lifetime{24 * 3'600'000};
  bool resume = true;
  std::int64_t snapshot_every = 1000;
  std::string auth_keys;
  std::string allowed_origins;
  std::int64_t max_connections = 10'000;
  std::int64_t max_room_peers = 100;
  bool early_first_join = true;  // where the server allows it (room_context.hpp)
  std::chrono::milliseconds join_timeout{10'000};
  std::int64_t signal_rate = 100;
  std::int64_t signal_burst = 200;
  // A crowd behind one address (an office's NAT joining a town hall at
  // 9:00) gets in: 1,000 at once, 100/s after that.
  std::int64_t join_rate = 100;
  std::int64_t join_burst = 1000;
  std::string trusted_proxies = "127.0.0.0/8,::1";
  std::string log_level = "info";
  std::int64_t fault_drop_live_every = 0;
  std::int64_t fault_delay_live_every = 0;
  std::int64_t fault_nats_receive_buffer = 0;
  // The read and liveness connections carry no per-signal traffic.
  bool nats_send_asap = false;
  std::int64_t sync_workers = 8;
  std::string web_root;
  std::string admin_token;
  std::string admin_listen;
  nats::nats_security nats_security;
  std::string redis_user;
  std::string redis_password;
  redis::tls_settings redis_tls;
  bool admin_redact = true;
  std::int64_t admin_workers = 4;
  std::chrono::milliseconds heartbeat_interval{1'000};
  std::chrono::milliseconds instance_timeout{3'000};
  std::chrono::milliseconds stream_check_interval{30'000};
};

struct instance_config {
  instance_settings settings;  // instance_id filled in when not given
  boost::asio::ip::tcp::endpoint listen;
  std::optional<boost::asio::ip::tcp::endpoint> admin_listen;
  std::vector<auth::signing_key> join_keys;
  std::vector<admission::network> trusted_proxies;
  std::vector<std::string> allowed_origins;
};

// The settings checked and parsed, or why not (for "sigstream serve: ...").
std::variant<instance_config, std::string> check_instance_settings(instance_settings s);

}  // namespace sig::app
