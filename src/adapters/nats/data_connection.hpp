#pragma once
// The instance's connection for appends, live feeds and the short reads
// that go with a new follow (a room's head, its few newest events), driven by its I/O
// loop (event_loop.hpp): a publish, its acknowledgement and the live copies
// of stored events cross no thread of nats.c's. Rooms call append() and
// follow() from their strands; acknowledgements and live messages are
// handled on the loop's strand, and messages nats.c allocated are destroyed
// in one batch per read pass.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/nats/appender.hpp"
#include "adapters/nats/connection.hpp"
#include "adapters/nats/event_loop.hpp"
#include "adapters/nats/direct_reader.hpp"
#include "adapters/nats/live_feed.hpp"

namespace sig::nats {

class data_connection {
 public:
  data_connection(boost::asio::io_context& io, connection_settings settings, std::string subject_prefix,
                  appender_settings appends, std::shared_ptr<spdlog::logger> log);
  ~data_connection();

  // Blocking (a worker thread): connects, retrying until `stop`.
  bool open(std::atomic<bool> const& stop);
  bool connected() const { return conn_.connected(); }
  // After the loop has stopped: fails what is pending, closes.
  void close();

  appender& appends() { return appender_; }
  live_feed& live() { return live_; }
  direct_reader& direct() { return direct_; }
  // Blocking, never on the loop's thread: a round trip to the server, so
  // that every subscription made before is in place there.
  bool flush();
  bool inline_delivery() const { return loop_.inline_delivery(); }

 private:
  void spent(__natsMsg* msg);
  void destroy_spent(std::size_t at_least);
  void tick();
  void notice_held_writes(std::chrono::steady_clock::time_point now);

  event_loop loop_;
  connection conn_;
  appender appender_;
  live_feed live_;
  direct_reader direct_;
  boost::asio::steady_timer ticker_;  // acknowledgement deadlines, and a late batch of destroys
  std::mutex spent_mutex_;
  std::vector<__natsMsg*> spent_;
  std::atomic<bool> open_{false};
  // On the loop's strand (tick): since when the writes the log said were
  // held back have been (empty: nothing said).
  std::optional<std::chrono::steady_clock::time_point> said_held_since_;
};

}  // namespace sig::nats
