// The Redis adapter's connection over addresses already resolved: a host
// name with several addresses (localhost as ::1 and 127.0.0.1, with Redis
// listening on one) must end up on the one that answers, and must not keep
// the refusal of the ones before it. A fake Redis on loopback answers PING.
#include <catch2/catch.hpp>

#include "adapters/redis/connection.hpp"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <system_error>
#include <thread>

using sig::redis::connection;
using sig::redis::redis_failure;
using sig::redis::socket_address;

namespace {

socket_address loopback(char const* ip, std::uint16_t port) {
  socket_address out;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  REQUIRE(::inet_pton(AF_INET, ip, &in.sin_addr) == 1);
  std::memcpy(&out.storage, &in, sizeof in);
  out.length = sizeof in;
  return out;
}

// Listens on 127.0.0.1 only; its one connection gets +PONG for its PING.
class fake_redis {
 public:
  fake_redis() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    auto address = loopback("127.0.0.1", 0);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr const*>(&address.storage), address.length) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    sockaddr_in bound{};
    socklen_t length = sizeof bound;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &length) == 0);
    port_ = ntohs(bound.sin_port);
    server_ = std::thread([this] {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string request;
      char buffer[256];
      // PING in RESP: *1\r\n$4\r\nPING\r\n
      while (request.find("PING\r\n") == std::string::npos) {
        auto n = ::read(client, buffer, sizeof buffer);
        if (n <= 0) break;
        request.append(buffer, static_cast<std::size_t>(n));
      }
      static constexpr char pong[] = "+PONG\r\n";
      (void)!::write(client, pong, sizeof pong - 1);
      ::close(client);
    });
  }
  ~fake_redis() {
    ::shutdown(fd_, SHUT_RDWR);  // an accept still waiting returns
    ::close(fd_);
    server_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread server_;
};

}  // namespace

TEST_CASE("redis connection: a refused address before the one that answers is forgotten", "[redis_connection]") {
  fake_redis redis;
  // 127.0.0.2 is loopback too, but nothing listens there on this port.
  std::vector<socket_address> addresses{loopback("127.0.0.2", redis.port()), loopback("127.0.0.1", redis.port())};
  redis_failure failure;
  auto conn = connection::open(addresses, "localhost", nullptr, std::chrono::milliseconds(2000), &failure);
  REQUIRE(conn != nullptr);
  auto reply = conn->command({"PING"});
  REQUIRE(reply != nullptr);
  CHECK(reply->type == REDIS_REPLY_STATUS);
  CHECK(std::string(reply->str, reply->len) == "PONG");
  CHECK_FALSE(conn->failure());
}

TEST_CASE("redis connection: every address refused says so", "[redis_connection]") {
  fake_redis redis;  // on 127.0.0.1: the port is free on the other two
  std::vector<socket_address> addresses{loopback("127.0.0.2", redis.port()), loopback("127.0.0.3", redis.port())};
  redis_failure failure;
  auto conn = connection::open(addresses, "localhost", nullptr, std::chrono::milliseconds(2000), &failure);
  CHECK(conn == nullptr);
  CHECK(failure.code == std::error_code(ECONNREFUSED, std::system_category()));
}
