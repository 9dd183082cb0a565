#pragma once
// One instance's rooms over a memory_event_store, with the I/O loop run by
// the test: its worker pool, its room directory, its counters. For tests of
// the room and of what drives it (ws_session), without NATS.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "memory_event_store.hpp"
#include "service/metrics.hpp"
#include "service/room/room.hpp"
#include "service/room/room_context.hpp"
#include "service/room/room_directory.hpp"

namespace sig::test {

// Tests declare the store before the io_context, so that it outlives the
// loop: handlers still queued when the loop is destroyed hold rooms, and a
// room's follow ends in the store.
struct room_instance {
  room_instance(boost::asio::io_context& io, memory_event_store& store, std::string id)
      : ctx{io, blocking, store, nullptr, directory, counters,
            std::make_shared<spdlog::logger>("room-test", std::make_shared<spdlog::sinks::null_sink_mt>()), id} {
    using namespace std::chrono_literals;
    ctx.reorder_window = 5ms;
    ctx.echo_timeout = 100ms;
    ctx.linger = 50ms;
    ctx.message_id_prefix = id + ".test.";
    directory.attach(ctx);
  }
  ~room_instance() {
    blocking.join();
    directory.clear();
  }
  std::shared_ptr<service::room> room(std::string const& name) { return directory.get_or_create(name); }

  boost::asio::thread_pool blocking{1};
  service::room_directory directory;
  service::metrics counters;
  service::room_context ctx;
};

// Runs the loop until `done` holds (or 5 s pass); false on the timeout.
inline bool run_until(boost::asio::io_context& io, std::function<bool()> const& done) {
  using namespace std::chrono_literals;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    // What is ready runs at once; the loop waits only when nothing is (for
    // a timer, or the worker pool).
    if (io.poll() == 0) io.run_one_for(2ms);
  }
  return true;
}

// The value of a string field of a JSON frame (enough for the frames of
// these tests: no escapes inside the value).
inline std::string field(std::string const& frame, std::string const& name) {
  auto key = "\"" + name + "\":\"";
  auto at = frame.find(key);
  if (at == std::string::npos) return {};
  at += key.size();
  return frame.substr(at, frame.find('"', at) - at);
}

}  // namespace sig::test
