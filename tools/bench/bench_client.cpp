#include "bench/bench_client.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <future>
#include <thread>

namespace sig::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// One connection. All members but `pending_` are touched only on the
// stream's strand; the public calls post to it. Handlers bind
// shared_from_this(), so the object lives while an operation is pending.
class beast_client final : public ws_client, public std::enable_shared_from_this<beast_client> {
 public:
  beast_client(asio::io_context& io, client_settings const& settings)
      : settings_(settings), ws_(asio::make_strand(io)) {}

  void start(callbacks handlers) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), handlers = std::move(handlers)]() mutable {
      self->handlers_ = std::move(handlers);
      self->do_connect();
    });
  }

  void send(std::string frame) override {
    // Counted here, on the caller's thread, not when the strand gets to it:
    // a sender that outruns the connection is refused at once, in the step
    // that sent it, instead of piling frames up unbounded in the
    // io_context's queue, where the next step's frames would wait behind them.
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= settings_.max_queue) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      if (settings_.counters) ++settings_.counters->queue_full;
      return;
    }
    asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
      self->enqueue(std::move(frame));
    });
  }

  std::size_t pending() const override { return pending_.load(std::memory_order_relaxed); }

  void drop_unsent(std::function<void()> done) override {
    // Posted after the sends it must drop, so the strand runs it after them.
    asio::post(ws_.get_executor(), [self = shared_from_this(), done = std::move(done)] {
      self->drop_queued(self->writing_ ? 1 : 0);
      done();
    });
  }

  void close() override {
    asio::post(ws_.get_executor(), [self = shared_from_this()] { self->do_close(); });
  }

 private:
  enum class state { idle, connecting, open, closing, done };

  void do_connect() {
    state_ = state::connecting;
    beast::get_lowest_layer(ws_).expires_after(settings_.timeout);
    beast::get_lowest_layer(ws_).async_connect(settings_.endpoint,
                                               beast::bind_front_handler(&beast_client::on_connect, shared_from_this()));
  }

  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect: " + ec.message());
    if (state_ != state::connecting) return fail("closed while connecting");
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = settings_.timeout;  // also bounds the close
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;  // the server pings; answering is automatic while reading
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(http::field::user_agent, "sigstream-bench"); }));
    ws_.secure_prng(false);  // masking keys need not be unpredictable here, only cheap
    ws_.read_message_max(1 << 20);
    ws_.async_handshake(response_, settings_.url.host_header, settings_.url.path,
                        beast::bind_front_handler(&beast_client::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return fail("handshake: " + ec.message());
    if (state_ != state::connecting) return fail("closed while connecting");
    state_ = state::open;
    std::string instance(response_[settings_.instance_header]);
    response_ = {};
    if (handlers_.on_open) handlers_.on_open(std::move(instance));
    do_read();
    if (!queue_.empty() && !writing_) do_write();
  }

  void fail(std::string what) {
    bool was_open = state_ == state::open || state_ == state::closing;
    state_ = state::done;
    drop_queued(writing_ ? 1 : 0);
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (was_open) {
      finish(std::move(what), false);
      return;
    }
    if (handlers_.on_fail) handlers_.on_fail(std::move(what));
    handlers_ = {};
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&beast_client::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      // Expected only when the bench closed it; a close by the server counts.
      bool expected = state_ == state::closing || state_ == state::done;
      if (!expected && settings_.counters) ++settings_.counters->closed_unexpectedly;
      state_ = state::done;
      drop_queued(writing_ ? 1 : 0);
      finish(ec == websocket::error::closed
                 ? "closed by the server (" + std::to_string(ws_.reason().code) + " " + std::string(ws_.reason().reason) + ")"
                 : ec.message(),
             expected);
      return;
    }
    if (settings_.counters) ++settings_.counters->frames_in;
    auto data = buffer_.cdata();
    if (handlers_.on_message)
      handlers_.on_message(std::string_view(static_cast<char const*>(data.data()), data.size()));
    buffer_.consume(buffer_.size());
    do_read();
  }

  void enqueue(std::string frame) {
    if (state_ == state::closing || state_ == state::done) {
      dropped(1);
      return;
    }
    queue_.push_back(std::move(frame));
    if (state_ == state::open && !writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(queue_.front()), beast::bind_front_handler(&beast_client::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    // The frame just written (or not) is still the queue's front: a close
    // drops only the frames behind a write in flight (do_close).
    if (ec) {
      drop_queued(0);
      return;  // the pending read fails as well and reports the close
    }
    if (settings_.counters) ++settings_.counters->frames_out;
    queue_.pop_front();
    pending_.fetch_sub(1, std::memory_order_relaxed);
    if (!queue_.empty() && state_ == state::open) do_write();
  }

  // Drops the queued frames from index `keep` on, as never written.
  void drop_queued(std::size_t keep) {
    if (queue_.size() <= keep) return;
    std::size_t n = queue_.size() - keep;
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(keep), queue_.end());
    dropped(n);
  }
  void dropped(std::size_t n) {
    pending_.fetch_sub(n, std::memory_order_relaxed);
    if (settings_.counters) settings_.counters->queue_full += n;
  }

  void do_close() {
    if (state_ == state::connecting || state_ == state::idle) {
      state_ = state::done;
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);  // the pending connect/handshake fails
      return;
    }
    if (state_ != state::open) return;
    state_ = state::closing;
    // Not the frame being written: Beast still reads it, and on_write pops
    // it when the write completes (the close waits for that write).
    drop_queued(writing_ ? 1 : 0);
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        // Could not close cleanly within the timeout: drop the socket.
        beast::error_code ignored;
        beast::get_lowest_layer(self->ws_).socket().close(ignored);
      }
    });
  }

  void finish(std::string reason, bool expected) {
    auto on_close = std::move(handlers_.on_close);
    handlers_ = {};
    if (on_close) on_close(std::move(reason), expected);
  }

  client_settings settings_;
  websocket::stream<beast::tcp_stream> ws_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;  // its front is being written while writing_
  std::atomic<std::size_t> pending_{0};  // frames sent and neither written nor dropped yet
  bool writing_ = false;
  state state_ = state::idle;
  callbacks handlers_;
};

// One GET on a fresh connection; every step is bounded by the stream timeout.
class http_getter : public std::enable_shared_from_this<http_getter> {
 public:
  http_getter(asio::io_context& io, std::chrono::milliseconds timeout, std::function<void(http_result)> done)
      : stream_(asio::make_strand(io)), timeout_(timeout), done_(std::move(done)) {}

  void run(tcp::endpoint endpoint, std::string host_header, std::string target) {
    request_ = {http::verb::get, target, 11};
    request_.set(http::field::host, host_header);
    request_.set(http::field::user_agent, "sigstream-bench");
    request_.keep_alive(false);
    asio::post(stream_.get_executor(), [self = shared_from_this(), endpoint] {
      self->stream_.expires_after(self->timeout_);
      self->stream_.async_connect(endpoint, [self](beast::error_code ec) { self->on_connect(ec); });
    });
  }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return finish("connect: " + ec.message());
    http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish("write: " + ec.message());
      http::async_read(self->stream_, self->buffer_, self->parser_,
                       [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish("read: " + ec.message());
    auto& response = parser_.get();
    http_result result;
    result.ok = true;
    result.status = static_cast<int>(response.result_int());
    result.instance = std::string(response["X-Sigstream-Instance"]);
    result.body = std::move(response.body());
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    done_(std::move(result));
  }

  void finish(std::string error) {
    stream_.close();
    http_result result;
    result.error = std::move(error);
    done_(std::move(result));
  }

  beast::tcp_stream stream_;
  std::chrono::milliseconds timeout_;
  std::function<void(http_result)> done_;
  http::request<http::empty_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

std::shared_ptr<ws_client> make_ws_client(asio::io_context& io, client_settings const& settings) {
  return std::make_shared<beast_client>(io, settings);
}

void http_get(asio::io_context& io, tcp::endpoint endpoint, std::string host_header, std::string target,
              std::chrono::milliseconds timeout, std::function<void(http_result)> done) {
  auto getter = std::make_shared<http_getter>(io, timeout, std::move(done));
  getter->run(endpoint, std::move(host_header), std::move(target));
}

std::optional<std::chrono::steady_clock::time_point> wait_for_status_200(asio::io_context& io, std::uint16_t port,
                                                                         std::string const& target,
                                                                         std::chrono::steady_clock::time_point deadline,
                                                                         std::function<bool()> const& gone) {
  using steady = std::chrono::steady_clock;
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  std::string host = "127.0.0.1:" + std::to_string(port);
  while (!gone() && steady::now() < deadline) {
    auto answer = std::make_shared<std::promise<std::pair<int, steady::time_point>>>();
    auto future = answer->get_future();
    http_get(io, endpoint, host, target, std::chrono::milliseconds(1000),
             [answer](http_result r) { answer->set_value({r.ok ? r.status : 0, steady::now()}); });
    if (future.wait_for(std::chrono::milliseconds(2000)) != std::future_status::ready) continue;
    auto [status, at] = future.get();
    if (status == 200) return at;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

}  // namespace sig::bench
