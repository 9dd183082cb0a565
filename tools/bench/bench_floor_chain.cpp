// `sigstream-bench floor`'s latency measure: how long a small message takes
// through a chain of processes, each woken by it on a loopback socket and
// passing it on, with nothing else done on the way.
//
// A signal from a peer on one instance to a peer on another wakes five
// server processes in turn (HAProxy, the sender's instance, nats-server,
// the target's instance, HAProxy again) and then the client; the Socket.IO
// baseline's path has as many (Redis in nats-server's place). Whatever the
// design, its latency cannot be below what the machine takes to wake that
// many processes one after the other, and its tail cannot be below the
// tail of those wake-ups. This measures that floor: the parent sends
// time-stamped messages at a steady rate into relay 1, each relay (one Asio
// io_context on one thread, as an instance's I/O thread) writes each message
// on to the next, and the last relay's output comes back to the parent,
// which reads the stamp.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_floor.hpp"

namespace sig::bench {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::int64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000LL + t.tv_nsec;
}

// One link of the chain: reads each message whole from upstream and writes
// it downstream, one at a time; passes the upstream's end on.
class relay {
 public:
  relay(tcp::socket upstream, tcp::socket downstream, std::size_t message_bytes)
      : upstream_(std::move(upstream)), downstream_(std::move(downstream)), message_(message_bytes) {}

  void start() { read(); }

 private:
  void read() {
    asio::async_read(upstream_, asio::buffer(message_), [this](boost::system::error_code ec, std::size_t) {
      if (ec) {
        boost::system::error_code ignored;
        downstream_.shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      asio::async_write(downstream_, asio::buffer(message_), [this](boost::system::error_code ec, std::size_t) {
        if (!ec) read();
      });
    });
  }

  tcp::socket upstream_;
  tcp::socket downstream_;
  std::vector<char> message_;
};

// The relay process: connects to the next link first (a listening socket
// takes the connection before it accepts, so the chain cannot wait on
// itself), then takes its upstream.
[[noreturn]] void run_relay(int listener, sockaddr_in const& next, std::size_t message_bytes) {
  // A parent that dies (killed by hand, say) takes the chain with it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int downstream = connect_no_delay(next);
  int upstream = downstream < 0 ? -1 : ::accept(listener, nullptr, nullptr);
  if (upstream < 0) _exit(1);
  int one = 1;
  ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  asio::io_context io(1);
  relay link(tcp::socket(io, tcp::v4(), upstream), tcp::socket(io, tcp::v4(), downstream), message_bytes);
  link.start();
  io.run();
  _exit(0);
}

void stop_all(std::vector<pid_t> const& children, bool kill_first) {
  for (pid_t child : children) {
    if (kill_first) ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
  }
}

}  // namespace

std::optional<chain_row> measure_chain(double rate, std::chrono::milliseconds duration, std::size_t message_bytes,
                                       int relays, std::string& error) {
  // listeners[i] is relay i's upstream; the last one is the parent's, where
  // the chain ends.
  std::vector<loopback_listener> listeners;
  for (int i = 0; i <= relays; ++i) {
    listeners.push_back(listen_on_loopback(error));
    if (listeners.back().fd < 0) {
      for (auto const& l : listeners)
        if (l.fd >= 0) ::close(l.fd);
      return std::nullopt;
    }
  }
  std::vector<pid_t> children;
  for (int i = 0; i < relays; ++i) {
    pid_t child = ::fork();
    if (child < 0) {
      error = "fork failed";
      stop_all(children, true);
      return std::nullopt;
    }
    if (child == 0) run_relay(listeners[i].fd, listeners[i + 1].address, message_bytes);
    children.push_back(child);
  }
  // A relay that fails to start must not hold the run forever either:
  // accept and both directions give up after 10 s.
  timeval patience{10, 0};
  ::setsockopt(listeners.back().fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  int sender = connect_no_delay(listeners.front().address);
  int receiver = sender < 0 ? -1 : ::accept(listeners.back().fd, nullptr, nullptr);
  for (auto const& l : listeners) ::close(l.fd);
  if (receiver < 0) {
    if (sender >= 0) ::close(sender);
    stop_all(children, true);
    return error = "the chain of relays did not connect", std::nullopt;
  }
  ::setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  ::setsockopt(sender, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);

  auto const total = static_cast<std::int64_t>(rate * std::chrono::duration<double>(duration).count());
  // The first fifth of the run is a warm-up: the relays' first messages
  // fault in their pages and fill the kernel's caches.
  auto const warm_up = total / 5;
  std::vector<std::int64_t> latencies;
  latencies.reserve(static_cast<std::size_t>(total));
  std::int64_t received = 0;
  std::thread reader([&] {
    std::vector<char> message(message_bytes);
    while (received < total && receive_all(receiver, message.data(), message.size())) {
      std::int64_t stamp = 0, number = 0;
      std::memcpy(&stamp, message.data(), sizeof stamp);
      std::memcpy(&number, message.data() + sizeof stamp, sizeof number);
      auto latency = monotonic_ns() - stamp;
      ++received;
      if (number >= warm_up) latencies.push_back(latency);
    }
  });
  std::vector<char> message(message_bytes, 'm');
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  auto const interval_ns = static_cast<std::int64_t>(1e9 / rate);
  std::int64_t sent = 0;
  for (; sent < total; ++sent) {
    std::int64_t stamp = monotonic_ns();
    std::memcpy(message.data(), &stamp, sizeof stamp);
    std::memcpy(message.data() + sizeof stamp, &sent, sizeof sent);
    if (!send_all(sender, message.data(), message.size())) break;
    sleep_until_next(next, interval_ns);
  }
  ::shutdown(sender, SHUT_WR);
  reader.join();
  ::close(sender);
  ::close(receiver);
  stop_all(children, received < sent);
  if (sent < total || received < total)
    return error = "the chain of relays lost messages (" + std::to_string(received) + " of " + std::to_string(total) +
                   " came back)",
           std::nullopt;
  chain_row row;
  row.rate = rate;
  row.sent = sent;
  row.latency = summarize(std::move(latencies));
  return row;
}

}  // namespace sig::bench
