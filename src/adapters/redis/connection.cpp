#include "adapters/redis/connection.hpp"

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>

namespace sig::redis {

void reply_deleter::operator()(redisReply* r) const { freeReplyObject(r); }

namespace {

std::error_code errno_code(int e) { return {e, std::system_category()}; }

// After a failed SSL_read/SSL_write: the queued OpenSSL reason, or what
// the socket said.
redis_failure tls_failure(char const* what, int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return {redis_error::eof, "TLS connection closed by Redis"};
  unsigned long code = ERR_peek_error();
  if (ssl_error == SSL_ERROR_SYSCALL && code == 0) {
    if (errno == 0) return {redis_error::eof, std::string(what) + ": connection closed by Redis"};
    return {errno_code(errno), std::string(what) + ": " + std::strerror(errno)};
  }
  char text[256] = {0};
  ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return {redis_error::io, std::string(what) + ": " + text};
}

std::string openssl_error(char const* what) {
  unsigned long code = ERR_get_error();
  char text[256] = {0};
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return std::string(what) + (code != 0 ? std::string(": ") + text : std::string());
}

}  // namespace

std::shared_ptr<tls_client> tls_client::create(tls_settings const& settings, std::string* error) {
  std::shared_ptr<tls_client> out(new tls_client());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  out->ctx_ = ctx;
  if (ctx == nullptr) {
    *error = openssl_error("cannot create a TLS context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  bool loaded = settings.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                         : SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) == 1;
  if (!loaded) {
    *error = openssl_error(settings.ca_file.empty() ? "cannot load the system's CAs" : "cannot load the TLS CA file");
    return nullptr;
  }
  if (!settings.cert_file.empty() || !settings.key_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      *error = openssl_error("cannot load the TLS client certificate and key");
      return nullptr;
    }
  }
  return out;
}

tls_client::~tls_client() {
  if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

std::unique_ptr<connection> connection::open(std::string const& host, int port, std::shared_ptr<tls_client> tls,
                                             std::chrono::milliseconds timeout, redis_failure* failure) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    *failure = {redis_error::other, std::string("cannot resolve ") + host + ": " + gai_strerror(rc)};
    return nullptr;
  }
  std::vector<socket_address> addresses;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    socket_address address;
    std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
    address.length = a->ai_addrlen;
    addresses.push_back(address);
  }
  freeaddrinfo(found);
  return open(addresses, host, std::move(tls), timeout, failure);
}

std::unique_ptr<connection> connection::open(std::vector<socket_address> const& addresses, std::string const& host,
                                             std::shared_ptr<tls_client> tls, std::chrono::milliseconds timeout,
                                             redis_failure* failure) {
  std::unique_ptr<connection> c(new connection());
  c->timeout_ = timeout;
  c->tls_ = std::move(tls);
  for (auto const& a : addresses) {
    auto const* where = reinterpret_cast<sockaddr const*>(&a.storage);
    int fd = ::socket(where->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    c->fd_ = fd;
    if (::connect(fd, where, a.length) == 0) break;
    int so_error = errno;
    if (so_error == EINPROGRESS && c->wait_for(true)) {
      socklen_t len = sizeof so_error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error == 0) break;
    }
    // Still in progress: wait_for said why (no answer in time, or poll's errno).
    if (so_error != EINPROGRESS) c->failure_ = {errno_code(so_error), {}};
    ::close(fd);
    c->fd_ = -1;
  }
  if (c->fd_ < 0) {
    *failure = c->failure_ ? c->failure_ : redis_failure{redis_error::other, "no address for " + host};
    return nullptr;
  }
  // An address tried before the one that answered leaves its failure behind.
  c->failure_ = {};
  if (c->tls_) {
    SSL* ssl = SSL_new(static_cast<SSL_CTX*>(c->tls_->native()));
    c->ssl_ = ssl;
    SSL_set_fd(ssl, c->fd_);
    // The caller's buffer grows while a write waits for the socket
    // (presence_cache appends the next commands to it): a write is retried
    // from a moved, longer buffer, and may take part of it.
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_tlsext_host_name(ssl, host.c_str());
    // The certificate must name the host we dialled (a name or an address).
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) SSL_set1_host(ssl, host.c_str());
    for (;;) {
      int rc = SSL_connect(ssl);
      if (rc == 1) break;
      int why = SSL_get_error(ssl, rc);
      if ((why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) && c->wait_for(why == SSL_ERROR_WANT_WRITE))
        continue;
      long verify = SSL_get_verify_result(ssl);
      *failure = {redis_error::io, verify != X509_V_OK ? std::string("TLS: ") + X509_verify_cert_error_string(verify)
                                                       : openssl_error("TLS handshake failed")};
      return nullptr;
    }
  }
  c->reader_ = redisReaderCreate();
  return c;
}

connection::~connection() {
  if (ssl_ != nullptr) {
    SSL_shutdown(static_cast<SSL*>(ssl_));  // best effort: the socket is non-blocking
    SSL_free(static_cast<SSL*>(ssl_));
  }
  if (fd_ >= 0) ::close(fd_);
  if (reader_ != nullptr) redisReaderFree(static_cast<redisReader*>(reader_));
}

bool connection::wait_for(bool writable) {
  pollfd p{fd_, static_cast<short>(writable ? POLLOUT : POLLIN), 0};
  int rc;
  do rc = ::poll(&p, 1, static_cast<int>(timeout_.count()));
  while (rc < 0 && errno == EINTR);
  if (rc == 0) failure_ = {redis_error::timeout, {}};
  else if (rc < 0) failure_ = {errno_code(errno), {}};
  return rc > 0;
}

connection::step connection::write_now(std::string_view bytes, std::size_t* written) {
  *written = 0;
  while (*written < bytes.size()) {
    auto rest = bytes.substr(*written);
    if (ssl_ != nullptr) {
      auto* ssl = static_cast<SSL*>(ssl_);
      int n = SSL_write(ssl, rest.data(), static_cast<int>(rest.size()));
      if (n > 0) {
        *written += static_cast<std::size_t>(n);
        continue;
      }
      int why = SSL_get_error(ssl, n);
      if (why == SSL_ERROR_WANT_WRITE) return step::wait_writable;
      if (why == SSL_ERROR_WANT_READ) return step::wait_readable;
      if (!failure_) failure_ = tls_failure("TLS write failed", why);
      return step::failed;
    }
    ssize_t n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n > 0) {
      *written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return step::wait_writable;
    } else {
      failure_ = {errno_code(errno), {}};
      return step::failed;
    }
  }
  return step::done;
}

bool connection::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    std::size_t written = 0;
    auto next = write_now(bytes, &written);
    bytes.remove_prefix(written);
    if (next == step::failed) return false;
    if (next != step::done && !wait_for(next == step::wait_writable)) return false;
  }
  return true;
}

connection::step connection::read_once() {
  char buffer[16 * 1024];
  auto feed = [&](std::size_t n) {
    if (redisReaderFeed(static_cast<redisReader*>(reader_), buffer, n) == REDIS_OK) return step::done;
    failure_ = {redis_error::oom, "cannot buffer a reply"};
    return step::failed;
  };
  for (;;) {
    if (ssl_ != nullptr) {
      auto* ssl = static_cast<SSL*>(ssl_);
      int n = SSL_read(ssl, buffer, sizeof buffer);
      if (n > 0) return feed(static_cast<std::size_t>(n));
      int why = SSL_get_error(ssl, n);
      if (why == SSL_ERROR_WANT_READ) return step::wait_readable;
      if (why == SSL_ERROR_WANT_WRITE) return step::wait_writable;
      if (!failure_) failure_ = tls_failure("TLS read failed", why);
      return step::failed;
    }
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) return feed(static_cast<std::size_t>(n));
    if (n == 0) {
      failure_ = {redis_error::eof, {}};
      return step::failed;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return step::wait_readable;
    failure_ = {errno_code(errno), {}};
    return step::failed;
  }
}

bool connection::read_some() {
  for (;;) {
    auto next = read_once();
    if (next == step::done) return true;
    if (next == step::failed || !wait_for(next == step::wait_writable)) return false;
  }
}

// Until the socket, and OpenSSL's buffer, are empty: an edge-triggered
// wait would not fire for bytes already there.
connection::step connection::read_now() {
  for (;;) {
    auto next = read_once();
    if (next == step::done) continue;
    return next == step::wait_readable ? step::done : next;
  }
}

// Replies read before the socket failed (Redis answered, then closed) are
// still whole: they are parsed all the same.
reply_ptr connection::next_reply() {
  auto* reader = static_cast<redisReader*>(reader_);
  if (reader->err != 0) return nullptr;
  void* reply = nullptr;
  if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
    failure_ = {hiredis_error(reader->err), std::string("bad reply: ") + reader->errstr};
    return nullptr;
  }
  return reply_ptr(static_cast<redisReply*>(reply));
}

bool connection::format(std::vector<std::string_view> const& args, std::string& out) {
  std::vector<char const*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* formatted = nullptr;
  int length = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (length < 0) return false;  // hiredis could not allocate it
  out.append(formatted, static_cast<std::size_t>(length));
  redisFreeCommand(formatted);
  return true;
}

reply_ptr connection::command(std::vector<std::string_view> const& args) {
  auto replies = pipeline({args});
  if (replies.empty()) return nullptr;
  return std::move(replies.front());
}

std::vector<reply_ptr> connection::pipeline(std::vector<std::vector<std::string_view>> const& commands) {
  std::vector<reply_ptr> replies;
  if (failure_ || commands.empty()) return replies;
  std::string out;
  for (auto const& args : commands) {
    if (!format(args, out)) {
      failure_ = {redis_error::oom, "cannot format the command"};
      return replies;
    }
  }
  if (!write_all(out)) return replies;
  replies.reserve(commands.size());
  while (replies.size() < commands.size()) {
    auto reply = next_reply();
    if (failure_) {
      replies.clear();
      return replies;
    }
    if (reply) {
      replies.push_back(std::move(reply));
    } else if (!read_some()) {
      replies.clear();
      return replies;
    }
  }
  return replies;
}

}  // namespace sig::redis
