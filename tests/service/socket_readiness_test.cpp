// What the NATS event loop asks before letting nats.c read or write a
// socket: over TLS only a whole record (or a hang-up) may be read, and only
// a buffer the socket can take whole written, since nats.c waits without a
// timeout otherwise (socket_readiness.hpp).
#include <catch2/catch.hpp>

#include "adapters/nats/socket_readiness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <cstdint>
#include <string>

using sig::nats::bytes_waiting;
using sig::nats::plain_readiness;
using sig::nats::read_readiness;
using sig::nats::tls_readiness;

namespace {

// A connected pair: the test writes on `peer`, the checks look at `ours`.
struct socket_pair {
  int ours = -1;
  int peer = -1;
  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    ours = fds[0];
    peer = fds[1];
  }
  ~socket_pair() {
    if (ours >= 0) ::close(ours);
    if (peer >= 0) ::close(peer);
  }
  void send(std::string const& bytes) const {
    REQUIRE(::write(peer, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  void hang_up() {
    ::close(peer);
    peer = -1;
  }
};

// A TLS record header (application data, TLS 1.2 on the wire) naming
// `length` bytes of body.
std::string record_header(std::size_t length) {
  return std::string{'\x17', '\x03', '\x03', static_cast<char>(length >> 8), static_cast<char>(length & 0xff)};
}

}  // namespace

TEST_CASE("socket_readiness: an empty socket has nothing to read, plain or TLS", "[socket_readiness]") {
  socket_pair s;
  CHECK(plain_readiness(s.ours) == read_readiness::nothing);
  CHECK(tls_readiness(s.ours) == read_readiness::nothing);
}

TEST_CASE("socket_readiness: a plain socket is readable with any byte", "[socket_readiness]") {
  socket_pair s;
  s.send("x");
  CHECK(plain_readiness(s.ours) == read_readiness::readable);
}

TEST_CASE("socket_readiness: TLS is readable only once a whole record is in", "[socket_readiness]") {
  socket_pair s;
  auto header = record_header(100);
  s.send(header.substr(0, 3));
  CHECK(tls_readiness(s.ours) == read_readiness::partial_record);
  s.send(header.substr(3));
  CHECK(tls_readiness(s.ours) == read_readiness::partial_record);
  s.send(std::string(99, 'b'));
  CHECK(tls_readiness(s.ours) == read_readiness::partial_record);
  s.send("b");
  CHECK(tls_readiness(s.ours) == read_readiness::readable);
  // Looking reads nothing.
  CHECK(bytes_waiting(s.ours) == 105);
  CHECK(tls_readiness(s.ours) == read_readiness::readable);
}

TEST_CASE("socket_readiness: TLS records of no body and of the largest size", "[socket_readiness]") {
  socket_pair s;
  s.send(record_header(0));
  CHECK(tls_readiness(s.ours) == read_readiness::readable);

  socket_pair big;
  constexpr std::size_t largest = (1u << 14) + 256;  // TLS 1.3's largest ciphertext
  big.send(record_header(largest));
  big.send(std::string(largest - 1, 'b'));
  CHECK(tls_readiness(big.ours) == read_readiness::partial_record);
  big.send("b");
  CHECK(tls_readiness(big.ours) == read_readiness::readable);
}

TEST_CASE("socket_readiness: a whole record followed by part of the next is readable", "[socket_readiness]") {
  socket_pair s;
  s.send(record_header(2) + "ab" + record_header(50) + "c");
  CHECK(tls_readiness(s.ours) == read_readiness::readable);
}

TEST_CASE("socket_readiness: a hang-up is told, with or without part of a record before it", "[socket_readiness]") {
  SECTION("nothing queued") {
    socket_pair s;
    s.hang_up();
    CHECK(plain_readiness(s.ours) == read_readiness::closed);
    CHECK(tls_readiness(s.ours) == read_readiness::closed);
  }
  SECTION("part of a record queued") {
    socket_pair s;
    s.send(record_header(40) + "only some");
    s.hang_up();
    CHECK(tls_readiness(s.ours) == read_readiness::closed);
  }
  SECTION("a whole record queued: read it first") {
    socket_pair s;
    s.send(record_header(3) + "abc");
    s.hang_up();
    CHECK(tls_readiness(s.ours) == read_readiness::readable);
  }
}

// Writes: over TLS the loop lets nats.c write only a buffer the socket can
// take whole (SSL_write would wait for room, untimed, inside nats.c).

TEST_CASE("socket_readiness: a TLS write fits by what is queued and what the buffer holds", "[socket_readiness]") {
  using sig::nats::send_queue;
  using sig::nats::tls_write_fits;
  // An empty queue takes anything: the peer acknowledged everything, and a
  // buffer larger than the socket's cannot be split.
  CHECK(tls_write_fits(10'000'000, send_queue{0, 16384}));
  // Queued bytes count twice (the kernel's overhead); records add framing.
  CHECK(tls_write_fits(100'000, send_queue{100'000, 400'000}));
  CHECK_FALSE(tls_write_fits(100'000, send_queue{150'000, 400'000}));
  CHECK_FALSE(tls_write_fits(200'000, send_queue{100'000, 400'000}));  // 200,000 plus framing is over the 200,000 left
  CHECK_FALSE(tls_write_fits(1, send_queue{300'000, 400'000}));       // charged beyond what the buffer holds
  CHECK_FALSE(tls_write_fits(1, send_queue{1, 0}));                    // no buffer known, something queued
}

namespace {

// A connected loopback TCP pair whose receiving end never reads, so the
// sender's queue fills as a stalled NATS server's would.
struct tcp_pair {
  int sender = -1;
  int receiver = -1;
  tcp_pair() {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    sender = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(sender >= 0);
    int rc = ::connect(sender, reinterpret_cast<sockaddr*>(&address), sizeof address);
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    receiver = ::accept(listener, nullptr, nullptr);
    REQUIRE(receiver >= 0);
    ::close(listener);
    pollfd writable{sender, POLLOUT, 0};
    REQUIRE(::poll(&writable, 1, 5000) == 1);
  }
  ~tcp_pair() {
    ::close(sender);
    ::close(receiver);
  }
};

}  // namespace

TEST_CASE("socket_readiness: whatever it says fits is sent whole without waiting, until the queue is full",
          "[socket_readiness]") {
  using sig::nats::send_queue_of;
  using sig::nats::tls_write_fits;
  tcp_pair pair;
  std::string chunk(48 * 1024, 'x');  // about what nats.c's buffer holds under load
  int sent_whole = 0;
  bool refused = false;
  for (int n = 0; n < 100'000 && !refused; ++n) {
    auto queue = send_queue_of(pair.sender);
    if (!tls_write_fits(chunk.size(), queue)) {
      refused = true;
      CHECK(queue.queued > 0);
      break;
    }
    auto written = ::send(pair.sender, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    INFO("queued " << queue.queued << " of " << queue.capacity << " when sending chunk " << n);
    REQUIRE(written == static_cast<ssize_t>(chunk.size()));
    ++sent_whole;
  }
  CHECK(refused);  // the receiver never reads: the queue fills, and the check says so
  CHECK(sent_whole > 0);
}

// Reads again: part of a TLS record that the socket's own receive buffer
// keeps out must be read for the rest to come in.

TEST_CASE("socket_readiness: the receive window may be shut when little receive memory is left", "[socket_readiness]") {
  using sig::nats::receive_memory;
  using sig::nats::receive_window_may_be_shut;
  CHECK(receive_window_may_be_shut(receive_memory{112'448, 153'065}));  // as seen: 13 KB of a record, stuck
  CHECK(receive_window_may_be_shut(receive_memory{200'000, 150'000}));
  CHECK_FALSE(receive_window_may_be_shut(receive_memory{20'000, 6'000'000}));  // an autotuned buffer, barely used
  CHECK(receive_window_may_be_shut(receive_memory{0, 0}));  // nothing known: reading is the way forward
}

TEST_CASE("socket_readiness: a socket's receive memory counts what is queued", "[socket_readiness]") {
  using sig::nats::receive_memory_of;
  tcp_pair pair;
  auto before = receive_memory_of(pair.receiver);
  CHECK(before.used == 0);
  CHECK(before.limit > 0);
  std::string part = record_header(16'000) + std::string(3'000, 'b');
  REQUIRE(::send(pair.sender, part.data(), part.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(part.size()));
  pollfd readable{pair.receiver, POLLIN, 0};
  REQUIRE(::poll(&readable, 1, 5000) == 1);
  CHECK(sig::nats::tls_readiness(pair.receiver) == read_readiness::partial_record);
  CHECK(receive_memory_of(pair.receiver).used >= part.size());
}
