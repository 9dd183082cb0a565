#pragma once
// One blocking connection to Redis, plain TCP or TLS, for the presence
// cache's own thread. hiredis 0.14 (Debian 12) has no TLS, so hiredis only
// formats commands and parses replies (RESP); the bytes travel over a socket
// of our own, through OpenSSL when TLS is on. Every step is bounded by the
// timeout: a Redis that stops answering costs a join a skipped lookup, never
// a stuck thread.
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis/redis_errors.hpp"

struct redisReply;

namespace sig::redis {

struct tls_settings {
  bool enabled = false;
  std::string ca_file;    // empty: the system's CAs
  std::string cert_file;  // client certificate, for servers that verify clients
  std::string key_file;
};

struct reply_deleter {
  void operator()(redisReply* r) const;
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

// Shared by the connections of one cache: the TLS context (CA, client
// certificate) is loaded once.
class tls_client {
 public:
  // Nullptr (and *error) if a file cannot be loaded.
  static std::shared_ptr<tls_client> create(tls_settings const& settings, std::string* error);
  ~tls_client();
  void* native() const { return ctx_; }  // SSL_CTX*

 private:
  tls_client() = default;
  void* ctx_ = nullptr;
};

// One address a host name resolved to.
struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

class connection {
 public:
  // Resolves `host`, then connects to its addresses in turn (and
  // handshakes, with `tls`). Nullptr and *failure on failure.
  static std::unique_ptr<connection> open(std::string const& host, int port, std::shared_ptr<tls_client> tls,
                                          std::chrono::milliseconds timeout, redis_failure* failure);
  // The same over addresses already resolved: the first that answers is
  // used, and an earlier one's refusal is forgotten. `host` names the
  // server for TLS (SNI and the certificate check).
  static std::unique_ptr<connection> open(std::vector<socket_address> const& addresses, std::string const& host,
                                          std::shared_ptr<tls_client> tls, std::chrono::milliseconds timeout,
                                          redis_failure* failure);
  ~connection();

  // Sends one command (binary-safe arguments) and waits for its reply.
  // Nullptr and failure() set when the connection failed: it is then unusable.
  reply_ptr command(std::vector<std::string_view> const& args);
  // Sends every command in one write, then reads their replies in order:
  // one round trip for the lot. Empty (and failure() set) when the
  // connection failed.
  std::vector<reply_ptr> pipeline(std::vector<std::vector<std::string_view>> const& commands);
  // An errno code of the socket, or a hiredis one (redis_errors.hpp).
  redis_failure const& failure() const { return failure_; }

  // The same steps without waiting, for a caller whose own event loop waits
  // on native_handle() (presence_cache, on the I/O thread). Each says what
  // to wait for before it is called again; `failed` sets failure().
  enum class step { done, wait_readable, wait_writable, failed };
  // Appends one command (binary-safe arguments) in RESP to `out`.
  static bool format(std::vector<std::string_view> const& args, std::string& out);
  // As much of `bytes` as the socket takes now; *written says how much.
  step write_now(std::string_view bytes, std::size_t* written);
  // What the socket holds now, into the reply parser: `done` once it is
  // drained (the caller waits for readable), or failed.
  step read_now();
  // The next whole reply read so far; nullptr when there is none yet, or
  // when the bytes are not RESP (failure() set).
  reply_ptr next_reply();
  int native_handle() const { return fd_; }

 private:
  connection() = default;
  bool write_all(std::string_view bytes);
  // Some bytes from the server into the reply parser; false on error/timeout.
  bool read_some();
  bool wait_for(bool writable);
  // One SSL_read or recv into the parser: done (bytes fed), or what to wait for.
  step read_once();

  int fd_ = -1;
  void* ssl_ = nullptr;     // SSL*, with TLS
  void* reader_ = nullptr;  // redisReader*
  std::shared_ptr<tls_client> tls_;
  std::chrono::milliseconds timeout_{500};
  redis_failure failure_;
};

}  // namespace sig::redis
