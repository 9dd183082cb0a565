#pragma once
// The network side of `sigstream-bench`: an asynchronous WebSocket client and
// a one-shot HTTP GET, both on a shared io_context. Beast stays in
// bench_client.cpp; this header needs only Asio's basic types.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bench/bench_system.hpp"

namespace sig::bench {

// Shared by every client; updated from the io threads.
struct client_counters {
  std::atomic<std::uint64_t> frames_out{0};
  std::atomic<std::uint64_t> frames_in{0};
  // Frames the bench never wrote: refused because the client already held
  // max_queue of them, or dropped because the connection closed first.
  std::atomic<std::uint64_t> queue_full{0};
  std::atomic<std::uint64_t> closed_unexpectedly{0};
};

struct client_settings {
  target_url url;
  boost::asio::ip::tcp::endpoint endpoint;
  std::chrono::milliseconds timeout{5000};  // connect, handshake and close, each
  std::size_t max_queue = 4096;             // frames sent and not yet written, at most
  client_counters* counters = nullptr;
  std::string instance_header = "X-Sigstream-Instance";  // read from the upgrade response
};

class ws_client {
 public:
  // Every callback runs on the client's own strand, one at a time.
  struct callbacks {
    std::function<void(std::string instance)> on_open;  // the instance header of the upgrade response
    std::function<void(std::string error)> on_fail;     // connect or handshake failed
    std::function<void(std::string_view frame)> on_message;
    std::function<void(std::string reason, bool expected)> on_close;  // after on_open only
  };

  virtual ~ws_client() = default;
  virtual void start(callbacks handlers) = 0;
  // Any thread. A frame over the queue limit is dropped and counted.
  virtual void send(std::string frame) = 0;
  // Any thread. Frames sent and neither written nor dropped yet.
  virtual std::size_t pending() const = 0;
  // Any thread. Drops the frames sent before this call and not yet being
  // written (counted in queue_full), then calls `done` on the strand.
  virtual void drop_unsent(std::function<void()> done) = 0;
  // Any thread. A WebSocket close, bounded by the timeout.
  virtual void close() = 0;
};

std::shared_ptr<ws_client> make_ws_client(boost::asio::io_context& io, client_settings const& settings);

struct http_result {
  bool ok = false;
  int status = 0;
  std::string body;
  std::string instance;  // X-Sigstream-Instance
  std::string error;
};

// GET http://ENDPOINT/TARGET; `done` runs once, on an io thread.
void http_get(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint, std::string host_header,
              std::string target, std::chrono::milliseconds timeout, std::function<void(http_result)> done);

// Polls GET http://127.0.0.1:PORT/TARGET (fresh connections, every 10 ms)
// until it answers 200, from the calling thread while `io` runs elsewhere.
// Returns when it did; nullopt once `deadline` passed or `gone()` says the
// server exited.
std::optional<std::chrono::steady_clock::time_point> wait_for_status_200(boost::asio::io_context& io,
                                                                         std::uint16_t port, std::string const& target,
                                                                         std::chrono::steady_clock::time_point deadline,
                                                                         std::function<bool()> const& gone);

}  // namespace sig::bench
