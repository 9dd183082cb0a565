// sigstream-bench's WebSocket client (tools/bench/bench_client.cpp) against a
// loopback server in this process that reads only when told to, so a frame
// can be held in the middle of its write: what the bench's connections meet
// when an overloaded server stops reading them. And how its hub counts the
// servers' refusals.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_client.hpp"
#include "bench/bench_hub.hpp"
#include "bench/bench_protocol.hpp"

using namespace sig::bench;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// One WebSocket connection accepted on 127.0.0.1, served on a thread of its
// own for 25 s at most: it accepts the handshake, reads nothing until
// `start_reading()`, then reads messages until the client closes, keeping
// them.
class holding_server {
 public:
  holding_server() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    acceptor_.async_accept(ws_.next_layer(), [this](beast::error_code ec) {
      if (ec) return finish();
      ws_.read_message_max(64 << 20);
      ws_.async_accept([this](beast::error_code ec) {
        if (ec) return finish();
        accepted_ = true;
        if (reading_) do_read();
      });
    });
    thread_ = std::thread([this] {
      io_.run_for(25s);  // bounds every test, passed or failed
      finish();
    });
  }
  ~holding_server() { thread_.join(); }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start_reading() {
    asio::post(io_, [this] {
      if (reading_) return;
      reading_ = true;
      if (accepted_) do_read();
    });
  }
  // What was read, once the client closed.
  std::vector<std::string> const& messages() {
    REQUIRE(done_.wait_for(25s) == std::future_status::ready);
    return messages_;
  }

 private:
  void do_read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
      if (ec) return finish();
      messages_.push_back(beast::buffers_to_string(buffer_.data()));
      buffer_.consume(buffer_.size());
      do_read();
    });
  }
  void finish() {
    work_.reset();  // the thread ends once the close is done
    if (!finished_.exchange(true)) done_promise_.set_value();
  }

  asio::io_context io_;
  // Between the handshake and start_reading() nothing is pending.
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  tcp::acceptor acceptor_;
  websocket::stream<tcp::socket> ws_{io_};
  beast::flat_buffer buffer_;
  bool accepted_ = false, reading_ = false;  // on io_'s thread
  std::atomic<bool> finished_{false};
  std::promise<void> done_promise_;
  std::shared_future<void> done_ = done_promise_.get_future().share();
  std::vector<std::string> messages_;
  std::thread thread_;
};

client_settings settings_for(std::uint16_t port, client_counters& counters, std::size_t max_queue) {
  client_settings s;
  s.url.text = "ws://127.0.0.1:" + std::to_string(port) + "/ws";
  s.url.address = "127.0.0.1";
  s.url.port = port;
  s.url.host_header = "127.0.0.1:" + std::to_string(port);
  s.url.path = "/ws";
  s.endpoint = tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
  s.timeout = 5000ms;
  s.max_queue = max_queue;
  s.counters = &counters;
  return s;
}

struct close_report {
  std::string reason;
  bool expected = false;
};

// Starts `client`; the returned futures say when it opened and closed.
std::pair<std::future<void>, std::future<close_report>> start(ws_client& client) {
  auto opened = std::make_shared<std::promise<void>>();
  auto closed = std::make_shared<std::promise<close_report>>();
  auto result = std::make_pair(opened->get_future(), closed->get_future());
  ws_client::callbacks cb;
  cb.on_open = [opened](std::string) { opened->set_value(); };
  cb.on_fail = [closed](std::string error) { closed->set_value({"failed: " + error, false}); };
  cb.on_close = [closed](std::string reason, bool expected) { closed->set_value({std::move(reason), expected}); };
  client.start(std::move(cb));
  return result;
}

// Runs `io` on one thread until the test ends; a stop bounds it.
struct io_thread {
  asio::io_context& io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~io_thread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

// A frame of one WebSocket fragment (Beast's write buffer is 4 KiB), marked
// with its number.
std::string numbered_frame(std::size_t i) {
  std::string f(4000, static_cast<char>('a' + i % 26));
  std::string number = std::to_string(i);
  f.replace(0, number.size(), number);
  return f;
}

// A connection whose server does not read, on which writing has stopped:
// of `frames` numbered frames (20 MB, more than the loopback socket buffers
// hold), `written` were written, one frame's write is blocked and the rest
// are queued.
struct blocked_connection {
  static constexpr std::size_t frames = 5000;
  holding_server server;
  client_counters counters;
  asio::io_context io;
  std::shared_ptr<ws_client> client = make_ws_client(io, settings_for(server.port(), counters, frames));
  std::pair<std::future<void>, std::future<close_report>> events = start(*client);
  io_thread runner{io};
  std::uint64_t written = 0;

  blocked_connection() {
    REQUIRE(events.first.wait_for(10s) == std::future_status::ready);
    for (std::size_t i = 0; i < frames; ++i) client->send(numbered_frame(i));
    for (int i = 0; i < 100; ++i) {  // until writing stops, at most 5 s
      std::this_thread::sleep_for(50ms);
      if (counters.frames_out == written && written > 0) break;
      written = counters.frames_out;
    }
    REQUIRE(written > 0);
    REQUIRE(written < frames);
  }
  close_report closed() {
    REQUIRE(events.second.wait_for(15s) == std::future_status::ready);
    return events.second.get();
  }
};

}  // namespace

TEST_CASE("client: a close while a frame is still being written lets that write finish") {
  // The sigstream-bench crash under --overload ("corrupted size vs.
  // prev_size"): the bench closed connections whose server had stopped
  // reading them. The close cleared the queue, the frame whose write was
  // blocked among them; when that write then completed, its handler popped
  // the front of the now empty queue, destroying a string a second time.
  blocked_connection c;
  c.client->close();
  std::this_thread::sleep_for(100ms);  // the close has run on the client's strand
  c.server.start_reading();

  auto report = c.closed();
  INFO(report.reason);
  REQUIRE(report.expected);
  auto const& got = c.server.messages();
  // Every frame written arrived whole and in order, the blocked one with
  // them; the ones still queued at the close were dropped and counted.
  REQUIRE(got.size() == c.counters.frames_out);
  REQUIRE(got.size() > c.written);
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == numbered_frame(i));
  REQUIRE(c.counters.frames_out + c.counters.queue_full == c.frames);
  REQUIRE(c.counters.closed_unexpectedly == 0);
}

TEST_CASE("client: a send over the queue limit is refused at once, on the sender's thread") {
  // The pacer learns at once what its connections cannot take, so a step's
  // "sent" is right when the step ends, and an overload cannot leave frames
  // waiting, unbounded, in the io_context for the next step to queue behind.
  holding_server server;
  client_counters counters;
  asio::io_context io;  // not run yet: nothing is written while we send
  auto client = make_ws_client(io, settings_for(server.port(), counters, 8));
  auto [opened, closed] = start(*client);
  for (int i = 0; i < 20; ++i) client->send("frame " + std::to_string(i));
  REQUIRE(counters.queue_full == 12);
  REQUIRE(client->pending() == 8);

  io_thread runner{io};
  REQUIRE(opened.wait_for(10s) == std::future_status::ready);
  server.start_reading();
  for (int i = 0; i < 100 && client->pending() > 0; ++i) std::this_thread::sleep_for(50ms);
  REQUIRE(client->pending() == 0);
  REQUIRE(counters.frames_out == 8);
  client->send("after");  // room again once written
  client->close();
  REQUIRE(closed.wait_for(15s) == std::future_status::ready);
  auto const& got = server.messages();
  REQUIRE(got.size() == 9);
  for (int i = 0; i < 8; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == "frame " + std::to_string(i));
  REQUIRE(got[8] == "after");
  REQUIRE(counters.queue_full == 12);
}

TEST_CASE("client: drop_unsent drops what waits, not the frame being written") {
  // What the overload step does when its schedule ends, so that the
  // recovery's signals do not queue behind the bench's own backlog.
  blocked_connection c;
  std::promise<void> dropped;
  c.client->drop_unsent([&] { dropped.set_value(); });
  REQUIRE(dropped.get_future().wait_for(5s) == std::future_status::ready);
  REQUIRE(c.client->pending() == 1);  // the blocked write
  REQUIRE(c.counters.queue_full == c.frames - c.written - 1);

  c.client->send("after");  // the connection goes on
  c.server.start_reading();
  for (int i = 0; i < 100 && c.client->pending() > 0; ++i) std::this_thread::sleep_for(50ms);
  c.client->close();
  c.closed();
  auto const& got = c.server.messages();
  REQUIRE(got.size() == c.written + 2);
  for (std::size_t i = 0; i <= c.written; ++i) REQUIRE(got[i] == numbered_frame(i));
  REQUIRE(got.back() == "after");
  REQUIRE(c.counters.queue_full == c.frames - c.written - 1);
}

TEST_CASE("hub: a refusal counts with the step of the signal it refuses") {
  // The overload's refusals keep coming during the recovery step (68,562
  // "errors" in a recovery step of 10,000 signals); they are the overload's.
  auto protocol = make_sigstream_protocol();
  hub h(*protocol);
  h.open_ledger(1, 10);
  h.open_ledger(2, 10);
  h.step = 2;
  peer_conn peer;  // the sigstream protocol answers nothing: no client needed
  auto refusal = [](std::uint64_t id) {
    return R"({"type":"error","id":)" + std::to_string(id) + R"(,"code":"unavailable","message":"overloaded"})";
  };
  on_frame(h, peer, refusal(signal_request(1, 5)));
  on_frame(h, peer, refusal(signal_request(1, 6)));
  on_frame(h, peer, refusal(signal_request(2, 3)));
  REQUIRE(h.errors == 1);
  REQUIRE(h.error_codes == std::map<std::string, std::uint64_t>{{"unavailable", 1}});
  REQUIRE(h.late_refusals.at(1).at("unavailable") == 2);
  REQUIRE(h.late_refusals.count(2) == 0);
  REQUIRE(h.ledgers.at(1).state[5] == signal_ledger::refused);
  REQUIRE(h.ledgers.at(1).state[6] == signal_ledger::refused);
  REQUIRE(h.ledgers.at(2).state[3] == signal_ledger::refused);
}
