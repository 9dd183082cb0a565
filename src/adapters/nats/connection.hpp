#pragma once
// One connection to NATS: URL, credentials, TLS, reconnects. An instance
// opens several, each for one kind of traffic, so that none waits behind
// another in nats-server's per-connection read loop: appends and the live
// feed (driven by the instance's I/O thread, see event_loop.hpp), blocking
// reads (room rebuilds, history), and liveness (heartbeats).
//
// nats.h stays out of this header except for the opaque handles.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

struct __natsConnection;
struct __natsOptions;
struct __jsCtx;

namespace spdlog { class logger; }

namespace sig::nats {

// Authentication and TLS towards NATS, on top of what the URL carries
// (user:password@, tls://). Empty fields are not used.
struct nats_security {
  std::string user;
  std::string password;
  std::string token;
  std::string creds_file;  // a .creds file: user JWT and NKey seed (NATS accounts)
  std::string tls_ca;      // CA bundle to verify the server; turns TLS on
  std::string tls_cert;    // client certificate and key, for servers that verify clients
  std::string tls_key;
  bool tls = false;        // TLS with the system's CAs (also: a tls:// URL)
};

struct connection_settings {
  std::string url = "nats://127.0.0.1:4222";  // or several, comma-separated (a cluster)
  nats_security security;
  std::string name;  // shows in the NATS server's connection list
  // true: every publish is written at once; false: nats.c's flusher thread
  // batches writes for up to 1 ms. A connection driven by an event loop
  // always writes at once, batched per loop turn instead.
  bool send_asap = true;
  int connect_attempts = 0;  // 0: keep trying until stopped
  // Testing only: the socket's receive buffer (SO_RCVBUF) under an event
  // loop; 0: the kernel's, autotuned.
  int fault_receive_buffer = 0;
};

class event_loop;

// Opens nats.c with no spinning on its mutexes: nats.c spins up to 2,000
// times before it blocks, which on two cores shared by every process burns
// the time the lock holder needs (natsMutex_Lock and trylock were 6 % of an
// instance in a join burst). Call before any other nats.c function; it
// starts nats.c's timer and collector threads.
void open_library();

// "nats://a:4222, nats://b:4222" -> {"nats://a:4222", "nats://b:4222"}: the
// servers of a cluster, any of which a connection may use (and move to
// when the one it uses goes away). Blanks around entries are dropped.
std::vector<std::string> server_urls(std::string_view list);

class connection {
 public:
  connection(connection_settings settings, std::shared_ptr<spdlog::logger> log);
  ~connection();
  connection(connection const&) = delete;
  connection& operator=(connection const&) = delete;

  // Blocking. Connects, retrying with backoff until `stop` is set (or
  // `connect_attempts` ran out). With `loop`, the connection's socket is
  // read and written by that loop instead of nats.c's own threads.
  bool open(std::atomic<bool> const& stop, event_loop* loop = nullptr);
  bool connected() const;
  // Closes and waits for nats.c's last callback. Idempotent.
  void close();
  bool closing() const { return closing_; }

  __natsConnection* handle() const { return nc_; }
  __jsCtx* jetstream() const { return js_; }
  connection_settings const& settings() const { return settings_; }
  spdlog::logger& log() const { return *log_; }
  std::shared_ptr<spdlog::logger> const& logger() const { return log_; }
  bool uses_tls() const;

 private:
  bool apply_security();
  bool connect_once();
  void fail(std::error_code ec, std::string_view what) const;
  static void on_disconnected(__natsConnection*, void* closure);
  static void on_reconnected(__natsConnection*, void* closure);
  static void on_closed(__natsConnection*, void* closure);

  connection_settings settings_;
  std::shared_ptr<spdlog::logger> log_;
  __natsOptions* opts_ = nullptr;
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  std::atomic<bool> closing_{false};  // our own close is not an outage
  // nats.c calls the connection callbacks on a thread of its own, after
  // natsConnection_Close has returned: close() waits for the last one
  // (closed) so that none can run once this object is gone.
  std::mutex closed_mutex_;
  std::condition_variable closed_signal_;
  bool closed_ = false;
};

}  // namespace sig::nats
