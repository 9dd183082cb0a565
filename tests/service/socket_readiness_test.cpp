// What the NATS event loop asks before letting nats.c read a socket: over
// TLS only a whole record (or a hang-up) may be read, since nats.c waits
// without a timeout for the rest of one (socket_readiness.hpp).
#include <catch2/catch.hpp>

#include "adapters/nats/socket_readiness.hpp"

#include <sys/socket.h>
#include <unistd.h>

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
