#pragma once
// The drain of `sigstream serve` on SIGTERM or SIGINT, driven by events:
// clients are told to move elsewhere (1012), and the instance stops once
// every session has ended and no peer is held here, then every append is
// settled. Each of those owners says when it becomes empty; nothing polls.
// Peers still held when the grace period ends get their leave recorded,
// with two more seconds for those appends.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace spdlog { class logger; }
namespace sig::server { class session_registry; }
namespace sig::nats { class appender; }
namespace sig::service {
class held_peers;
class room_directory;
struct metrics;
}  // namespace sig::service

namespace sig::app {

class drain : public std::enable_shared_from_this<drain> {
 public:
  struct parts {
    boost::asio::io_context& io;
    server::session_registry& sessions;
    service::held_peers& held;
    nats::appender& appends;
    service::room_directory& directory;
    service::metrics& counters;  // for the log lines only
    std::shared_ptr<spdlog::logger> log;
    std::chrono::milliseconds grace;
    // Stops the listeners and the io_context: the drain is over.
    std::function<void()> done;
  };
  explicit drain(parts p);
  // The clients have been asked to move: wait for them.
  void start();

 private:
  void poke();  // any thread
  void check();
  void on_grace_over();
  void finish(bool moved);

  parts p_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  bool late_ = false;
  bool waiting_for_appends_ = false;
  bool moved_ = false;  // every session ended and no peer held, before the deadline
  bool done_ = false;
};

}  // namespace sig::app
