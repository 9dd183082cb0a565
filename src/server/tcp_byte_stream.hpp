#pragma once
// A client's TCP connection as ws_session's byte_stream: each operation is
// the socket's own, so production pays one virtual call per operation and
// nothing else.
#include <boost/asio/ip/tcp.hpp>

#include "server/byte_stream.hpp"

namespace sig::server {

class tcp_byte_stream final : public byte_stream {
 public:
  // The socket's executor is the connection's strand.
  explicit tcp_byte_stream(boost::asio::ip::tcp::socket&& socket);

  boost::asio::any_io_executor get_executor() override { return socket_.get_executor(); }
  void async_read_some(boost::asio::mutable_buffer buffer, io_completion done) override;
  std::size_t read_available(boost::asio::mutable_buffer buffer, boost::system::error_code& ec) override;
  void async_write(std::span<boost::asio::const_buffer const> buffers, io_completion done) override;
  void shutdown_send() override;
  void close() override;
  bool is_open() const override { return socket_.is_open(); }
  boost::asio::ip::tcp::endpoint remote_endpoint(boost::system::error_code& ec) const override {
    return socket_.remote_endpoint(ec);
  }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace sig::server
