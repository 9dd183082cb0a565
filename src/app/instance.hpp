#pragma once
// One sigstream instance, the composition root: builds the adapters (NATS,
// Redis), the service (rooms, liveness, the admin API) and the server (HTTP
// and WebSocket) from a checked instance_config, runs them until SIGINT or
// SIGTERM has drained it, and takes them down in one order. The members
// are declared in the order they depend on each other, so that each is
// built after, and destroyed before, what it refers to.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "adapters/nats/data_connection.hpp"
#include "adapters/nats/event_log.hpp"
#include "adapters/nats/holdings_registry.hpp"
#include "adapters/nats/nats_event_store.hpp"
#include "adapters/redis/presence_cache.hpp"
#include "admission/address_limiter.hpp"
#include "app/instance_config.hpp"
#include "server/connection_context.hpp"
#include "server/listener.hpp"
#include "server/session_registry.hpp"
#include "service/cluster/liveness_monitor.hpp"
#include "service/history/admin_api.hpp"
#include "service/history/room_history.hpp"
#include "service/metrics.hpp"
#include "service/room/held_peers.hpp"
#include "service/room/room_context.hpp"
#include "service/room/room_directory.hpp"

namespace spdlog { class logger; }

namespace sig::app {

// A logger per component ("main", "nats", "room", ...), named in each line.
using logger_factory = std::function<std::shared_ptr<spdlog::logger>(std::string const& component)>;

class instance {
 public:
  // Builds everything; nothing listens or connects yet.
  instance(instance_config config, logger_factory make_logger, std::string version);
  ~instance();
  instance(instance const&) = delete;
  instance& operator=(instance const&) = delete;

  // Listens, connects, serves, and on SIGINT or SIGTERM drains and stops.
  // Returns the process's exit code (1: could not listen, read the web
  // root, or use the stream).
  int run();

 private:
  nats::log_settings log_settings_for(std::string const& role) const;
  void configure_rooms();
  void configure_connections();
  bool load_web_root();
  void log_policy() const;
  bool listen();
  // On the blocking pool: NATS usable, the resume secret known, and the
  // peers an earlier run under this id left behind expired.
  void bootstrap();
  void begin_drain(int signal);
  // Every --stream-check-interval, check_stream() on the blocking pool.
  void check_stream_later();
  // What the stream allows, read again and used (event_log::use_features). Blocking.
  void check_stream();
  // Whether a room's first join goes out with its rebuild's reads (room_context.hpp),
  // from --early-first-join and whether JetStream runs as a cluster; told at
  // start and whenever it changes.
  void use_first_join_mode(bool jetstream_clustered);
  // Every part stopped and released, dependencies last. Idempotent.
  void tear_down();

  instance_config config_;
  instance_settings& s_;
  logger_factory make_logger_;
  std::string version_;
  std::shared_ptr<spdlog::logger> log_;
  unsigned threads_;

  // Everything below that holds Asio objects of the io_context is released
  // explicitly in tear_down(), before it.
  std::unique_ptr<boost::asio::io_context> io_;
  boost::asio::thread_pool blocking_;
  service::metrics counters_;
  // Three NATS connections, one per kind of traffic (docs/threading.md):
  // blocking reads (rebuilds, catch-ups, snapshots, the admin API),
  // liveness, and appends and live feeds on the I/O loop (data_).
  nats::event_log reads_;
  nats::event_log control_;
  std::unique_ptr<nats::data_connection> data_;
  nats::nats_event_store store_;
  std::unique_ptr<nats::holdings_registry> holdings_;
  std::unique_ptr<redis::presence_cache> cache_;

  service::room_directory directory_;
  service::held_peers held_;
  service::room_context room_ctx_;
  std::optional<admission::address_limiter> join_limiter_;
  server::session_registry sessions_;
  std::atomic<bool> draining_{false};
  // Set once the resume secret is known (given, or read from NATS): joins
  // wait for it, since every `joined` carries a token signed with it.
  std::atomic<bool> secret_known_;
  service::liveness_monitor liveness_;
  server::connection_context conn_ctx_;
  // One fold of every room, for the admin API's room list (read on demand).
  service::room_index index_;
  boost::asio::thread_pool admin_pool_;
  service::admin_api admin_;
  // With --admin-listen, the operators' endpoints get their own address and
  // context (a copy: the same shared parts, another role).
  std::optional<server::connection_context> admin_ctx_;
  std::unique_ptr<server::listener> listener_;
  std::unique_ptr<server::listener> admin_listener_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> first_join_mode_told_{false};
  int exit_code_ = 0;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::unique_ptr<boost::asio::steady_timer> stream_check_timer_;
  bool torn_down_ = false;
};

}  // namespace sig::app
