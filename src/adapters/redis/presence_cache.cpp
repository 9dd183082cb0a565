#include "adapters/redis/presence_cache.hpp"

#include "adapters/redis/connection.hpp"
#include "adapters/redis/redis_errors.hpp"
#include "adapters/redis/redis_url.hpp"
#include "auth/url_credentials.hpp"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <deque>
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

}  // namespace

struct presence_cache::impl {
  using clock = std::chrono::steady_clock;
  using load_callback = std::function<void(std::optional<cached_room>)>;

  impl(boost::asio::io_context& io)
      : strand(boost::asio::make_strand(io)), reply_timer(strand) {}

  cache_settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::optional<endpoint> where;
  std::shared_ptr<tls_client> tls;  // with TLS: the context every connection uses
  std::string const store_sha = script_sha1(store_script);
  std::atomic<bool> reachable{false};  // the last command got an answer
  std::atomic<std::uint64_t> error_count{0};

  // Everything below is touched on `strand` only.
  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  boost::asio::steady_timer reply_timer;  // the oldest command's deadline
  bool reply_timer_armed = false;
  std::unique_ptr<connection> conn;
  // The connection's socket, for the reactor's waits; released before
  // `conn` closes it.
  std::unique_ptr<boost::asio::posix::stream_descriptor> socket;
  std::uint64_t generation = 0;  // of the connection: waits of an earlier one are ignored
  bool write_waiting = false;
  bool write_scheduled = false;  // a write() is posted for the end of this turn of the loop
  bool read_waiting = false;
  bool connecting = false;
  clock::time_point next_attempt{};
  bool was_down = false;
  bool auth_refused = false;

  struct pending_store {
    std::uint64_t seq = 0;
    std::string snapshot;
    bool force = false;
  };
  // A command written, or formatted in `out` and about to be, waiting for
  // its reply: replies come in the order the commands went.
  struct command {
    std::string token;
    load_callback loaded;  // a load; empty: a store
    pending_store store;
    bool with_script = false;  // EVAL with the script's text, after NOSCRIPT
    bool resent = false;       // sent again after the connection it went on dropped
    clock::time_point queued;
  };
  std::string out;  // formatted, not yet taken by the socket
  std::deque<command> awaiting;
  // Snapshots waiting for the end of this turn of the loop, the newest per room.
  std::unordered_map<std::string, pending_store> pending;  // by room token
  bool stores_scheduled = false;

  // Connecting (resolving, TCP, the TLS handshake, AUTH) blocks, but once
  // per outage at most once a second: on a thread of its own, never on the
  // I/O thread.
  boost::asio::thread_pool connector{1};

  ~impl() {
    connector.join();
    close();
  }

  std::string key(std::string const& token) const { return settings.key_prefix + ":room:" + token; }

  // --- Commands ---------------------------------------------------------------

  void load(std::string token, load_callback done) {
    if (!usable()) return done(std::nullopt);
    send(command{.token = std::move(token), .loaded = std::move(done), .queued = clock::now()});
  }

  void store(std::string token, std::uint64_t seq, std::string snapshot, bool force) {
    auto [it, added] = pending.try_emplace(std::move(token));
    auto& p = it->second;
    if (added || force || seq >= p.seq) {
      p.force = p.force || force;
      p.seq = seq;
      p.snapshot = std::move(snapshot);
    }
    if (stores_scheduled) return;
    stores_scheduled = true;
    // Posted: the stores of this turn of the loop coalesce, the newest per
    // room, and go out together.
    boost::asio::post(strand, [this] { send_stores(); });
  }

  void send_stores() {
    stores_scheduled = false;
    auto batch = std::move(pending);
    pending.clear();
    if (!usable()) return;  // Redis is down: the next change or rebuild repairs the entry
    auto now = clock::now();
    for (auto& [token, p] : batch) send(command{.token = token, .store = std::move(p), .queued = now});
  }

  void send(command c) {
    bool formatted = false;
    auto k = key(c.token);
    if (c.loaded) {
      formatted = connection::format({"HMGET", k, "seq", "state"}, out);
    } else {
      auto const& p = c.store;
      std::string seq = std::to_string(p.seq), ttl = std::to_string(settings.entry_ttl.count());
      formatted = connection::format({c.with_script ? "EVAL" : "EVALSHA",
                                      c.with_script ? std::string_view(store_script) : std::string_view(store_sha), "1",
                                      k, seq, p.snapshot, ttl, p.force ? "force" : "newer"},
                                     out);
    }
    if (!formatted) {
      ++error_count;
      log->warn("presence cache: cannot format a command (out of memory)");
      if (c.loaded) c.loaded(std::nullopt);
      return;
    }
    awaiting.push_back(std::move(c));
    arm_reply_timer();
    schedule_write();
  }

  // The commands of one turn of the loop (a burst's rebuilds, each its own
  // handler) go out in one write, and Redis answers them in one: one
  // system call and one wake-up each side instead of one per command.
  void schedule_write() {
    if (write_scheduled) return;
    write_scheduled = true;
    boost::asio::post(strand, [this] {
      write_scheduled = false;
      write();
    });
  }

  void take(reply_ptr reply) {
    auto c = std::move(awaiting.front());
    awaiting.pop_front();
    if (c.loaded) {
      c.loaded(cached_from(reply.get()));
      return;
    }
    if (reply->type != REDIS_REPLY_ERROR) return;
    auto refusal = error_reply(*reply);
    // NOSCRIPT (Redis restarted, or SCRIPT FLUSH): the script itself once,
    // which also caches it again; the compare-and-set makes a resend harmless.
    if (refusal.detail.starts_with("NOSCRIPT") && !c.with_script) {
      c.with_script = true;
      c.queued = clock::now();
      send(std::move(c));
      return;
    }
    fail(refusal, "store");
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

  // --- The socket, on the I/O thread --------------------------------------------

  void write() {
    if (!conn || write_waiting || out.empty()) return;
    std::size_t written = 0;
    auto next = conn->write_now(out, &written);
    out.erase(0, written);
    if (next == connection::step::failed) return dropped("store");
    if (next != connection::step::done) wait(next, write_waiting, [this] { write(); });
    read();
  }

  void read() {
    if (!conn || read_waiting || awaiting.empty()) return;
    wait(connection::step::wait_readable, read_waiting, [this] { on_readable(); });
  }

  void on_readable() {
    auto next = conn->read_now();
    while (!awaiting.empty()) {
      auto reply = conn->next_reply();
      if (!reply) break;
      reachable = true;
      take(std::move(reply));
      if (!conn) return;  // a callback's failure dropped it
    }
    if (conn->failure() || next == connection::step::failed)
      return dropped(awaiting.empty() || awaiting.front().loaded ? "load" : "store");
    // OpenSSL may need to write (a key update) before it can read on.
    if (next == connection::step::wait_writable) {
      if (!read_waiting) wait(next, read_waiting, [this] { on_readable(); });
      return;
    }
    read();
  }

  template <typename Then>
  void wait(connection::step what, bool& waiting, Then then) {
    waiting = true;
    auto kind = what == connection::step::wait_writable ? boost::asio::posix::stream_descriptor::wait_write
                                                        : boost::asio::posix::stream_descriptor::wait_read;
    socket->async_wait(kind, boost::asio::bind_executor(strand, [this, &waiting, then, g = generation](
                                                                    boost::system::error_code ec) {
      if (g != generation) return;
      waiting = false;
      if (ec) return dropped("wait");
      then();
    }));
  }

  // The oldest command unanswered for the timeout fails the connection: a
  // Redis that stops answering costs a join a skipped lookup.
  void arm_reply_timer() {
    if (reply_timer_armed || awaiting.empty()) return;
    reply_timer_armed = true;
    reply_timer.expires_at(awaiting.front().queued + settings.timeout);
    reply_timer.async_wait([this](boost::system::error_code ec) {
      reply_timer_armed = false;
      if (ec || awaiting.empty()) return;
      if (clock::now() < awaiting.front().queued + settings.timeout) return arm_reply_timer();
      fail({redis_error::timeout, {}}, awaiting.front().loaded ? "load" : "store");
      close();
      give_up_all();
    });
  }

  // --- Connecting and failing ---------------------------------------------------

  // Connected, connecting, or a new attempt started now: reconnects happen
  // at most once a second, so a dead Redis costs each join nothing more
  // than a skipped lookup.
  bool usable() {
    if (conn || connecting) return true;
    if (!where) return false;
    auto now = clock::now();
    if (now < next_attempt) return false;
    next_attempt = now + std::chrono::seconds(1);
    connect();
    return true;
  }

  struct attempt {
    std::unique_ptr<connection> conn;
    redis_failure failure;
    std::string refused;  // AUTH or SELECT refused: what
    std::string refusal;  // and Redis's reply
  };

  void connect() {
    connecting = true;
    boost::asio::post(connector, [this, where = *where, tls = tls, timeout = settings.timeout] {
      auto a = std::make_shared<attempt>();
      a->conn = connection::open(where.host, where.port, tls, timeout, &a->failure);
      if (a->conn) authenticate(where, *a);
      boost::asio::post(strand, [this, a] { connected(std::move(*a)); });
    });
  }

  // AUTH and SELECT on a new connection, on the connector's thread.
  static void authenticate(endpoint const& where, attempt& a) {
    auto check = [&](char const* what, reply_ptr const& reply) {
      if (!reply) {  // no answer at all: the connection failed, nothing was refused
        a.failure = a.conn->failure();
      } else if (reply->type == REDIS_REPLY_ERROR) {
        a.refused = what;
        a.refusal = error_reply(*reply).text();
      } else {
        return true;
      }
      a.conn.reset();
      return false;
    };
    if (!where.password.empty()) {
      auto reply = where.user.empty() ? a.conn->command({"AUTH", where.password})
                                      : a.conn->command({"AUTH", where.user, where.password});
      if (!check("the password (AUTH)", reply)) return;
    }
    if (where.db != 0) check("the database (SELECT)", a.conn->command({"SELECT", std::to_string(where.db)}));
  }

  void connected(attempt a) {
    connecting = false;
    if (!a.refused.empty()) {
      // An operator's mistake: said once as an error (the reply, never the
      // password); joins are served by replay, retrying once a second.
      ++error_count;
      if (!auth_refused)
        log->error("presence cache: Redis refused {} ({}); serving joins by replay until it accepts", a.refused,
                   a.refusal);
      auth_refused = true;
      was_down = true;
      give_up_all();
      return;
    }
    if (!a.conn) {
      fail(a.failure, "connect");
      give_up_all();
      return;
    }
    conn = std::move(a.conn);
    socket = std::make_unique<boost::asio::posix::stream_descriptor>(strand, conn->native_handle());
    ++generation;
    if (auth_refused) log->info("presence cache: Redis accepts the credentials now");
    auth_refused = false;
    if (was_down) log->info("presence cache: Redis at {}:{} answers again", where->host, where->port);
    was_down = false;
    write();
    read();
  }

  // Every failure is counted. An error reply leaves the connection usable,
  // and is told each time. Any other failure is told once per outage, since
  // Redis is only a cache: joins go on by replay meanwhile. Quiet: Redis
  // dropping a connection that was working (its idle timeout, a restart),
  // when `retrying` on a new one at once; a reconnect that fails is told.
  void fail(redis_failure const& failure, char const* what, bool retrying = false) {
    ++error_count;
    if (failure.code == redis_error::error_reply) {
      log->warn("presence cache: {} refused: {}", what, failure.text());
      return;
    }
    reachable = false;
    if (retrying && connection_dropped(failure.code)) {
      log->debug("presence cache: {} failed ({}); reconnecting", what, failure.text());
    } else {
      if (!was_down) log->warn("presence cache: {} failed ({}); serving joins by replay until Redis answers", what,
                               failure.text());
      was_down = true;
    }
  }

  // The connection failed. One that Redis dropped after working (it
  // restarted) is replaced at once and its commands sent again, so that
  // the first write after an outage is not lost; otherwise they are given up.
  void dropped(char const* what) {
    auto failure = conn ? conn->failure() : redis_failure{redis_error::eof, {}};
    bool retry = connection_dropped(failure.code);
    fail(failure, what, retry);
    close();
    auto commands = std::move(awaiting);
    awaiting.clear();
    if (retry) {
      next_attempt = {};
      usable();
    }
    for (auto& c : commands) {
      if (retry && !c.resent) {
        c.resent = true;
        c.queued = clock::now();
        send(std::move(c));
      } else if (c.loaded) {
        c.loaded(std::nullopt);
      }
    }
  }

  void close() {
    ++generation;
    write_waiting = read_waiting = false;
    out.clear();
    if (socket) {
      boost::system::error_code ec;
      socket->cancel(ec);
      socket->release();
      socket.reset();
    }
    conn.reset();
  }

  // Loads are answered "nothing cached"; stores are dropped (the next
  // membership change or rebuild writes the room again).
  void give_up_all() {
    out.clear();
    auto commands = std::move(awaiting);
    awaiting.clear();
    for (auto& c : commands)
      if (c.loaded) c.loaded(std::nullopt);
  }
};

presence_cache::presence_cache(boost::asio::io_context& io, cache_settings settings, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<impl>(io)) {
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
  boost::asio::post(impl_->strand, [this, token = std::move(token), done = std::move(done)]() mutable {
    impl_->load(std::move(token), std::move(done));
  });
}

void presence_cache::store(std::string token, std::uint64_t seq, std::string snapshot) {
  boost::asio::post(impl_->strand, [this, token = std::move(token), seq, snapshot = std::move(snapshot)]() mutable {
    impl_->store(std::move(token), seq, std::move(snapshot), false);
  });
}

void presence_cache::replace(std::string token, std::uint64_t seq, std::string snapshot) {
  boost::asio::post(impl_->strand, [this, token = std::move(token), seq, snapshot = std::move(snapshot)]() mutable {
    impl_->store(std::move(token), seq, std::move(snapshot), true);
  });
}

bool presence_cache::reachable() const { return impl_->reachable.load(); }

}  // namespace sig::redis
