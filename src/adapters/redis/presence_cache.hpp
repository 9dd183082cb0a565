#pragma once
// The Redis presence cache: per room, the membership snapshot and the stream
// sequence it reflects. Only a cache: every failure here is logged and
// counted, and the caller falls back to replaying the stream.
//
// It talks to Redis over one connection (connection.hpp: plain or TLS),
// driven by the I/O thread's reactor on a strand of its own: commands are
// pipelined without waiting (those of one turn of the loop in one write),
// and every command is answered within the
// timeout or the connection is dropped. Only connecting blocks (resolving,
// the TLS handshake, AUTH): that runs on a thread of its own, once per
// outage at most once a second. Callers never block.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "adapters/redis/connection.hpp"
#include "ports/presence_store.hpp"

namespace spdlog { class logger; }

namespace sig::redis {

struct cache_settings {
  // redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB]; empty: no cache.
  // rediss:// (or tls.enabled) is TLS.
  std::string url = "redis://127.0.0.1:6379";
  std::string user;      // ACL user (Redis 6+); with password
  std::string password;  // AUTH; overrides the URL's
  tls_settings tls;
  std::string key_prefix = "sigstream:SIGSTREAM";
  std::chrono::milliseconds timeout{500};
  std::chrono::seconds entry_ttl{24 * 3600};  // an idle room's entry expires
};

using service::cached_room;

struct cache_counters;

class presence_cache final : public service::presence_store {
 public:
  // Runs on `io`, which must have stopped running before the cache is
  // destroyed (its pending handlers refer to it).
  presence_cache(boost::asio::io_context& io, cache_settings settings, std::shared_ptr<spdlog::logger> log);
  ~presence_cache() override;

  // `done` runs on the cache's strand. nullopt: nothing cached, or Redis unreachable.
  void load(std::string room_token, std::function<void(std::optional<cached_room>)> done) override;
  // Writes unless Redis already holds a snapshot at `seq` or newer: an update
  // that arrives late never overwrites a newer one. Queued stores are
  // coalesced (the newest per room) and written in pipelined batches.
  void store(std::string room_token, std::uint64_t seq, std::string snapshot) override;
  // Writes whatever is there: for an entry found *ahead* of the stream (the
  // stream was reset), which the compare-and-set would otherwise keep.
  void replace(std::string room_token, std::uint64_t seq, std::string snapshot) override;
  // The last command Redis was asked got an answer (for /metrics).
  bool reachable() const;


 private:
  struct impl;
  std::unique_ptr<impl> impl_;  // its destructor joins the thread
};

}  // namespace sig::redis
