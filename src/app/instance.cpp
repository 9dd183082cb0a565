#include "app/instance.hpp"

#include <sys/random.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <vector>

#include "app/drain.hpp"
#include "app/process_metrics.hpp"
#include "auth/hmac.hpp"
#include "auth/url_credentials.hpp"
#include "server/static_files.hpp"

namespace sig::app {

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

std::size_t at_least(std::int64_t value, std::int64_t floor) {
  return static_cast<std::size_t>(std::max(value, floor));
}

std::string endpoint_text(asio::ip::tcp::endpoint const& e) {
  return e.address().to_string() + ":" + std::to_string(e.port());
}

}  // namespace

instance::instance(instance_config config, logger_factory make_logger, std::string version)
    : config_(std::move(config)),
      s_(config_.settings),
      make_logger_(std::move(make_logger)),
      version_(std::move(version)),
      log_(make_logger_("main")),
      threads_(s_.threads > 0 ? static_cast<unsigned>(s_.threads) : std::max(1u, std::thread::hardware_concurrency())),
      io_(std::make_unique<asio::io_context>(static_cast<int>(threads_))),
      blocking_(at_least(s_.sync_workers, 1)),
      reads_(log_settings_for("reads"), make_logger_("nats")),
      control_(
          [this] {
            auto settings = log_settings_for("liveness");
            settings.advise = false;  // the reads connection reports on the stream
            return settings;
          }(),
          make_logger_("nats")),
      data_(std::make_unique<nats::data_connection>(
          *io_,
          nats::connection_settings{.url = s_.nats_url,
                                    .security = s_.nats_security,
                                    .name = "sigstream " + s_.instance_id + " (data)",
                                    .send_asap = true,
                                    .connect_attempts = 0,
                                    .fault_receive_buffer = static_cast<int>(s_.fault_nats_receive_buffer)},
          s_.subject_prefix,
          nats::appender_settings{.max_in_flight = at_least(s_.max_appends_in_flight, 1),
                                  .max_delay = s_.max_append_delay},
          make_logger_("nats"))),
      store_(*data_, reads_),
      // Rooms followed here are recorded for the survivors: kept 10 minutes
      // after the room's last follower here, rewritten every 8 h (the
      // records expire after a day).
      holdings_(std::make_unique<nats::holdings_registry>(*io_, data_->appends(), nats::holdings_bucket(s_.stream),
                                                          s_.instance_id, std::chrono::minutes(10),
                                                          std::chrono::hours(8))),
      cache_(s_.redis_url.empty()
                 ? nullptr
                 : std::make_unique<redis::presence_cache>(
                       *io_,
                       redis::cache_settings{.url = s_.redis_url,
                                             .user = s_.redis_user,
                                             .password = s_.redis_password,
                                             .tls = s_.redis_tls,
                                             .key_prefix = "sigstream:" + s_.stream,
                                             .timeout = std::chrono::milliseconds(500),
                                             .entry_ttl = std::chrono::seconds(24 * 3600)},
                       make_logger_("redis"))),
      room_ctx_{*io_, blocking_, store_, cache_.get(), directory_, counters_, make_logger_("room"), s_.instance_id},
      secret_known_(!s_.resume || !s_.resume_secret.empty()),
      liveness_(service::liveness_settings{s_.instance_id, version_, s_.heartbeat_interval, s_.instance_timeout},
                control_, held_, cache_.get(), counters_, make_logger_("liveness")),
      // Ready: NATS usable, the resume secret known, and the peers an
      // earlier run under this id left behind expired (before any join of
      // this run).
      conn_ctx_{directory_,
                counters_,
                make_logger_("ws"),
                s_.instance_id,
                {},
                [this] { return store_.ready() && secret_known_.load() && liveness_.settled(); },
                [this] {
                  counters_.nats_connected = store_.ready() ? 1 : 0;
                  counters_.redis_connected = cache_ ? (cache_->reachable() ? 1 : 0) : -1;
                  auto text = counters_.prometheus_text(s_.instance_id, version_);
                  append_process_metrics(text);
                  return text;
                }},
      admin_pool_(at_least(s_.admin_workers, 1)),
      admin_(service::admin_settings{s_.admin_token, s_.admin_redact, at_least(s_.admin_workers, 1)}, reads_, index_,
             make_logger_("admin")) {
  if (s_.join_rate > 0) join_limiter_.emplace(static_cast<double>(s_.join_rate), static_cast<double>(s_.join_burst));
  configure_rooms();
  configure_connections();
}

instance::~instance() { tear_down(); }

nats::log_settings instance::log_settings_for(std::string const& role) const {
  // Named fields: positional ones once set send_asap from a 0.
  return nats::log_settings{.url = s_.nats_url,
                            .security = s_.nats_security,
                            .stream = s_.stream,
                            .subject_prefix = s_.subject_prefix,
                            .max_age = std::chrono::duration_cast<std::chrono::seconds>(s_.retention_max_age),
                            .max_bytes = s_.retention_max_bytes,
                            .duplicate_window = std::chrono::duration_cast<std::chrono::seconds>(s_.duplicate_window),
                            .replicas = static_cast<int>(std::clamp<std::int64_t>(s_.stream_replicas, 1, 5)),
                            .client_name = "sigstream " + s_.instance_id + " (" + role + ")",
                            .create_stream = true,
                            .send_asap = s_.nats_send_asap,
                            .connect_attempts = 0};
}

void instance::configure_rooms() {
  room_ctx_.held = &held_;
  room_ctx_.holdings = holdings_.get();
  room_ctx_.linger = s_.room_linger;
  room_ctx_.resume_grace = s_.resume_grace;
  room_ctx_.snapshot_every = static_cast<std::uint64_t>(std::max<std::int64_t>(s_.snapshot_every, 0));
  room_ctx_.max_room_peers = at_least(s_.max_room_peers, 1);
  room_ctx_.resume_token_lifetime = std::chrono::duration_cast<std::chrono::seconds>(s_.resume_token_lifetime);
  room_ctx_.drop_live_every = static_cast<std::uint64_t>(std::max<std::int64_t>(s_.fault_drop_live_every, 0));
  room_ctx_.delay_live_every = static_cast<std::uint64_t>(std::max<std::int64_t>(s_.fault_delay_live_every, 0));
  counters_.fault_injection = s_.fault_drop_live_every > 0 || s_.fault_delay_live_every > 0;
  room_ctx_.message_id_prefix = s_.instance_id + "." + random_nonce() + ".";
  if (s_.resume && !s_.resume_secret.empty()) room_ctx_.resume_secret = s_.resume_secret;
  directory_.attach(room_ctx_);
}

void instance::configure_connections() {
  auto& limits = conn_ctx_.limits;
  limits.max_frame_bytes = static_cast<std::size_t>(s_.max_frame_bytes);
  limits.write_queue_frames = at_least(s_.write_queue_frames, 4);
  limits.write_queue_bytes = at_least(s_.write_queue_bytes, 64 << 10);
  limits.idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(s_.idle_timeout);
  limits.message.max_meta_bytes = static_cast<std::size_t>(s_.max_meta_bytes);
  limits.message.max_data_bytes = static_cast<std::size_t>(s_.max_data_bytes);
  limits.max_connections = at_least(s_.max_connections, 1);
  limits.join_timeout = std::max(s_.join_timeout, std::chrono::milliseconds(100));
  limits.signal_rate = static_cast<double>(std::max<std::int64_t>(s_.signal_rate, 1));
  limits.signal_burst = static_cast<double>(std::max<std::int64_t>(s_.signal_burst, 1));
  limits.trusted_proxies = config_.trusted_proxies;
  limits.allowed_origins = config_.allowed_origins;
  conn_ctx_.admin = &admin_;
  conn_ctx_.run_admin = [this](std::function<void()> work) { asio::post(admin_pool_, std::move(work)); };
  conn_ctx_.sessions = &sessions_;
  conn_ctx_.draining = &draining_;
  conn_ctx_.resume_secret = room_ctx_.resume_secret;
  conn_ctx_.join_keys = config_.join_keys;
  conn_ctx_.join_limiter = join_limiter_ ? &*join_limiter_ : nullptr;
}

bool instance::load_web_root() {
  bool given = !s_.web_root.empty();
  if (!given) s_.web_root = default_web_root();
  if (s_.web_root.empty()) return true;
  auto web = server::static_files::load(s_.web_root, *log_);
  if (!web) return !given;
  log_->info("serving {} static files ({} bytes) from {}", web->size(), web->bytes(), s_.web_root);
  conn_ctx_.web = std::make_shared<server::static_files const>(std::move(*web));
  return true;
}

// What an operator must know about this instance's exposure, once.
void instance::log_policy() const {
  if (s_.fault_nats_receive_buffer > 0)
    log_->warn("fault injection: the NATS data socket's receive buffer is {} bytes (--fault-nats-receive-buffer)",
               s_.fault_nats_receive_buffer);
  if (room_ctx_.drop_live_every > 0)
    log_->warn("fault injection: dropping every {}th live message (--fault-drop-live-every)", room_ctx_.drop_live_every);
  if (room_ctx_.delay_live_every > 0)
    log_->warn("fault injection: delaying every {}th live message by 3 ms (--fault-delay-live-every)",
               room_ctx_.delay_live_every);
  if (config_.allowed_origins.empty() && config_.join_keys.empty())
    log_->warn("no --allowed-origins: web pages of any site can open WebSockets here");
  if (config_.join_keys.empty())
    log_->warn("no join keys (SIGSTREAM_AUTH_KEYS): anyone can join any room, as anyone. Configure keys and "
               "mint join tokens in your backend (docs/security.md)");
  else
    log_->info("joins need a token signed with one of {} key(s) (ids in docs/security.md's sense: kid)",
               config_.join_keys.size());
  if (admin_.enabled())
    log_->info("admin API on /admin/ (bearer token; addresses {})", s_.admin_redact ? "redacted" : "shown");
  else
    log_->info("admin API off: no --admin-token (SIGSTREAM_ADMIN_TOKEN) configured");
  if (join_limiter_)
    log_->info("joins limited to {}/s per client address (burst {}); X-Forwarded-For believed from: {}", s_.join_rate,
               s_.join_burst, s_.trusted_proxies.empty() ? "nobody" : s_.trusted_proxies);
  else
    log_->warn("no join rate limit per client address (--join-rate 0)");
}

bool instance::listen() {
  if (config_.admin_listen) {
    conn_ctx_.role = server::endpoint_role::clients;
    admin_ctx_.emplace(conn_ctx_);
    admin_ctx_->role = server::endpoint_role::operators;
  }
  try {
    listener_ = std::make_unique<server::listener>(*io_, config_.listen, conn_ctx_);
  } catch (std::exception const& e) {
    log_->error("cannot listen on {}: {}", s_.listen, e.what());
    return false;
  }
  if (config_.admin_listen) {
    try {
      admin_listener_ = std::make_unique<server::listener>(*io_, *config_.admin_listen, *admin_ctx_);
    } catch (std::exception const& e) {
      log_->error("cannot listen on {} (--admin-listen): {}", s_.admin_listen, e.what());
      return false;
    }
    admin_listener_->start();
    log_->info("admin address {}: admin API and page, /metrics, health (not served on {})",
               endpoint_text(admin_listener_->local_endpoint()), s_.listen);
  }
  listener_->start();
  log_->info("sigstream {} listening on {} (ws://{}/ws), {} I/O threads; NATS {} stream {}; Redis {}", version_,
             endpoint_text(listener_->local_endpoint()), s_.listen, threads_,
             auth::url_without_credentials(s_.nats_url), s_.stream,
             s_.redis_url.empty() ? "off" : auth::url_without_credentials(s_.redis_url));
  return true;
}

void instance::bootstrap() {
  if (!(reads_.start(stopping_) && control_.start(stopping_) && data_->open(stopping_))) {
    if (!stopping_) {
      log_->error("cannot use stream {}; stopping", s_.stream);
      exit_code_ = 1;
      io_->stop();
    }
    return;
  }
  holdings_->start();
  counters_.stream_replicas = reads_.stream_replicas();
  use_first_join_mode(reads_.jetstream_clustered());
  asio::post(*io_, [this] { check_stream_later(); });
  if (!secret_known_) {
    // Written before secret_known_ is set, read only after it is seen set.
    while (!stopping_) {
      if (auto shared = reads_.shared_secret("resume-secret", auth::random_secret())) {
        room_ctx_.resume_secret = *shared;
        conn_ctx_.resume_secret = *shared;
        break;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    secret_known_ = true;
  }
  while (!stopping_ && !liveness_.settled()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  log_->info("ready: stream {} is usable; resume {}; NATS messages {}", s_.stream,
             !s_.resume ? "off (--resume=false)"
                        : fmt::format("on (grace {} ms, secret {})", s_.resume_grace.count(),
                                      s_.resume_secret.empty() ? "shared through NATS" : "from the configuration"),
             data_->inline_delivery() ? "handled inline on the I/O loop" : "queued per subscription (slower)");
}

void instance::check_stream_later() {
  if (stopping_) return;
  stream_check_timer_->expires_after(s_.stream_check_interval);
  stream_check_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    asio::post(blocking_, [this] {
      if (stopping_) return;
      check_stream();
      asio::post(*io_, [this] { check_stream_later(); });
    });
  });
}

// Both connections that read the stream (rooms' reads; the liveness
// monitor's, which rebuilds a dead instance's rooms) follow what it allows
// now: read once, used by each.
void instance::check_stream() {
  auto features = reads_.read_features();
  if (!features) return;
  bool changed = reads_.use_features(*features);
  control_.use_features(*features);
  counters_.stream_replicas = features->replicas;
  use_first_join_mode(features->clustered);
  if (changed)
    log_->info("stream {} now keeps {} replica{}, {} direct gets and {} rollups: newest messages and rooms' short "
               "reads go {}",
               s_.stream, features->replicas, features->replicas == 1 ? "" : "s",
               features->direct ? "allows" : "does not allow", features->rollup ? "allows" : "does not allow",
               reads_.direct_reads() ? "by direct gets" : "through the JetStream API (the stream's leader)");
}

void instance::use_first_join_mode(bool jetstream_clustered) {
  bool early = s_.early_first_join && !jetstream_clustered;
  bool was = room_ctx_.first_join_before_rebuild.exchange(early);
  if (first_join_mode_told_.exchange(true) && was == early) return;
  log_->info("a room's first join here {}",
             early ? "goes out right behind the rebuild's reads (a lone nats-server stores the holdings record sent "
                     "before it first)"
             : !s_.early_first_join ? "waits for the room's rebuild (--early-first-join=false)"
                                    : "waits for the room's rebuild (JetStream cluster: its holdings record is stored "
                                      "through a Raft group of its own, first)");
}

// Drain: /readyz turns 503, new WebSockets and joins are refused, and every
// client is asked to reconnect elsewhere (1012). With resume on, each keeps
// its peer (its token is in its hands) and resumes on another instance,
// which takes the peer over; this one waits for that. Peers still here at
// the deadline leave (expired; without resume, at once with reason
// disconnect). The port closes last.
void instance::begin_drain(int signal) {
  log_->info("{}: draining; asking {} clients to reconnect elsewhere (1012); {} local peers",
             signal == SIGTERM ? "SIGTERM" : "SIGINT", counters_.connections.load(), counters_.joined_peers.load());
  stopping_ = true;
  draining_ = true;
  admin_.shutdown();
  sessions_.move_all_elsewhere();
  if (!s_.resume) directory_.disconnect_all();
  std::make_shared<drain>(drain::parts{.io = *io_,
                                       .sessions = sessions_,
                                       .held = held_,
                                       .appends = data_->appends(),
                                       .directory = directory_,
                                       .counters = counters_,
                                       .log = log_,
                                       .grace = s_.shutdown_grace,
                                       .done =
                                           [this] {
                                             listener_->stop();
                                             if (admin_listener_) admin_listener_->stop();
                                             io_->stop();
                                           }})
      ->start();
}

int instance::run() {
  log_policy();
  if (!load_web_root() || !listen()) {
    exit_code_ = 1;
    tear_down();
    return exit_code_;
  }
  stream_check_timer_ = std::make_unique<asio::steady_timer>(*io_);
  asio::post(blocking_, [this] { bootstrap(); });
  liveness_.start();
  signals_ = std::make_unique<asio::signal_set>(*io_, SIGINT, SIGTERM);
  signals_->async_wait([this](boost::system::error_code ec, int signal) {
    if (!ec) begin_drain(signal);
  });

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads_; ++i) workers.emplace_back([this] { io_->run(); });
  io_->run();
  for (auto& t : workers) t.join();
  tear_down();
  log_->info("stopped");
  return exit_code_;
}

// Teardown in dependency order: the workers that could still touch the
// rooms, the heartbeat, the I/O objects, then the NATS connections and the
// completions they hold, then the rooms, then the io_context (and with it
// every session), all while the contexts they refer to still exist.
void instance::tear_down() {
  if (torn_down_) return;
  torn_down_ = true;
  stopping_ = true;
  admin_.shutdown();
  admin_pool_.join();
  blocking_.join();
  // A clean stop removes the heartbeat, so nobody waits to expire peers
  // whose leaves were just recorded.
  liveness_.stop(exit_code_ == 0);
  signals_.reset();
  stream_check_timer_.reset();
  listener_.reset();
  admin_listener_.reset();
  reads_.close();
  data_->close();
  control_.close();
  directory_.clear();
  holdings_.reset();
  cache_.reset();
  data_.reset();
  io_.reset();
}

}  // namespace sig::app
