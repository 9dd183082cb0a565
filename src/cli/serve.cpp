// `sigstream serve`: the composition root of one instance. Builds the
// adapters, wires them to the rooms, and runs until SIGINT or SIGTERM.
#include <sys/random.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <iostream>
#include <thread>

#include "adapters/nats/data_connection.hpp"
#include "adapters/nats/event_log.hpp"
#include "adapters/nats/holdings_registry.hpp"
#include "adapters/nats/nats_event_store.hpp"
#include "adapters/redis/presence_cache.hpp"
#include "adapters/ws/listener.hpp"
#include "adapters/ws/session_registry.hpp"
#include "adapters/ws/static_files.hpp"
#include "admission/address_limiter.hpp"
#include "admission/client_address.hpp"
#include "auth/hmac.hpp"
#include "auth/join_token.hpp"
#include "cli/commands.hpp"
#include "auth/url_credentials.hpp"
#include "cli/logging.hpp"
#include "cli/nats_security_options.hpp"
#include "cli/options.hpp"
#include "cli/process_metrics.hpp"
#include "domain/room_name.hpp"
#include "service/admin_api.hpp"
#include "service/liveness_monitor.hpp"
#include "service/room_context.hpp"
#include "service/room_directory.hpp"

namespace sig::cli {

namespace asio = boost::asio;

namespace {

struct serve_settings {
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
};

std::string default_instance_id() {
  char host[64] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

std::optional<asio::ip::tcp::endpoint> parse_listen(std::string const& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return std::nullopt;
  try {
    int port = std::stoi(text.substr(colon + 1));
    if (port < 0 || port > 65535) return std::nullopt;
    return asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port));
  } catch (...) {
    return std::nullopt;
  }
}

// A source checkout keeps its web root beside the build directory.
std::string default_web_root() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  auto candidate = exe.parent_path().parent_path() / "web";
  return std::filesystem::is_directory(candidate, ec) ? candidate.string() : std::string();
}

std::string random_nonce() {
  std::uint64_t value = 0;
  while (getrandom(&value, sizeof value, 0) != sizeof value) {
  }
  return fmt::format("{:016x}", value);
}

bool valid_stream_name(std::string const& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

}  // namespace

int serve_command(int argc, char** argv) {
  // Here, not in main(): nats.c starts its own threads when opened, and the
  // history tools must block SIGINT before any thread exists (stream_tools).
  nats::open_library();
  serve_settings s;
  options opts("serve",
               "Run one sigstream instance: WebSocket signaling on /ws (docs/protocol.md), /healthz, /readyz and\n"
               "/metrics on the same port. Any number of instances share one NATS JetStream stream.");
  // Declared in the groups --help shows, in this order.
  opts.group("Network");
  opts.add_string("listen", &s.listen, "Address and port for WebSocket and HTTP (HOST:PORT).");
  opts.add_string("instance-id", &s.instance_id, "This instance's id, in logs and events (default: HOSTNAME-PID).");
  opts.add_string("web-root", &s.web_root,
                  "Directory of static files served on the same port (read once at start-up). Default: the "
                  "checkout's web/ when the binary runs from a build directory; otherwise none.");
  opts.group("NATS (the event log)");
  opts.add_string("nats-url", &s.nats_url,
                  "NATS server with JetStream enabled, or the servers of a JetStream cluster, comma-separated "
                  "(nats://a:4222,nats://b:4222,nats://c:4222): each connection moves to another when its own goes.");
  declare_nats_security(opts, &s.nats_security);
  opts.add_string("stream", &s.stream, "JetStream stream holding every room's events; created if absent, never changed if present.");
  opts.add_string("subject-prefix", &s.subject_prefix, "Subject prefix: a room's events go to PREFIX.room.<room token>.e, live copies to PREFIX.live.>.");
  opts.add_duration("retention-max-age", &s.retention_max_age, "History kept when the stream is created (0: forever).");
  opts.add_size("retention-max-bytes", &s.retention_max_bytes, "Stream size limit when the stream is created (-1: none).");
  opts.add_flag("nats-send-asap", &s.nats_send_asap,
                "For the read and liveness NATS connections: write each request at once instead of batching writes "
                "for up to 1 ms. The data connection (appends, live feeds) always writes once per I/O loop turn.");
  opts.add_duration("duplicate-window", &s.duplicate_window, "JetStream dedup window for retried appends, when the stream is created.");
  opts.add_int("stream-replicas", &s.stream_replicas,
               "Copies of the stream and of sigstream's key-value buckets in a JetStream cluster (3 or 5), when "
               "they are created; an existing stream keeps its own (a warning says when it has fewer).");
  opts.group("Redis (the presence cache)");
  opts.add_string("redis-url", &s.redis_url,
                  "Redis for the presence cache (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]); empty runs without it "
                  "(joins replay the stream).");
  opts.add_string("redis-user", &s.redis_user, "Redis ACL user (with --redis-password).");
  opts.add_string("redis-password", &s.redis_password,
                  "Redis password (AUTH); overrides the URL's. Prefer the environment variable.");
  opts.add_flag("redis-tls", &s.redis_tls.enabled, "Connect to Redis over TLS (a rediss:// URL does too).");
  opts.add_string("redis-tls-ca", &s.redis_tls.ca_file,
                  "CA file (PEM) that signed Redis's certificate; turns TLS on.");
  opts.add_string("redis-tls-cert", &s.redis_tls.cert_file,
                  "Client certificate (PEM) for a Redis that verifies clients (tls-auth-clients), with --redis-tls-key.");
  opts.add_string("redis-tls-key", &s.redis_tls.key_file, "Private key (PEM) of --redis-tls-cert.");
  opts.group("Security");
  opts.add_string("auth-keys", &s.auth_keys,
                  "Join keys KID:SECRET,... (HMAC-SHA256): every join needs a JWT (HS256) signed with one of them; the "
                  "first signs (sigstream token). Empty: anyone can join any room. Prefer the environment variable.");
  opts.add_string("allowed-origins", &s.allowed_origins,
                  "Comma-separated browser origins (https://app.example.com) allowed to open WebSockets; others get "
                  "403. Empty: any origin (a warning when join keys are off too).");
  opts.add_string("trusted-proxies", &s.trusted_proxies,
                  "Comma-separated addresses or networks (ADDRESS/PREFIX) of proxies whose X-Forwarded-For names "
                  "the client (HAProxy in front); from anyone else the header is ignored.");
  opts.group("Limits");
  opts.add_size("max-frame-bytes", &s.max_frame_bytes, "Largest WebSocket message; a larger one closes the connection with 1009.");
  opts.add_size("max-meta-bytes", &s.max_meta_bytes, "Largest `meta` of a join, serialized (too-large).");
  opts.add_size("max-data-bytes", &s.max_data_bytes, "Largest `data` of a signal, serialized (too-large).");
  opts.add_duration("idle-timeout", &s.idle_timeout, "A connection silent this long is closed; pings go out at half of it.");
  opts.add_int("write-queue-frames", &s.write_queue_frames, "Frames queued to one client before it is closed as a slow consumer (1013).");
  opts.add_size("write-queue-bytes", &s.write_queue_bytes, "Bytes queued to one client before it is closed as a slow consumer (1013).");
  opts.add_int("max-connections", &s.max_connections, "WebSocket connections this instance holds at most; more get 503.");
  opts.add_int("max-room-peers", &s.max_room_peers, "Members a room may hold; more joins get room-full.");
  opts.add_duration("join-timeout", &s.join_timeout, "A connection that has not joined a room this long after opening is closed (1008).");
  opts.add_int("signal-rate", &s.signal_rate,
               "Signals per second a connection may send (token bucket); over it: rate-limited, and a client that "
               "keeps going (20 refusals in a row) is closed with 1008.");
  opts.add_int("signal-burst", &s.signal_burst, "Signals a connection may send at once, saved up at --signal-rate.");
  opts.add_int("join-rate", &s.join_rate,
               "Joins per second from one client address (token bucket, per instance); over it: rate-limited "
               "(0: no limit).");
  opts.add_int("join-burst", &s.join_burst, "Joins one client address may make at once, saved up at --join-rate.");
  opts.group("Resume");
  opts.add_flag("resume", &s.resume, "Issue resume tokens and keep a peer whose connection dropped for --resume-grace.");
  opts.add_string("resume-secret", &s.resume_secret,
                  "Secret that signs resume tokens; every instance needs the same. Empty: a random one is made once "
                  "and shared through NATS (bucket <stream>_CLUSTER). Prefer the environment variable.");
  opts.add_duration("resume-grace", &s.resume_grace,
                    "How long a peer whose connection dropped stays in its room, able to resume; then it leaves (expired).");
  opts.add_duration("resume-token-lifetime", &s.resume_token_lifetime,
                    "How long a resume token is good for after its connection's join or last resume.");
  opts.group("Liveness and shutdown");
  opts.add_duration("room-linger", &s.room_linger, "How long an instance keeps following a room after its last local peer left.");
  opts.add_duration("shutdown-grace", &s.shutdown_grace,
                    "On SIGTERM, how long to wait for clients (told to reconnect elsewhere, 1012) to resume on other "
                    "instances; peers still here then leave (expired).");
  opts.add_duration("heartbeat-interval", &s.heartbeat_interval, "How often this instance writes its heartbeat.");
  opts.add_duration("instance-timeout", &s.instance_timeout,
                    "An instance whose heartbeat stands still this long is taken for dead, and its peers leave with "
                    "reason expired. Use the same value on every instance.");
  opts.group("Operators: admin API and logs");
  opts.add_string("admin-token", &s.admin_token,
                  "Bearer token of the admin API (/admin/rooms...); empty: the admin API is off. Prefer the "
                  "environment variable: a flag shows in the process list.");
  opts.add_string("admin-listen", &s.admin_listen,
                  "Separate address (HOST:PORT, e.g. a private interface) for the admin API and page and /metrics; "
                  "they are then not served on --listen. Empty: everything on --listen.");
  opts.add_flag("admin-redact", &s.admin_redact, "Mask IP addresses (SDP, ICE candidates, meta) in admin API answers.");
  opts.add_int("admin-workers", &s.admin_workers,
               "Admin API requests served at once (a followed history holds one until its client goes).");
  opts.add_string("log-level", &s.log_level, "trace, debug, info, warn, error or off.");
  opts.group("Tuning");
  opts.add_int("threads", &s.threads,
               "I/O threads (0: one per CPU core). One thread runs sessions, rooms and the NATS data connection "
               "with no hand-off between threads; more add hand-offs (docs/threading.md).");
  opts.add_int("max-appends-in-flight", &s.max_appends_in_flight,
               "Joins and signals waiting for JetStream's acknowledgement at once; past it they are answered "
               "`unavailable` at once instead of queueing (leaves and resumes are never refused for load).");
  opts.add_duration("max-append-delay", &s.max_append_delay,
                    "Joins and signals are answered `unavailable` at once while the oldest append has waited this long "
                    "for JetStream's acknowledgement: NATS, or this instance's reading of it, is behind, and taking "
                    "more would only lengthen every peer's wait (0: no such limit).");
  opts.add_int("sync-workers", &s.sync_workers,
               "Threads for blocking NATS work (room rebuilds that replay events, catch-ups); they wait on the "
               "network, not the CPU.");
  opts.add_int("snapshot-every", &s.snapshot_every,
               "Write a room's membership snapshot to the stream every this many events of the room, so a room is "
               "rebuilt from at most this many events whatever its age (0: never).");
  opts.group("Testing only: fault injection (never in production)", /*hidden=*/true);
  opts.add_int("fault-drop-live-every", &s.fault_drop_live_every,
               "Testing only: drop every Nth live message to exercise gap recovery (0: off).");
  opts.add_int("fault-delay-live-every", &s.fault_delay_live_every,
               "Testing only: hold every Nth live message for 3 ms, so the feed arrives out of order (0: off).");
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  if (s.instance_id.empty()) s.instance_id = default_instance_id();
  auto where = parse_listen(s.listen);
  if (!where) {
    std::cerr << "sigstream serve: --listen '" << s.listen << "' is not HOST:PORT\n";
    return 2;
  }
  std::optional<asio::ip::tcp::endpoint> admin_where;
  if (!s.admin_listen.empty()) {
    admin_where = parse_listen(s.admin_listen);
    if (!admin_where) {
      std::cerr << "sigstream serve: --admin-listen '" << s.admin_listen << "' is not HOST:PORT\n";
      return 2;
    }
  }
  if (!valid_stream_name(s.stream)) {
    std::cerr << "sigstream serve: --stream '" << s.stream << "' must be 1-64 of A-Z a-z 0-9 - _\n";
    return 2;
  }
  if (!domain::is_valid_subject_prefix(s.subject_prefix)) {
    std::cerr << "sigstream serve: --subject-prefix '" << s.subject_prefix
              << "' must be dot-separated tokens of A-Z a-z 0-9 - _\n";
    return 2;
  }
  if (s.heartbeat_interval.count() < 100 || s.instance_timeout < 2 * s.heartbeat_interval) {
    std::cerr << "sigstream serve: --instance-timeout must be at least twice --heartbeat-interval (at least 100ms)\n";
    return 2;
  }
  if (s.resume && (s.resume_grace.count() < 100 || s.resume_token_lifetime < s.resume_grace)) {
    std::cerr << "sigstream serve: --resume-grace must be at least 100ms and --resume-token-lifetime at least as long\n";
    return 2;
  }
  std::vector<auth::signing_key> join_keys;
  if (!s.auth_keys.empty()) {
    std::string error;
    auto keys = auth::parse_keys(s.auth_keys, &error);
    if (!keys) {
      std::cerr << "sigstream serve: --auth-keys (SIGSTREAM_AUTH_KEYS): " << error << "\n";
      return 2;
    }
    join_keys = std::move(*keys);
  }
  std::string proxies_error;
  auto trusted_proxies = admission::parse_networks(s.trusted_proxies, &proxies_error);
  if (!trusted_proxies) {
    std::cerr << "sigstream serve: --trusted-proxies: " << proxies_error << "\n";
    return 2;
  }
  if (s.join_rate < 0 || s.join_burst < 1) {
    std::cerr << "sigstream serve: --join-rate must be 0 (no limit) or more, --join-burst at least 1\n";
    return 2;
  }
  if (s.max_frame_bytes < s.max_data_bytes + 1024 || s.max_meta_bytes < 2 || s.max_data_bytes < 1) {
    std::cerr << "sigstream serve: --max-frame-bytes must exceed --max-data-bytes by at least 1KiB\n";
    return 2;
  }

  log_factory logs(s.instance_id, s.log_level);
  if (!logs.level_ok()) {
    std::cerr << "sigstream serve: --log-level '" << s.log_level << "' is not one of trace, debug, info, warn, error, off\n";
    return 2;
  }
  auto main_log = logs.make("main");
  unsigned threads = s.threads > 0 ? static_cast<unsigned>(s.threads) : std::max(1u, std::thread::hardware_concurrency());

  // Destroyed explicitly at the end, while everything its handlers refer to
  // (sessions hold rooms, rooms hold the contexts) is still alive.
  auto io_holder = std::make_unique<asio::io_context>(static_cast<int>(threads));
  asio::io_context& io = *io_holder;
  asio::thread_pool blocking(static_cast<std::size_t>(std::max<std::int64_t>(s.sync_workers, 1)));
  service::metrics counters;

  // Three NATS connections, one per kind of traffic (docs/threading.md):
  // appends and live feeds on the I/O loop; blocking reads (rebuilds,
  // catch-ups, snapshots, the admin API); and liveness. Named fields:
  // positional ones once set send_asap from a 0.
  auto log_settings_for = [&](std::string role) {
    return nats::log_settings{.url = s.nats_url,
                              .security = s.nats_security,
                              .stream = s.stream,
                              .subject_prefix = s.subject_prefix,
                              .max_age = std::chrono::duration_cast<std::chrono::seconds>(s.retention_max_age),
                              .max_bytes = s.retention_max_bytes,
                              .duplicate_window = std::chrono::duration_cast<std::chrono::seconds>(s.duplicate_window),
                              .replicas = static_cast<int>(std::clamp<std::int64_t>(s.stream_replicas, 1, 5)),
                              .client_name = "sigstream " + s.instance_id + " (" + role + ")",
                              .create_stream = true,
                              .send_asap = s.nats_send_asap,
                              .connect_attempts = 0};
  };
  nats::event_log log(log_settings_for("reads"), logs.make("nats"));
  auto control_settings = log_settings_for("liveness");
  control_settings.advise = false;  // the reads connection reports on the stream
  nats::event_log control(std::move(control_settings), logs.make("nats"));
  // Both hold Asio objects of `io`: destroyed explicitly before it.
  auto data_holder = std::make_unique<nats::data_connection>(io,
                             nats::connection_settings{.url = s.nats_url,
                                                       .security = s.nats_security,
                                                       .name = "sigstream " + s.instance_id + " (data)",
                                                       .send_asap = true,
                                                       .connect_attempts = 0},
                             s.subject_prefix,
                             nats::appender_settings{.max_in_flight = static_cast<std::size_t>(
                                                         std::max<std::int64_t>(s.max_appends_in_flight, 1)),
                                                     .max_delay = s.max_append_delay},
                             logs.make("nats"));
  nats::data_connection& data = *data_holder;
  nats::nats_event_store store(data, log);
  // Rooms followed here are recorded for the survivors: kept 10 minutes
  // after the room's last follower here, rewritten every 8 h (the records
  // expire after a day).
  auto holdings_holder = std::make_unique<nats::holdings_registry>(io, data.appends(), nats::holdings_bucket(s.stream),
                                                                   s.instance_id, std::chrono::minutes(10),
                                                                   std::chrono::hours(8));
  nats::holdings_registry& holdings = *holdings_holder;
  std::unique_ptr<redis::presence_cache> cache;
  if (!s.redis_url.empty())
    cache = std::make_unique<redis::presence_cache>(
        redis::cache_settings{.url = s.redis_url, .user = s.redis_user, .password = s.redis_password,
                              .tls = s.redis_tls, .key_prefix = "sigstream:" + s.stream, .timeout = std::chrono::milliseconds(500),
                              .entry_ttl = std::chrono::seconds(24 * 3600)},
        logs.make("redis"));

  service::room_directory directory;
  service::held_peers held;
  service::room_context room_ctx{io, blocking, store, cache.get(), directory, counters, logs.make("room"), s.instance_id};
  room_ctx.held = &held;
  room_ctx.holdings = &holdings;
  room_ctx.linger = s.room_linger;
  room_ctx.resume_grace = s.resume_grace;
  room_ctx.snapshot_every = static_cast<std::uint64_t>(std::max<std::int64_t>(s.snapshot_every, 0));
  room_ctx.max_room_peers = static_cast<std::size_t>(std::max<std::int64_t>(s.max_room_peers, 1));
  room_ctx.resume_token_lifetime = std::chrono::duration_cast<std::chrono::seconds>(s.resume_token_lifetime);
  room_ctx.drop_live_every = static_cast<std::uint64_t>(std::max<std::int64_t>(s.fault_drop_live_every, 0));
  room_ctx.delay_live_every = static_cast<std::uint64_t>(std::max<std::int64_t>(s.fault_delay_live_every, 0));
  counters.fault_injection = s.fault_drop_live_every > 0 || s.fault_delay_live_every > 0;
  if (room_ctx.drop_live_every > 0)
    main_log->warn("fault injection: dropping every {}th live message (--fault-drop-live-every)", room_ctx.drop_live_every);
  if (room_ctx.delay_live_every > 0)
    main_log->warn("fault injection: delaying every {}th live message by 3 ms (--fault-delay-live-every)",
                   room_ctx.delay_live_every);
  room_ctx.message_id_prefix = s.instance_id + "." + random_nonce() + ".";
  directory.attach(room_ctx);

  ws::connection_limits limits;
  limits.max_frame_bytes = static_cast<std::size_t>(s.max_frame_bytes);
  limits.write_queue_frames = static_cast<std::size_t>(std::max<std::int64_t>(s.write_queue_frames, 4));
  limits.write_queue_bytes = static_cast<std::size_t>(std::max<std::int64_t>(s.write_queue_bytes, 64 << 10));
  limits.idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(s.idle_timeout);
  limits.message.max_meta_bytes = static_cast<std::size_t>(s.max_meta_bytes);
  limits.message.max_data_bytes = static_cast<std::size_t>(s.max_data_bytes);
  limits.max_connections = static_cast<std::size_t>(std::max<std::int64_t>(s.max_connections, 1));
  limits.join_timeout = std::max(s.join_timeout, std::chrono::milliseconds(100));
  limits.signal_rate = static_cast<double>(std::max<std::int64_t>(s.signal_rate, 1));
  limits.signal_burst = static_cast<double>(std::max<std::int64_t>(s.signal_burst, 1));
  limits.trusted_proxies = std::move(*trusted_proxies);
  std::optional<admission::address_limiter> join_limiter;
  if (s.join_rate > 0)
    join_limiter.emplace(static_cast<double>(s.join_rate), static_cast<double>(s.join_burst));
  ws::session_registry sessions;
  std::atomic<bool> draining{false};
  // Set once the resume secret is known (given, or read from NATS): joins
  // wait for it, since every `joined` carries a token signed with it.
  std::atomic<bool> secret_known{!s.resume || !s.resume_secret.empty()};
  if (s.resume && !s.resume_secret.empty()) room_ctx.resume_secret = s.resume_secret;
  service::liveness_monitor liveness(
      service::liveness_settings{s.instance_id, SIGSTREAM_VERSION, s.heartbeat_interval, s.instance_timeout}, control,
      held, cache.get(), counters, logs.make("liveness"));
  // Ready: NATS usable, the resume secret known, and the peers an earlier
  // run under this id left behind expired (before any join of this run).
  ws::connection_context conn_ctx{directory, counters, logs.make("ws"), s.instance_id, limits,
                                  [&store, &secret_known, &liveness] {
                                    return store.ready() && secret_known.load() && liveness.settled();
                                  },
                                  [&counters, &store, &cache, id = s.instance_id] {
                                    counters.nats_connected = store.ready() ? 1 : 0;
                                    counters.redis_connected = cache ? (cache->reachable() ? 1 : 0) : -1;
                                    auto text = counters.prometheus_text(id, SIGSTREAM_VERSION);
                                    append_process_metrics(text);
                                    return text;
                                  }};

  bool web_root_given = !s.web_root.empty();
  if (!web_root_given) s.web_root = default_web_root();
  if (!s.web_root.empty()) {
    auto web = ws::static_files::load(s.web_root, *main_log);
    if (!web && web_root_given) return 1;
    if (web) {
      main_log->info("serving {} static files ({} bytes) from {}", web->size(), web->bytes(), s.web_root);
      conn_ctx.web = std::make_shared<ws::static_files const>(std::move(*web));
    }
  }

  // One fold of every room, for the admin API's room list (read on demand).
  service::room_index index;
  asio::thread_pool admin_pool(static_cast<std::size_t>(std::max<std::int64_t>(s.admin_workers, 1)));
  service::admin_api admin(service::admin_settings{s.admin_token, s.admin_redact,
                                                   static_cast<std::size_t>(std::max<std::int64_t>(s.admin_workers, 1))},
                           log, index, logs.make("admin"));
  conn_ctx.admin = &admin;
  conn_ctx.run_admin = [&admin_pool](std::function<void()> work) { asio::post(admin_pool, std::move(work)); };
  conn_ctx.sessions = &sessions;
  conn_ctx.draining = &draining;
  conn_ctx.resume_secret = room_ctx.resume_secret;
  conn_ctx.join_keys = join_keys;
  conn_ctx.join_limiter = join_limiter ? &*join_limiter : nullptr;
  if (!s.allowed_origins.empty()) {
    std::string_view rest = s.allowed_origins;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) conn_ctx.limits.allowed_origins.emplace_back(item);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  if (conn_ctx.limits.allowed_origins.empty() && join_keys.empty())
    main_log->warn("no --allowed-origins: web pages of any site can open WebSockets here");
  if (join_keys.empty())
    main_log->warn("no join keys (SIGSTREAM_AUTH_KEYS): anyone can join any room, as anyone. Configure keys and "
                   "mint join tokens in your backend (docs/security.md)");
  else
    main_log->info("joins need a token signed with one of {} key(s) (ids in docs/security.md's sense: kid)",
                   join_keys.size());
  if (admin.enabled())
    main_log->info("admin API on /admin/ (bearer token; addresses {})", s.admin_redact ? "redacted" : "shown");
  else
    main_log->info("admin API off: no --admin-token (SIGSTREAM_ADMIN_TOKEN) configured");

  if (join_limiter)
    main_log->info("joins limited to {}/s per client address (burst {}); X-Forwarded-For believed from: {}",
                   s.join_rate, s.join_burst, s.trusted_proxies.empty() ? "nobody" : s.trusted_proxies);
  else
    main_log->warn("no join rate limit per client address (--join-rate 0)");

  // With --admin-listen, the operators' endpoints get their own address and
  // context (a copy: the same shared parts, another role).
  std::optional<ws::connection_context> admin_ctx;
  if (admin_where) {
    conn_ctx.role = ws::endpoint_role::clients;
    admin_ctx.emplace(conn_ctx);
    admin_ctx->role = ws::endpoint_role::operators;
  }
  std::unique_ptr<ws::listener> listener;
  std::unique_ptr<ws::listener> admin_listener;
  try {
    listener = std::make_unique<ws::listener>(io, *where, conn_ctx);
  } catch (std::exception const& e) {
    main_log->error("cannot listen on {}: {}", s.listen, e.what());
    return 1;
  }
  if (admin_where) {
    try {
      admin_listener = std::make_unique<ws::listener>(io, *admin_where, *admin_ctx);
    } catch (std::exception const& e) {
      main_log->error("cannot listen on {} (--admin-listen): {}", s.admin_listen, e.what());
      return 1;
    }
    admin_listener->start();
    main_log->info("admin address {}: admin API and page, /metrics, health (not served on {})",
                   admin_listener->local_endpoint().address().to_string() + ":" +
                       std::to_string(admin_listener->local_endpoint().port()),
                   s.listen);
  }
  listener->start();
  main_log->info("sigstream {} listening on {} (ws://{}/ws), {} I/O threads; NATS {} stream {}; Redis {}",
                 SIGSTREAM_VERSION, listener->local_endpoint().address().to_string() + ":" +
                 std::to_string(listener->local_endpoint().port()), s.listen, threads,
                 auth::url_without_credentials(s.nats_url), s.stream,
                 s.redis_url.empty() ? "off" : auth::url_without_credentials(s.redis_url));

  std::atomic<bool> stopping{false};
  int exit_code = 0;
  asio::post(blocking, [&] {
    if (log.start(stopping) && control.start(stopping) && data.open(stopping)) {
      holdings.start();
      if (!secret_known) {
        // Written before secret_known is set, read only after it is seen set.
        while (!stopping) {
          if (auto shared = log.shared_secret("resume-secret", auth::random_secret())) {
            room_ctx.resume_secret = *shared;
            conn_ctx.resume_secret = *shared;
            break;
          }
          std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        secret_known = true;
      }
      while (!stopping && !liveness.settled()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      main_log->info("ready: stream {} is usable; resume {}; NATS messages {}", s.stream,
                     !s.resume ? "off (--resume=false)"
                               : fmt::format("on (grace {} ms, secret {})", s.resume_grace.count(),
                                             s.resume_secret.empty() ? "shared through NATS" : "from the configuration"),
                     data.inline_delivery() ? "handled inline on the I/O loop" : "queued per subscription (slower)");
    } else if (!stopping) {
      main_log->error("cannot use stream {}; stopping", s.stream);
      exit_code = 1;
      io.stop();
    }
  });

  liveness.start();

  auto signals = std::make_unique<asio::signal_set>(io, SIGINT, SIGTERM);
  auto shutdown_timer = std::make_unique<asio::steady_timer>(io);
  signals->async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    main_log->info("{}: draining; asking {} clients to reconnect elsewhere (1012); {} local peers",
                   signal == SIGTERM ? "SIGTERM" : "SIGINT", counters.connections.load(),
                   counters.joined_peers.load());
    stopping = true;
    // Drain: /readyz turns 503, new WebSockets and joins are refused, and
    // every client is asked to reconnect elsewhere (1012). With resume on,
    // each keeps its peer (its token is in its hands) and resumes on another
    // instance, which takes the peer over; this one waits for that. Peers
    // still here at the deadline leave (expired; without resume, at once
    // with reason disconnect). The port closes last.
    draining = true;
    admin.shutdown();
    sessions.move_all_elsewhere();
    if (!s.resume) directory.disconnect_all();
    auto deadline = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now() +
                                                                             s.shutdown_grace);
    auto wait_for_moves = std::make_shared<std::function<void()>>();
    auto left_behind = std::make_shared<bool>(false);
    *wait_for_moves = [&, deadline, left_behind, weak = std::weak_ptr<std::function<void()>>(wait_for_moves)] {
      bool moved = counters.joined_peers == 0 && counters.detached_peers == 0 && counters.connections == 0;
      bool late = std::chrono::steady_clock::now() >= *deadline;
      if (!moved && late && !*left_behind) {
        *left_behind = true;
        main_log->warn("drain: {} peers did not resume elsewhere within {} ms; recording their leave",
                       counters.joined_peers.load() + counters.detached_peers.load(), s.shutdown_grace.count());
        directory.disconnect_all();
        *deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);  // for those appends
      }
      // Once the rooms have taken the leaves in hand, the peers counts are 0
      // and their appends are in flight.
      bool recorded = counters.joined_peers == 0 && counters.detached_peers == 0 && counters.appends_in_flight == 0;
      if ((moved && counters.appends_in_flight == 0) ||
          (*left_behind && (recorded || std::chrono::steady_clock::now() >= *deadline))) {
        main_log->info("drain done: {} peers moved", moved ? "all" : "not all");
        listener->stop();
        if (admin_listener) admin_listener->stop();
        io.stop();
        return;
      }
      shutdown_timer->expires_after(std::chrono::milliseconds(20));
      shutdown_timer->async_wait([next = weak.lock()](boost::system::error_code) { (*next)(); });
    };
    (*wait_for_moves)();
  });

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : workers) t.join();
  stopping = true;
  admin.shutdown();
  admin_pool.join();
  blocking.join();
  // A clean stop removes the heartbeat, so nobody waits to expire peers
  // whose leaves were just recorded.
  liveness.stop(exit_code == 0);
  // Teardown in dependency order: I/O objects, then the NATS connection and
  // the completions it holds, then the rooms, then the io_context (and with
  // it every session), all while the contexts they refer to still exist.
  signals.reset();
  shutdown_timer.reset();
  listener.reset();
  admin_listener.reset();
  log.close();
  data.close();
  control.close();
  directory.clear();
  holdings_holder.reset();
  data_holder.reset();
  io_holder.reset();
  main_log->info("stopped");
  return exit_code;
}

}  // namespace sig::cli
