#pragma once
// The parts of `sigstream-bench floor` shared by its two measures: the CPU
// a woken process pays per message (bench_floor.cpp) and the latency of a
// message carried through a chain of such processes (bench_floor_chain.cpp).
// Plain blocking sockets: the only Asio state is made in the forked
// children, after the fork.
#include <netinet/in.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "bench/bench_stats.hpp"

namespace sig::bench {

// A listening TCP socket on 127.0.0.1 and a free port; fd -1 and `error` set
// when none could be made.
struct loopback_listener {
  int fd = -1;
  sockaddr_in address{};
};
loopback_listener listen_on_loopback(std::string& error);
// A connected TCP socket to `address` with Nagle off, or -1.
int connect_no_delay(sockaddr_in const& address);

// A blocking send or receive of exactly `bytes`.
bool send_all(int fd, char const* data, std::size_t bytes);
bool receive_all(int fd, char* data, std::size_t bytes);

// Sleeps until `interval_ns` after `next`, then advances `next` by it: an
// absolute schedule, so a late wake-up does not delay the messages after it.
void sleep_until_next(timespec& next, std::int64_t interval_ns);

// The latency of messages sent at `rate` per second through `relays`
// processes in a chain, each woken by every message, back to the sender.
struct chain_row {
  double rate = 0;
  std::int64_t sent = 0;
  latency_summary latency;  // of the messages after the first fifth of the run
};
std::optional<chain_row> measure_chain(double rate, std::chrono::milliseconds duration, std::size_t message_bytes,
                                       int relays, std::string& error);

}  // namespace sig::bench
