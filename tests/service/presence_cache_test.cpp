// The presence cache's connection on an io_context, against a scripted
// fake Redis on loopback: replies come back to the right callers when
// commands are pipelined, a Redis that stops answering costs a load the
// timeout and no more, and a connection Redis drops after it worked is
// replaced with its commands sent again.
#include <catch2/catch.hpp>

#include "adapters/redis/presence_cache.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sig::redis::cache_settings;
using sig::redis::presence_cache;
using sig::service::cached_room;

namespace {

using command = std::vector<std::string>;

// Reads RESP arrays of bulk strings (what clients send) from a socket.
class command_reader {
 public:
  explicit command_reader(int fd) : fd_(fd) {}
  // The next command; nullopt when the client went away.
  std::optional<command> next() {
    auto header = line();
    if (!header || header->empty() || (*header)[0] != '*') return std::nullopt;
    int count = std::stoi(header->substr(1));
    command out;
    for (int i = 0; i < count; ++i) {
      auto length = line();
      if (!length || length->empty() || (*length)[0] != '$') return std::nullopt;
      auto size = static_cast<std::size_t>(std::stoul(length->substr(1)));
      if (!fill(size + 2)) return std::nullopt;
      out.push_back(buffer_.substr(0, size));
      buffer_.erase(0, size + 2);
    }
    return out;
  }

 private:
  bool fill(std::size_t bytes) {
    char chunk[4096];
    while (buffer_.size() < bytes) {
      auto n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
  }
  std::optional<std::string> line() {
    for (;;) {
      if (auto end = buffer_.find("\r\n"); end != std::string::npos) {
        auto out = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return out;
      }
      if (!fill(buffer_.size() + 1)) return std::nullopt;
    }
  }
  int fd_;
  std::string buffer_;
};

std::string bulk(std::string const& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

// A fake Redis on 127.0.0.1: each connection it accepts is served by
// `serve(connection number, fd)` on the server's thread, one at a time.
class fake_redis {
 public:
  explicit fake_redis(std::function<void(int, int)> serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = 0;
    REQUIRE(::inet_pton(AF_INET, "127.0.0.1", &in.sin_addr) == 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr const*>(&in), sizeof in) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t length = sizeof in;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&in), &length) == 0);
    port_ = ntohs(in.sin_port);
    server_ = std::thread([this] {
      for (int n = 1;; ++n) {
        int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) return;
        serve_(n, client);
        ::close(client);
      }
    });
  }
  ~fake_redis() {
    ::shutdown(fd_, SHUT_RDWR);  // the accept waiting returns
    ::close(fd_);
    server_.join();
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  std::function<void(int, int)> serve_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread server_;
};

// An io_context running on a thread of its own, as the instance's I/O
// thread. Stopped before the cache is destroyed, as the instance does: the
// cache's pending handlers refer to it.
struct io_thread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  void stop() {
    io.stop();
    if (thread.joinable()) thread.join();
  }
  ~io_thread() { stop(); }
};

std::shared_ptr<spdlog::logger> quiet_logger() {
  return std::make_shared<spdlog::logger>("redis", std::make_shared<spdlog::sinks::null_sink_mt>());
}

cache_settings settings_for(fake_redis const& redis, std::chrono::milliseconds timeout = 500ms) {
  cache_settings s;
  s.url = redis.url();
  s.key_prefix = "test";
  s.timeout = timeout;
  return s;
}

std::future<std::optional<cached_room>> load(presence_cache& cache, std::string token) {
  auto promise = std::make_shared<std::promise<std::optional<cached_room>>>();
  auto future = promise->get_future();
  cache.load(std::move(token), [promise](std::optional<cached_room> room) { promise->set_value(std::move(room)); });
  return future;
}

}  // namespace

TEST_CASE("presence cache: pipelined loads each get their own reply", "[presence_cache]") {
  // Answers HMGET key seq state with seq = the key's length and state = the key.
  fake_redis redis([](int, int fd) {
    command_reader reader(fd);
    while (auto c = reader.next()) {
      std::string reply = (*c)[0] == "HMGET" ? "*2\r\n" + bulk(std::to_string((*c)[1].size())) + bulk((*c)[1]) : "-ERR\r\n";
      (void)!::write(fd, reply.data(), reply.size());
    }
  });
  io_thread loop;
  {
    presence_cache cache(loop.io, settings_for(redis), quiet_logger());
    std::vector<std::string> tokens{"a", "bb", "ccc", "dddd", "eeeee", "ffffff", "g", "hh"};
    std::vector<std::future<std::optional<cached_room>>> answers;
    for (auto const& t : tokens) answers.push_back(load(cache, t));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      REQUIRE(answers[i].wait_for(5s) == std::future_status::ready);
      auto room = answers[i].get();
      REQUIRE(room.has_value());
      CHECK(room->snapshot == "test:room:" + tokens[i]);
      CHECK(room->seq == ("test:room:" + tokens[i]).size());
    }
    CHECK(cache.reachable());
    loop.stop();
  }
}

TEST_CASE("presence cache: a Redis that stops answering costs a load the timeout", "[presence_cache]") {
  std::atomic<int> connections{0};
  fake_redis redis([&](int, int fd) {
    ++connections;
    command_reader reader(fd);
    while (reader.next()) {
    }  // reads, never answers, until the client goes
  });
  io_thread loop;
  {
    presence_cache cache(loop.io, settings_for(redis, 200ms), quiet_logger());
    auto started = std::chrono::steady_clock::now();
    auto answer = load(cache, "room");
    REQUIRE(answer.wait_for(5s) == std::future_status::ready);
    CHECK_FALSE(answer.get().has_value());
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(waited >= 200ms);
    CHECK(waited < 2s);
    CHECK_FALSE(cache.reachable());
    loop.stop();
  }
  CHECK(connections == 1);
}

TEST_CASE("presence cache: a connection dropped after it worked is replaced, its commands sent again",
          "[presence_cache]") {
  // The first connection answers one load, then closes at the next command
  // unanswered (Redis restarted). The second answers everything.
  std::mutex mutex;
  std::vector<std::pair<int, command>> seen;
  fake_redis redis([&](int n, int fd) {
    command_reader reader(fd);
    int answered = 0;
    while (auto c = reader.next()) {
      {
        std::lock_guard lock(mutex);
        seen.emplace_back(n, *c);
      }
      if (n == 1 && answered == 1) return;  // closed with the command unanswered
      ++answered;
      std::string reply = (*c)[0] == "HMGET" ? "*2\r\n" + bulk("7") + bulk("state") : ":1\r\n";
      (void)!::write(fd, reply.data(), reply.size());
    }
  });
  io_thread loop;
  {
    presence_cache cache(loop.io, settings_for(redis), quiet_logger());
    auto first = load(cache, "one");
    REQUIRE(first.wait_for(5s) == std::future_status::ready);
    REQUIRE(first.get().has_value());
    cache.store("two", 9, "snapshot");
    // The store went on the first connection, which closed without an
    // answer; it must reach the second.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    bool resent = false;
    while (!resent && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
      std::lock_guard lock(mutex);
      for (auto const& [n, c] : seen) resent = resent || (n == 2 && c[0] == "EVALSHA" && c[3] == "test:room:two" && c[4] == "9");
    }
    CHECK(resent);
    auto after = load(cache, "three");
    REQUIRE(after.wait_for(5s) == std::future_status::ready);
    CHECK(after.get().has_value());
    loop.stop();
  }
  std::lock_guard lock(mutex);
  int stores_on_first = 0;
  for (auto const& [n, c] : seen) stores_on_first += n == 1 && c[0] == "EVALSHA";
  CHECK(stores_on_first == 1);
}

TEST_CASE("presence cache: a reply that came just before Redis closed the connection is taken, not asked again",
          "[presence_cache]") {
  std::atomic<int> loads_on_second{0};
  fake_redis redis([&](int n, int fd) {
    command_reader reader(fd);
    while (auto c = reader.next()) {
      if (n > 1) ++loads_on_second;
      std::string reply = "*2\r\n" + bulk("5") + bulk("state");
      (void)!::write(fd, reply.data(), reply.size());
      if (n == 1) return;  // answers, then closes at once
    }
  });
  io_thread loop;
  {
    presence_cache cache(loop.io, settings_for(redis), quiet_logger());
    auto first = load(cache, "one");
    REQUIRE(first.wait_for(5s) == std::future_status::ready);
    auto room = first.get();
    REQUIRE(room.has_value());
    CHECK(room->seq == 5);
    loop.stop();
  }
  CHECK(loads_on_second == 0);
}

TEST_CASE("presence cache: bytes that are not RESP cost a load nothing but the lookup, and the connection",
          "[presence_cache]") {
  // The first connection answers with garbage; the second answers properly.
  std::atomic<int> connections{0};
  fake_redis redis([&](int n, int fd) {
    ++connections;
    command_reader reader(fd);
    while (auto c = reader.next()) {
      std::string reply = n == 1 ? std::string("?not resp\r\n") : "*2\r\n" + bulk("3") + bulk("state");
      (void)!::write(fd, reply.data(), reply.size());
    }
  });
  io_thread loop;
  {
    presence_cache cache(loop.io, settings_for(redis), quiet_logger());
    auto bad = load(cache, "one");
    REQUIRE(bad.wait_for(5s) == std::future_status::ready);
    CHECK_FALSE(bad.get().has_value());
    std::this_thread::sleep_for(1100ms);  // reconnects are tried at most once a second
    auto good = load(cache, "two");
    REQUIRE(good.wait_for(5s) == std::future_status::ready);
    auto room = good.get();
    REQUIRE(room.has_value());
    CHECK(room->seq == 3);
    loop.stop();
  }
  CHECK(connections == 2);
}
