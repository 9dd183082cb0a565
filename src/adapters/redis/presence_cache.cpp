#include "adapters/redis/presence_cache.hpp"

#include "adapters/redis/connection.hpp"
#include "adapters/redis/redis_errors.hpp"
#include "auth/url_credentials.hpp"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <cctype>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace sig::redis {

namespace {

// Compare-and-set on the snapshot's sequence, atomically in Redis. ARGV[4]
// is "force" to write whatever is stored.
constexpr char store_script[] = R"lua(
local current = redis.call('HGET', KEYS[1], 'seq')
if ARGV[4] ~= 'force' and current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'state', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

// Stores go as EVALSHA: Redis would otherwise hash the script's text on every
// call. The hash is the script's SHA-1, as Redis computes it.
std::string script_sha1(std::string_view script) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(script.data(), script.size(), digest, &length, EVP_sha1(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

// Commands per pipelined round trip (loads, or stores).
constexpr std::size_t stores_per_round_trip = 64;

struct endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
  bool tls = false;  // rediss://
};

// %XX escapes in a URL's user and password.
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<endpoint> parse_url(std::string const& url) {
  std::string rest = url;
  endpoint ep;
  if (rest.starts_with("redis://")) {
    rest = rest.substr(8);
  } else if (rest.starts_with("rediss://")) {
    rest = rest.substr(9);
    ep.tls = true;
  } else if (rest.find("://") != std::string::npos) {
    return std::nullopt;
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    auto db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      try {
        std::size_t used = 0;
        ep.db = std::stoi(db, &used);
        if (used != db.size() || ep.db < 0) return std::nullopt;
      } catch (...) {
        return std::nullopt;
      }
    }
  }
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string::npos) {
      ep.password = percent_decoded(userinfo);  // redis://PASSWORD@host, as redis-cli -u takes it
    } else {
      ep.user = percent_decoded(userinfo.substr(0, colon));
      ep.password = percent_decoded(userinfo.substr(colon + 1));
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    ep.host = rest.substr(0, colon);
    try {
      ep.port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      return std::nullopt;
    }
  } else if (!rest.empty()) {
    ep.host = rest;
  }
  return ep;
}


}  // namespace

struct presence_cache::impl {
  cache_settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::optional<endpoint> where;
  std::shared_ptr<tls_client> tls;  // with TLS: the context every connection uses
  boost::asio::thread_pool thread{1};
  // Touched only on `thread`.
  std::unique_ptr<connection> conn;
  std::atomic<bool> reachable{false};  // the last command got an answer
  std::chrono::steady_clock::time_point next_attempt{};
  bool was_down = false;
  bool auth_refused = false;
  std::atomic<std::uint64_t> error_count{0};
  std::string const store_sha = script_sha1(store_script);

  // Snapshots waiting for `thread`, the newest per room: a burst of joins
  // writes each room once per round trip, not once per join.
  struct pending_store {
    std::uint64_t seq = 0;
    std::string snapshot;
    bool force = false;
  };
  std::mutex pending_mutex;
  std::unordered_map<std::string, pending_store> pending;  // by room token
  bool drain_posted = false;
  // Loads waiting for `thread`: read in one round trip per batch.
  using load_callback = std::function<void(std::optional<cached_room>)>;
  std::vector<std::pair<std::string, load_callback>> pending_loads;
  bool loads_posted = false;

  ~impl() { thread.join(); }

  std::string key(std::string const& token) const { return settings.key_prefix + ":room:" + token; }

  // Every failure is counted. An error reply leaves the connection usable,
  // and is told each time. Any other failure drops the connection, and is
  // told once per outage, since Redis is only a cache: joins go on by
  // replay meanwhile. Quiet: Redis dropping a connection that was working
  // (its idle timeout, a restart), when `retrying` on a new one at once;
  // a reconnect that fails is told.
  void fail(redis_failure const& failure, char const* what, bool retrying = false) {
    ++error_count;
    if (failure.code == redis_error::error_reply) {
      log->warn("presence cache: {} refused: {}", what, failure.text());
      return;
    }
    if (retrying && connection_dropped(failure.code)) {
      log->debug("presence cache: {} failed ({}); reconnecting", what, failure.text());
    } else {
      if (!was_down) log->warn("presence cache: {} failed ({}); serving joins by replay until Redis answers", what,
                               failure.text());
      was_down = true;
    }
    conn.reset();
  }

  // AUTH and SELECT on a new connection. A refused password is an operator's
  // mistake: said once as an error (the reply, never the password), then the
  // instance serves joins by replay, retrying once a second.
  bool authenticate() {
    auto refused = [&](char const* what, redisReply* reply) {
      if (reply == nullptr) {  // no answer at all: the connection failed, nothing was refused
        fail(conn->failure(), "connect");
        return false;
      }
      ++error_count;
      if (!auth_refused)
        log->error("presence cache: Redis refused {} ({}); serving joins by replay until it accepts", what,
                   error_reply(*reply).text());
      auth_refused = true;
      was_down = true;
      conn.reset();
      return false;
    };
    if (!where->password.empty()) {
      auto reply = where->user.empty() ? conn->command({"AUTH", where->password})
                                       : conn->command({"AUTH", where->user, where->password});
      if (!reply || reply->type == REDIS_REPLY_ERROR) return refused("the password (AUTH)", reply.get());
    }
    if (where->db != 0) {
      auto reply = conn->command({"SELECT", std::to_string(where->db)});
      if (!reply || reply->type == REDIS_REPLY_ERROR) return refused("the database (SELECT)", reply.get());
    }
    if (auth_refused) log->info("presence cache: Redis accepts the credentials now");
    auth_refused = false;
    return true;
  }

  // Reconnects at most once a second, so a dead Redis costs each join nothing
  // more than a skipped lookup.
  bool connected() {
    if (conn) return true;
    if (!where) return false;
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt) return false;
    next_attempt = now + std::chrono::seconds(1);
    redis_failure failure;
    conn = connection::open(where->host, where->port, tls, settings.timeout, &failure);
    if (!conn) {
      fail(failure, "connect");
      return false;
    }
    if (!authenticate()) return false;
    if (was_down) log->info("presence cache: Redis at {}:{} answers again", where->host, where->port);
    was_down = false;
    return true;
  }

  void queue_load(std::string token, load_callback done) {
    std::lock_guard lock(pending_mutex);
    pending_loads.emplace_back(std::move(token), std::move(done));
    if (loads_posted) return;
    loads_posted = true;
    boost::asio::post(thread, [this] { drain_loads(); });
  }

  void drain_loads() {
    std::vector<std::pair<std::string, load_callback>> batch;
    {
      std::lock_guard lock(pending_mutex);
      batch.swap(pending_loads);
      loads_posted = false;
    }
    for (std::size_t at = 0; at < batch.size(); at += stores_per_round_trip) {
      auto end = std::min(batch.size(), at + stores_per_round_trip);
      std::vector<std::string> keys;
      std::vector<std::vector<std::string_view>> commands;
      keys.reserve(end - at);
      for (auto i = at; i < end; ++i) keys.push_back(key(batch[i].first));
      for (auto const& k : keys) commands.push_back({"HMGET", k, "seq", "state"});
      auto replies = run("load", commands);
      for (auto i = at; i < end; ++i)
        batch[i].second(replies.empty() ? std::nullopt : cached_from(replies[i - at].get()));
    }
  }

  static std::optional<cached_room> cached_from(redisReply const* reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
    auto* seq = reply->element[0];
    auto* state = reply->element[1];
    if (seq->type != REDIS_REPLY_STRING || state->type != REDIS_REPLY_STRING) return std::nullopt;
    cached_room out;
    out.seq = std::strtoull(seq->str, nullptr, 10);
    out.snapshot.assign(state->str, state->len);
    return out;
  }

  void queue_store(std::string token, std::uint64_t seq, std::string snapshot, bool force) {
    std::lock_guard lock(pending_mutex);
    auto [it, added] = pending.try_emplace(std::move(token));
    auto& p = it->second;
    if (added || force || seq >= p.seq) {
      p.force = p.force || force;
      p.seq = seq;
      p.snapshot = std::move(snapshot);
    }
    if (drain_posted) return;
    drain_posted = true;
    boost::asio::post(thread, [this] { drain_stores(); });
  }

  void drain_stores() {
    std::unordered_map<std::string, pending_store> batch;
    {
      std::lock_guard lock(pending_mutex);
      batch.swap(pending);
      drain_posted = false;
    }
    std::vector<std::pair<std::string const*, pending_store const*>> chunk;
    for (auto const& entry : batch) {
      chunk.emplace_back(&entry.first, &entry.second);
      if (chunk.size() == stores_per_round_trip) {
        store_chunk(chunk);
        chunk.clear();
      }
    }
    if (!chunk.empty()) store_chunk(chunk);
  }

  // One round trip for the chunk. NOSCRIPT (Redis restarted, or SCRIPT
  // FLUSH) sends the script itself once, which also caches it again.
  void store_chunk(std::vector<std::pair<std::string const*, pending_store const*>> const& chunk) {
    std::string ttl = std::to_string(settings.entry_ttl.count());
    std::vector<std::string> keys, seqs;
    keys.reserve(chunk.size());
    seqs.reserve(chunk.size());
    for (auto const& [token, p] : chunk) {
      keys.push_back(key(*token));
      seqs.push_back(std::to_string(p->seq));
    }
    bool with_script = false;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::vector<std::vector<std::string_view>> commands;
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        auto const* p = chunk[i].second;
        commands.push_back({with_script ? "EVAL" : "EVALSHA", with_script ? std::string_view(store_script) : store_sha,
                            "1", keys[i], seqs[i], p->snapshot, ttl, p->force ? "force" : "newer"});
      }
      auto replies = run("store", commands);
      if (replies.empty()) return;
      bool missing_script = false;
      for (auto const& reply : replies) {
        if (reply->type != REDIS_REPLY_ERROR) continue;
        auto refusal = error_reply(*reply);
        if (refusal.detail.starts_with("NOSCRIPT")) {
          missing_script = true;
          continue;
        }
        fail(refusal, "store");
      }
      if (!missing_script || with_script) return;
      with_script = true;  // the compare-and-set makes sending them all again harmless
    }
  }

  // Runs commands in one round trip; a connection that died since its
  // last use (Redis restarted) gets one immediate reconnect and retry, so
  // the first write after an outage is not lost.
  std::vector<reply_ptr> run(char const* what, std::vector<std::vector<std::string_view>> const& commands) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool was_connected = conn != nullptr;
      if (!connected()) return {};
      auto replies = conn->pipeline(commands);
      reachable = !replies.empty();
      if (!replies.empty()) return replies;
      fail(conn->failure(), what, was_connected);
      if (!was_connected) return {};
      next_attempt = {};
    }
    return {};
  }
};

presence_cache::presence_cache(cache_settings settings, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<impl>()) {
  impl_->settings = std::move(settings);
  impl_->log = std::move(log);
  impl_->where = parse_url(impl_->settings.url);
  if (!impl_->where) {
    impl_->log->error("presence cache: cannot read Redis URL '{}'; running without cache",
                      auth::url_without_credentials(impl_->settings.url));
    return;
  }
  if (!impl_->settings.password.empty()) {
    impl_->where->user = impl_->settings.user;
    impl_->where->password = impl_->settings.password;
  }
  auto const& tls = impl_->settings.tls;
  if (impl_->where->tls || tls.enabled || !tls.ca_file.empty() || !tls.cert_file.empty()) {
    std::string why;
    impl_->tls = tls_client::create(impl_->settings.tls, &why);
    if (!impl_->tls) {
      impl_->log->error("presence cache: {}; running without cache", why);
      impl_->where.reset();
    }
  }
}

presence_cache::~presence_cache() = default;

void presence_cache::load(std::string token, std::function<void(std::optional<cached_room>)> done) {
  impl_->queue_load(std::move(token), std::move(done));
}

void presence_cache::store(std::string token, std::uint64_t seq, std::string snapshot) {
  impl_->queue_store(std::move(token), seq, std::move(snapshot), false);
}

void presence_cache::replace(std::string token, std::uint64_t seq, std::string snapshot) {
  impl_->queue_store(std::move(token), seq, std::move(snapshot), true);
}

bool presence_cache::reachable() const { return impl_->reachable.load(); }

}  // namespace sig::redis
