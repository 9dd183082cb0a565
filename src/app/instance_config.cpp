#include "app/instance_config.hpp"

#include <unistd.h>

#include <cctype>
#include <sstream>

#include "domain/room_name.hpp"

namespace sig::app {

namespace {

std::string default_instance_id() {
  char host[64] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

std::optional<boost::asio::ip::tcp::endpoint> parse_listen(std::string const& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return std::nullopt;
  try {
    int port = std::stoi(text.substr(colon + 1));
    if (port < 0 || port > 65535) return std::nullopt;
    return boost::asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port));
  } catch (...) {
    return std::nullopt;
  }
}

bool valid_stream_name(std::string const& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

}  // namespace

std::variant<instance_config, std::string> check_instance_settings(instance_settings s) {
  std::ostringstream why;
  auto refuse = [&why] { return std::variant<instance_config, std::string>(why.str()); };
  if (s.instance_id.empty()) s.instance_id = default_instance_id();
  auto where = parse_listen(s.listen);
  if (!where) {
    why << "--listen '" << s.listen << "' is not HOST:PORT";
    return refuse();
  }
  std::optional<boost::asio::ip::tcp::endpoint> admin_where;
  if (!s.admin_listen.empty()) {
    admin_where = parse_listen(s.admin_listen);
    if (!admin_where) {
      why << "--admin-listen '" << s.admin_listen << "' is not HOST:PORT";
      return refuse();
    }
  }
  if (!valid_stream_name(s.stream)) {
    why << "--stream '" << s.stream << "' must be 1-64 of A-Z a-z 0-9 - _";
    return refuse();
  }
  if (!domain::is_valid_subject_prefix(s.subject_prefix)) {
    why << "--subject-prefix '" << s.subject_prefix
        << "' must be dot-separated tokens of A-Z a-z 0-9 - _";
    return refuse();
  }
  if (s.heartbeat_interval.count() < 100 || s.instance_timeout < 2 * s.heartbeat_interval) {
    why << "--instance-timeout must be at least twice --heartbeat-interval (at least 100ms)";
    return refuse();
  }
  if (s.stream_check_interval.count() < 100) {
    why << "--stream-check-interval must be at least 100ms";
    return refuse();
  }
  if (s.resume && (s.resume_grace.count() < 100 || s.resume_token_lifetime < s.resume_grace)) {
    why << "--resume-grace must be at least 100ms and --resume-token-lifetime at least as long";
    return refuse();
  }
  std::vector<auth::signing_key> join_keys;
  if (!s.auth_keys.empty()) {
    std::string error;
    auto keys = auth::parse_keys(s.auth_keys, &error);
    if (!keys) {
      why << "--auth-keys (SIGSTREAM_AUTH_KEYS): " << error;
      return refuse();
    }
    join_keys = std::move(*keys);
  }
  std::string proxies_error;
  auto trusted_proxies = admission::parse_networks(s.trusted_proxies, &proxies_error);
  if (!trusted_proxies) {
    why << "--trusted-proxies: " << proxies_error;
    return refuse();
  }
  if (s.join_rate < 0 || s.join_burst < 1) {
    why << "--join-rate must be 0 (no limit) or more, --join-burst at least 1";
    return refuse();
  }
  if (s.fault_nats_receive_buffer < 0 || s.fault_nats_receive_buffer > (1 << 30)) {
    why << "--fault-nats-receive-buffer must be 0 (the kernel's) to 1GiB";
    return refuse();
  }
  if (s.max_frame_bytes < s.max_data_bytes + 1024 || s.max_meta_bytes < 2 || s.max_data_bytes < 1) {
    why << "--max-frame-bytes must exceed --max-data-bytes by at least 1KiB";
    return refuse();
  }
  instance_config config;
  config.listen = *where;
  config.admin_listen = admin_where;
  config.join_keys = std::move(join_keys);
  config.trusted_proxies = std::move(*trusted_proxies);
  for (auto origin : admission::comma_list(s.allowed_origins)) config.allowed_origins.emplace_back(origin);
  config.settings = std::move(s);
  return config;
}

}  // namespace sig::app
