// `sigstream serve`: the composition root of one instance. Builds the
// adapters, wires them to the rooms, and runs until SIGINT or SIGTERM.
#include <sys/random.h>

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
#include "server/listener.hpp"
#include "server/session_registry.hpp"
#include "server/static_files.hpp"
#include "admission/address_limiter.hpp"
#include "admission/client_address.hpp"
#include "auth/hmac.hpp"
#include "auth/join_token.hpp"
#include "cli/commands.hpp"
#include "cli/drain.hpp"
#include "auth/url_credentials.hpp"
#include "cli/logging.hpp"
#include "cli/nats_security_options.hpp"
#include "cli/options.hpp"
#include "cli/process_metrics.hpp"
#include "cli/serve_config.hpp"
#include "domain/room_name.hpp"
#include "service/history/admin_api.hpp"
#include "service/cluster/liveness_monitor.hpp"
#include "service/room/room_context.hpp"
#include "service/room/room_directory.hpp"

namespace sig::cli {

namespace asio = boost::asio;

namespace {

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

}  // namespace

int serve_command(int argc, char** argv) {
  // Here, not in main(): nats.c starts its own threads when opened, and the
  // history tools must block SIGINT before any thread exists (stream_tools).
  nats::open_library();
  serve_settings settings;
  options opts("serve",
               "Run one sigstream instance: WebSocket signaling on /ws (docs/protocol.md), /healthz, /readyz and\n"
               "/metrics on the same port. Any number of instances share one NATS JetStream stream.");
  declare_serve_options(opts, settings);
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  auto checked = check_serve_settings(std::move(settings));
  if (auto const* why = std::get_if<std::string>(&checked)) {
    std::cerr << "sigstream serve: " << *why << "\n";
    return 2;
  }
  auto& config = std::get<serve_config>(checked);
  serve_settings& s = config.settings;
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

  server::connection_limits limits;
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
  limits.trusted_proxies = config.trusted_proxies;
  std::optional<admission::address_limiter> join_limiter;
  if (s.join_rate > 0)
    join_limiter.emplace(static_cast<double>(s.join_rate), static_cast<double>(s.join_burst));
  server::session_registry sessions;
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
  server::connection_context conn_ctx{directory, counters, logs.make("ws"), s.instance_id, limits,
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
    auto web = server::static_files::load(s.web_root, *main_log);
    if (!web && web_root_given) return 1;
    if (web) {
      main_log->info("serving {} static files ({} bytes) from {}", web->size(), web->bytes(), s.web_root);
      conn_ctx.web = std::make_shared<server::static_files const>(std::move(*web));
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
  conn_ctx.join_keys = config.join_keys;
  conn_ctx.join_limiter = join_limiter ? &*join_limiter : nullptr;
  conn_ctx.limits.allowed_origins = config.allowed_origins;
  if (conn_ctx.limits.allowed_origins.empty() && config.join_keys.empty())
    main_log->warn("no --allowed-origins: web pages of any site can open WebSockets here");
  if (config.join_keys.empty())
    main_log->warn("no join keys (SIGSTREAM_AUTH_KEYS): anyone can join any room, as anyone. Configure keys and "
                   "mint join tokens in your backend (docs/security.md)");
  else
    main_log->info("joins need a token signed with one of {} key(s) (ids in docs/security.md's sense: kid)",
                   config.join_keys.size());
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
  std::optional<server::connection_context> admin_ctx;
  if (config.admin_listen) {
    conn_ctx.role = server::endpoint_role::clients;
    admin_ctx.emplace(conn_ctx);
    admin_ctx->role = server::endpoint_role::operators;
  }
  std::unique_ptr<server::listener> listener;
  std::unique_ptr<server::listener> admin_listener;
  try {
    listener = std::make_unique<server::listener>(io, config.listen, conn_ctx);
  } catch (std::exception const& e) {
    main_log->error("cannot listen on {}: {}", s.listen, e.what());
    return 1;
  }
  if (config.admin_listen) {
    try {
      admin_listener = std::make_unique<server::listener>(io, *config.admin_listen, *admin_ctx);
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
    std::make_shared<drain>(drain::parts{.io = io,
                                         .sessions = sessions,
                                         .held = held,
                                         .appends = data.appends(),
                                         .directory = directory,
                                         .counters = counters,
                                         .log = main_log,
                                         .grace = s.shutdown_grace,
                                         .done =
                                             [&] {
                                               listener->stop();
                                               if (admin_listener) admin_listener->stop();
                                               io.stop();
                                             }})
        ->start();
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
