#include "adapters/redis/presence_cache.hpp"

#include "auth/url_credentials.hpp"

#include <hiredis/hiredis.h>
#include <cctype>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>

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

struct endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
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
  constexpr std::string_view scheme = "redis://";
  if (rest.rfind(scheme, 0) == 0) rest = rest.substr(scheme.size());
  else if (rest.find("://") != std::string::npos) return std::nullopt;  // rediss:// and the like
  endpoint ep;
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

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

}  // namespace

struct presence_cache::impl {
  cache_settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::optional<endpoint> where;
  boost::asio::thread_pool thread{1};
  // Touched only on `thread`.
  redisContext* ctx = nullptr;
  std::atomic<bool> reachable{false};  // the last command got an answer
  std::chrono::steady_clock::time_point next_attempt{};
  bool was_down = false;
  bool auth_refused = false;
  std::atomic<std::uint64_t> error_count{0};

  ~impl() {
    thread.join();
    if (ctx != nullptr) redisFree(ctx);
  }

  std::string key(std::string const& token) const { return settings.key_prefix + ":room:" + token; }

  void failed(char const* what) {
    ++error_count;
    if (!was_down) log->warn("presence cache: {} failed ({}); serving joins by replay until Redis answers", what,
                             ctx != nullptr && ctx->errstr[0] != '\0' ? ctx->errstr : "no reply");
    was_down = true;
    if (ctx != nullptr) redisFree(ctx);
    ctx = nullptr;
  }

  // AUTH and SELECT on a new connection. A refused password is an operator's
  // mistake: said once as an error (the reply, never the password), then the
  // instance serves joins by replay, retrying once a second.
  bool authenticate() {
    auto refused = [&](char const* what, redisReply* reply) {
      ++error_count;
      if (!auth_refused)
        log->error("presence cache: Redis refused {} ({}); serving joins by replay until it accepts", what,
                   reply != nullptr && reply->type == REDIS_REPLY_ERROR ? reply->str : (ctx->errstr[0] ? ctx->errstr : "no reply"));
      auth_refused = true;
      was_down = true;
      redisFree(ctx);
      ctx = nullptr;
      return false;
    };
    if (!where->password.empty()) {
      reply_ptr reply(static_cast<redisReply*>(
          where->user.empty() ? redisCommand(ctx, "AUTH %s", where->password.c_str())
                              : redisCommand(ctx, "AUTH %s %s", where->user.c_str(), where->password.c_str())));
      if (!reply || reply->type == REDIS_REPLY_ERROR) return refused("the password (AUTH)", reply.get());
    }
    if (where->db != 0) {
      reply_ptr reply(static_cast<redisReply*>(redisCommand(ctx, "SELECT %d", where->db)));
      if (!reply || reply->type == REDIS_REPLY_ERROR) return refused("the database (SELECT)", reply.get());
    }
    if (auth_refused) log->info("presence cache: Redis accepts the credentials now");
    auth_refused = false;
    return true;
  }

  // Reconnects at most once a second, so a dead Redis costs each join nothing
  // more than a skipped lookup.
  bool connected() {
    if (ctx != nullptr) return true;
    if (!where) return false;
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt) return false;
    next_attempt = now + std::chrono::seconds(1);
    timeval tv{0, static_cast<suseconds_t>(settings.timeout.count() * 1000)};
    ctx = redisConnectWithTimeout(where->host.c_str(), where->port, tv);
    if (ctx == nullptr || ctx->err != 0) {
      failed("connect");
      return false;
    }
    redisSetTimeout(ctx, tv);
    if (!authenticate()) return false;
    if (was_down) log->info("presence cache: Redis at {}:{} answers again", where->host, where->port);
    was_down = false;
    return true;
  }

  // Runs a command; a connection that died since its last use (Redis
  // restarted) gets one immediate reconnect and retry, so the first write
  // after an outage is not lost.
  template <typename... Args>
  reply_ptr command(char const* what, char const* format, Args... args) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool was_connected = ctx != nullptr;
      if (!connected()) return nullptr;
      reply_ptr reply(static_cast<redisReply*>(redisCommand(ctx, format, args...)));
      reachable = reply != nullptr;
      if (reply) return reply;
      failed(what);
      if (!was_connected) return nullptr;
      next_attempt = {};  // the old connection was stale: reconnect now
    }
    return nullptr;
  }

  std::optional<cached_room> do_load(std::string const& token) {
    std::string k = key(token);
    auto reply = command("load", "HMGET %b seq state", k.data(), k.size());
    if (!reply) return std::nullopt;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
    auto* seq = reply->element[0];
    auto* state = reply->element[1];
    if (seq->type != REDIS_REPLY_STRING || state->type != REDIS_REPLY_STRING) return std::nullopt;
    cached_room out;
    out.seq = std::strtoull(seq->str, nullptr, 10);
    out.snapshot.assign(state->str, state->len);
    return out;
  }

  void do_store(std::string const& token, std::uint64_t seq, std::string const& snapshot, bool force) {
    std::string k = key(token);
    std::string seq_text = std::to_string(seq);
    std::string ttl = std::to_string(settings.entry_ttl.count());
    char const* mode = force ? "force" : "newer";
    auto reply = command("store", "EVAL %s 1 %b %b %b %b %s", store_script, k.data(), k.size(), seq_text.data(),
                         seq_text.size(), snapshot.data(), snapshot.size(), ttl.data(), ttl.size(), mode);
    if (!reply) return;
    if (reply->type == REDIS_REPLY_ERROR) {
      ++error_count;
      log->warn("presence cache: store refused: {}", std::string(reply->str, reply->len));
    }
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
  } else if (!impl_->settings.password.empty()) {
    impl_->where->user = impl_->settings.user;
    impl_->where->password = impl_->settings.password;
  }
}

presence_cache::~presence_cache() = default;

void presence_cache::load(std::string token, std::function<void(std::optional<cached_room>)> done) {
  boost::asio::post(impl_->thread, [d = impl_.get(), token = std::move(token), done = std::move(done)] {
    done(d->do_load(token));
  });
}

void presence_cache::store(std::string token, std::uint64_t seq, std::string snapshot) {
  boost::asio::post(impl_->thread, [d = impl_.get(), token = std::move(token), seq, snapshot = std::move(snapshot)] {
    d->do_store(token, seq, snapshot, false);
  });
}

void presence_cache::replace(std::string token, std::uint64_t seq, std::string snapshot) {
  boost::asio::post(impl_->thread, [d = impl_.get(), token = std::move(token), seq, snapshot = std::move(snapshot)] {
    d->do_store(token, seq, snapshot, true);
  });
}

bool presence_cache::reachable() const { return impl_->reachable.load(); }

}  // namespace sig::redis
