#pragma once
// ws_session's byte_stream over Beast's in-memory test stream, so that a
// test can cut the server's reads and writes into pieces (read_size,
// write_size) and make any operation fail (fail_count). The test owns both
// ends, the server's (this refers to it) and the client's, so that it can
// count the server's operations after the session has ended.
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include "server/byte_stream.hpp"

#include <optional>
#include <vector>

namespace sig::test {

class test_byte_stream final : public server::byte_stream {
 public:
  test_byte_stream(boost::beast::test::stream& server_end, boost::beast::test::stream& client_end,
                   boost::asio::ip::tcp::endpoint remote)
      : server_end_(server_end), client_end_(client_end), remote_(remote) {}

  boost::asio::any_io_executor get_executor() override { return server_end_.get_executor(); }
  void async_read_some(boost::asio::mutable_buffer buffer, server::io_completion done) override {
    server_end_.async_read_some(buffer, std::move(done));
  }
  // The test stream's read_some waits for bytes; a non-blocking socket
  // answers would_block instead, and so does this.
  std::size_t read_available(boost::asio::mutable_buffer buffer, boost::system::error_code& ec) override {
    if (!open_) {
      ec = boost::asio::error::bad_descriptor;
      return 0;
    }
    if (server_end_.buffer().size() == 0) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    return server_end_.read_some(buffer, ec);
  }
  void async_write(std::span<boost::asio::const_buffer const> buffers, server::io_completion done) override {
    if (hold_writes_) {
      held_.emplace(held_write{{buffers.begin(), buffers.end()}, std::move(done)});
      return;
    }
    boost::asio::async_write(server_end_, buffers, std::move(done));
  }
  // A client that stops reading: the server's writes stay in flight, as on
  // a socket whose buffers are full, until released (or the stream closed).
  void hold_writes() { hold_writes_ = true; }
  bool write_held() const { return held_.has_value(); }
  // The test stream has no half-close: the client's end is told that no
  // more is coming (its reads end after what was written), and the
  // server's end reads on, as after a TCP FIN.
  void shutdown_send() override {
    if (open_) client_end_.close_remote();
  }
  void close() override {
    if (!open_) return;
    open_ = false;
    server_end_.close();
    // A write stuck in flight ends as on a socket: aborted.
    if (held_) {
      boost::asio::post(server_end_.get_executor(), [done = std::move(held_->done)]() mutable {
        done(boost::asio::error::operation_aborted, 0);
      });
      held_.reset();
    }
  }
  bool is_open() const override { return open_; }
  boost::asio::ip::tcp::endpoint remote_endpoint(boost::system::error_code& ec) const override {
    ec = {};
    return remote_;
  }

 private:
  boost::beast::test::stream& server_end_;
  boost::beast::test::stream& client_end_;
  boost::asio::ip::tcp::endpoint remote_;
  bool open_ = true;
  struct held_write {
    std::vector<boost::asio::const_buffer> buffers;
    server::io_completion done;
  };
  bool hold_writes_ = false;
  std::optional<held_write> held_;
};

}  // namespace sig::test
