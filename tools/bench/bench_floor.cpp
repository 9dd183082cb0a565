// `sigstream-bench floor`: what this machine charges a process for being
// woken by one small message on a loopback socket, and for answering it.
//
// An instance's CPU per signal is mostly the kernel's: reads, writes and
// the wake-ups from epoll_wait that bring them (docs/benchmarks.md). This
// measures those costs alone, with nothing of sigstream in the way: a child
// process runs one Asio io_context on one thread, exactly as an instance's
// I/O thread does, and reads messages from a loopback TCP socket; in
// `reply` mode it writes each one back (as an instance answers a frame with
// an acknowledgement). The parent sends the messages one at a time at a
// steady rate from another process, so that each one finds the child
// asleep, as at the rates of the benchmark. The child's own CPU time
// (getrusage, from its first message to the end of the run) divided by the messages
// is the floor of what any single-threaded Asio server pays per message
// here; its voluntary context switches say how many of them woke it. The
// command's other measure, latency through a chain of such processes, is
// in bench_floor_chain.cpp.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.hpp"
#include "bench/bench_floor.hpp"
#include "bench/bench_system.hpp"
#include "bench/commands.hpp"
#include "cli/options.hpp"

namespace sig::bench {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct floor_settings {
  std::string measures = "cpu,latency";
  std::string rates = "1700,5000";
  std::chrono::milliseconds duration{5'000};
  std::int64_t message_bytes = 300;
  std::int64_t relays = 5;
};

// What the child measured, written back to the parent when the parent
// closes its side: CPU in µs and voluntary context switches, from its
// first message to the end of the run, and how many it read.
struct child_usage {
  std::int64_t cpu_us = 0;
  std::int64_t sleeps = 0;
  std::int64_t messages = 0;
};

std::int64_t cpu_us(rusage const& u) {
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000LL + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

// The woken process: reads fixed-size messages until the parent shuts its
// side, answering each when `reply`; then reports its usage on the socket.
class woken_server {
 public:
  woken_server(tcp::socket socket, std::size_t message_bytes, bool reply)
      : socket_(std::move(socket)), message_(message_bytes), reply_(reply) {}

  void start() { read(); }
  child_usage usage() const {
    child_usage out;
    out.cpu_us = cpu_us(last_) - cpu_us(first_);
    out.sleeps = last_.ru_nvcsw - first_.ru_nvcsw;
    out.messages = messages_;
    return out;
  }

 private:
  void read() {
    asio::async_read(socket_, asio::buffer(message_), [this](boost::system::error_code ec, std::size_t) {
      // The first message starts the clock and the parent's end stops it:
      // no extra system call per message.
      if (ec) {
        getrusage(RUSAGE_SELF, &last_);
        return;
      }
      if (messages_ == 0) getrusage(RUSAGE_SELF, &first_);
      ++messages_;
      if (!reply_) return read();
      asio::async_write(socket_, asio::buffer(message_), [this](boost::system::error_code ec, std::size_t) {
        if (!ec) read();
      });
    });
  }

  tcp::socket socket_;
  std::vector<char> message_;
  bool reply_;
  std::int64_t messages_ = 0;
  rusage first_{};
  rusage last_{};
};

struct floor_row {
  double rate = 0;
  bool reply = false;
  std::int64_t messages = 0;
  double us_per_message = 0;
  double sleeps_per_message = 0;
};

// Sends `rate` messages per second for `duration`, one at a time on an
// absolute schedule; in `reply` mode a second thread reads the answers.
// The parent uses plain sockets: the child's io_context is the only Asio
// state, made after the fork.
std::optional<floor_row> measure(double rate, std::chrono::milliseconds duration, std::size_t message_bytes,
                                 bool reply, std::string& error) {
  auto [listener, address] = listen_on_loopback(error);
  if (listener < 0) return std::nullopt;
  int report_pipe[2];
  if (::pipe(report_pipe) != 0) return error = "pipe failed", std::nullopt;
  pid_t child = ::fork();
  if (child < 0) return error = "fork failed", std::nullopt;
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a parent that dies takes it along
    ::close(report_pipe[0]);
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) _exit(1);
    asio::io_context io(1);
    tcp::socket socket(io, tcp::v4(), fd);
    socket.set_option(tcp::no_delay(true));
    woken_server server(std::move(socket), message_bytes, reply);
    server.start();
    io.run();
    auto usage = server.usage();
    std::string line = fmt::format("{} {} {}\n", usage.cpu_us, usage.sleeps, usage.messages);
    (void)!::write(report_pipe[1], line.data(), line.size());
    _exit(0);
  }
  ::close(report_pipe[1]);
  int fd = connect_no_delay(address);
  bool connected = fd >= 0;
  ::close(listener);
  std::vector<char> message(message_bytes, 'm');
  auto total = static_cast<std::int64_t>(rate * std::chrono::duration<double>(duration).count());
  std::thread answers;
  if (connected && reply) {
    answers = std::thread([&] {
      std::vector<char> answer(message_bytes);
      for (std::int64_t i = 0; i < total && receive_all(fd, answer.data(), answer.size()); ++i) {
      }
    });
  }
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  auto const interval_ns = static_cast<std::int64_t>(1e9 / rate);
  for (std::int64_t i = 0; connected && i < total; ++i) {
    if (!send_all(fd, message.data(), message.size())) break;
    sleep_until_next(next, interval_ns);
  }
  if (answers.joinable()) answers.join();
  if (fd >= 0) {
    ::shutdown(fd, SHUT_WR);
  }
  std::string text;
  std::array<char, 128> buffer{};
  for (ssize_t n; (n = ::read(report_pipe[0], buffer.data(), buffer.size())) > 0;)
    text.append(buffer.data(), static_cast<std::size_t>(n));
  ::close(report_pipe[0]);
  if (fd >= 0) ::close(fd);
  int status = 0;
  ::waitpid(child, &status, 0);
  child_usage usage;
  if (!connected || std::sscanf(text.c_str(), "%ld %ld %ld", &usage.cpu_us, &usage.sleeps, &usage.messages) != 3 ||
      usage.messages < 2)
    return error = "the woken process reported nothing", std::nullopt;
  floor_row row;
  row.rate = rate;
  row.reply = reply;
  row.messages = usage.messages;
  // Between the first message and the last: one message fewer than read.
  row.us_per_message = static_cast<double>(usage.cpu_us) / static_cast<double>(usage.messages - 1);
  row.sleeps_per_message = static_cast<double>(usage.sleeps) / static_cast<double>(usage.messages - 1);
  return row;
}

}  // namespace

loopback_listener listen_on_loopback(std::string& error) {
  loopback_listener out;
  out.address.sin_family = AF_INET;
  out.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  out.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t length = sizeof out.address;
  auto* address = reinterpret_cast<sockaddr*>(&out.address);
  if (out.fd < 0 || ::bind(out.fd, address, sizeof out.address) != 0 || ::listen(out.fd, 1) != 0 ||
      ::getsockname(out.fd, address, &length) != 0) {
    error = std::string("cannot listen on loopback: ") + std::strerror(errno);
    if (out.fd >= 0) ::close(out.fd);
    out.fd = -1;
  }
  return out;
}

int connect_no_delay(sockaddr_in const& address) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr const*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, char const* data, std::size_t bytes) {
  while (bytes > 0) {
    ssize_t n = ::send(fd, data, bytes, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    bytes -= static_cast<std::size_t>(n);
  }
  return true;
}

bool receive_all(int fd, char* data, std::size_t bytes) {
  while (bytes > 0) {
    ssize_t n = ::recv(fd, data, bytes, 0);
    if (n <= 0) return false;
    data += n;
    bytes -= static_cast<std::size_t>(n);
  }
  return true;
}

void sleep_until_next(timespec& next, std::int64_t interval_ns) {
  next.tv_nsec += interval_ns;
  while (next.tv_nsec >= 1'000'000'000) {
    next.tv_nsec -= 1'000'000'000;
    ++next.tv_sec;
  }
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
}

namespace {

// The CPU table: each rate read only, then read and answered.
bool print_cpu_table(floor_settings const& s, std::vector<std::int64_t> const& rates) {
  std::cout << fmt::format("{:>10} {:>16} {:>10} {:>22} {:>26}\n", "rate/s", "mode", "messages",
                           "CPU per message (µs)", "wake-ups per message");
  for (auto rate : rates) {
    for (bool reply : {false, true}) {
      std::string error;
      auto row = measure(static_cast<double>(rate), s.duration, static_cast<std::size_t>(s.message_bytes), reply, error);
      if (!row) {
        std::cerr << "sigstream-bench floor: " << error << "\n";
        return false;
      }
      std::cout << fmt::format("{:>10} {:>16} {:>10} {:>22.1f} {:>26.2f}\n", rate, reply ? "read, answer" : "read",
                               row->messages, row->us_per_message, row->sleeps_per_message);
    }
  }
  return true;
}

// The latency table: each rate through the chain of relays.
bool print_latency_table(floor_settings const& s, std::vector<std::int64_t> const& rates) {
  std::cout << fmt::format(
      "Latency through {} relay processes in a chain, each woken by every message and passing it on, "
      "back to the sender (after the first fifth of each run):\n",
      s.relays);
  std::cout << fmt::format("{:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "rate/s", "messages", "p50 (ms)", "p90 (ms)",
                           "p99 (ms)", "max (ms)");
  for (auto rate : rates) {
    std::string error;
    auto row = measure_chain(static_cast<double>(rate), s.duration, static_cast<std::size_t>(s.message_bytes), static_cast<int>(s.relays),
                             error);
    if (!row) {
      std::cerr << "sigstream-bench floor: " << error << "\n";
      return false;
    }
    auto const& l = row->latency;
    std::cout << fmt::format("{:>10} {:>10} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}\n", rate, row->sent, l.p50_ms,
                             l.p90_ms, l.p99_ms, l.max_ms);
  }
  return true;
}

}  // namespace

int floor_bench_command(int argc, char** argv) {
  floor_settings s;
  cli::options opts("floor",
                    "What this machine charges before any of sigstream's work, measured with nothing of sigstream in "
                    "the way. `cpu`: the CPU a single-threaded Asio process (an instance's I/O thread) pays per small "
                    "message it is woken for on a loopback socket, read only and read then answered (getrusage of "
                    "the woken process, messages one at a time from another process). `latency`: how long a message "
                    "takes through a chain of such processes, each woken by it and passing it on (a signal between "
                    "two instances wakes five server processes in turn). Tables on stdout.",
                    "sigstream-bench");
  opts.add_string("measures", &s.measures, "Which measures, comma-separated: cpu, latency.");
  opts.add_string("rates", &s.rates, "Messages per second, comma-separated (each 1..50000).");
  opts.add_duration("duration", &s.duration, "How long each rate runs (1s..60s).");
  opts.add_int("message-bytes", &s.message_bytes, "Size of each message (16..16384).");
  opts.add_int("relays", &s.relays,
               "Processes in the latency measure's chain (1..16). 5 is the number of server processes a signal "
               "between two instances wakes in turn: HAProxy, instance, nats-server, instance, HAProxy.");
  opts.command_line_only({"measures", "rates", "duration", "message-bytes", "relays"});
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  auto rates = parse_rates(s.rates, 50'000);
  if (!rates) {
    std::cerr << "sigstream-bench floor: --rates must be numbers of 1..50000\n";
    return 2;
  }
  bool cpu = false, latency = false;
  for (auto const& name : split_list(s.measures)) {
    if (name == "cpu") cpu = true;
    else if (name == "latency") latency = true;
    else {
      std::cerr << "sigstream-bench floor: --measures takes cpu and latency, not '" << name << "'\n";
      return 2;
    }
  }
  if (!cpu && !latency) {
    std::cerr << "sigstream-bench floor: --measures takes cpu and latency, not '" << s.measures << "'\n";
    return 2;
  }
  if (s.duration < std::chrono::seconds(1) || s.duration > std::chrono::seconds(60) || s.message_bytes < 16 ||
      s.message_bytes > 16384 || s.relays < 1 || s.relays > 16) {
    std::cerr << "sigstream-bench floor: --duration must be 1s..60s, --message-bytes 16..16384 and --relays 1..16\n";
    return 2;
  }
  std::cout << fmt::format("sigstream-bench floor ({}), {}-byte messages, {} s per rate; load average at start: {}\n",
                           utc_now(), s.message_bytes, std::chrono::duration<double>(s.duration).count(),
                           load_average());
  if (cpu && !print_cpu_table(s, *rates)) return 1;
  if (cpu && latency) std::cout << "\n";
  if (latency && !print_latency_table(s, *rates)) return 1;
  return 0;
}

}  // namespace sig::bench
