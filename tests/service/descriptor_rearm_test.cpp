// What the NATS event loop (adapters/nats/event_loop.cpp) counts on when it
// arms its read wait without looking at the socket again: Asio registers
// descriptors edge-triggered, and a wait started after the bytes' edge was
// already reported still completes, because starting it re-arms the
// descriptor (epoll_ctl MOD) and the kernel reports readiness that is
// already there. If a Boost upgrade changed that, reads would stall.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace asio = boost::asio;

TEST_CASE("asio: a read wait started after the edge was reported still completes", "[descriptor_rearm]") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  asio::posix::stream_descriptor ours(io, fds[0]);

  // A first wait and its edge, as the loop's previous pass.
  int completed = 0;
  ours.async_wait(asio::posix::stream_descriptor::wait_read, [&](boost::system::error_code ec) {
    REQUIRE_FALSE(ec);
    ++completed;
  });
  REQUIRE(::write(fds[1], "a", 1) == 1);
  io.run_for(std::chrono::milliseconds(200));
  REQUIRE(completed == 1);

  // Bytes arrive while no wait is pending: the reactor sees their edge and
  // has nobody to tell. Nothing is read.
  REQUIRE(::write(fds[1], "b", 1) == 1);
  io.run_for(std::chrono::milliseconds(100));

  // The next wait completes on bytes already there, with no new edge.
  ours.async_wait(asio::posix::stream_descriptor::wait_read, [&](boost::system::error_code ec) {
    REQUIRE_FALSE(ec);
    ++completed;
  });
  io.run_for(std::chrono::milliseconds(500));
  CHECK(completed == 2);
  ::close(fds[1]);
}
