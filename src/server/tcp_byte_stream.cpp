#include "server/tcp_byte_stream.hpp"

#include <boost/asio/write.hpp>

namespace sig::server {

using boost::asio::ip::tcp;

tcp_byte_stream::tcp_byte_stream(tcp::socket&& socket) : socket_(std::move(socket)) {
  boost::system::error_code ignored;
  // read_available never blocks: it is tried after a full buffer, and a
  // burst that ended exactly there leaves nothing to read.
  socket_.non_blocking(true, ignored);
}

void tcp_byte_stream::async_read_some(boost::asio::mutable_buffer buffer, io_completion done) {
  socket_.async_read_some(buffer, std::move(done));
}

std::size_t tcp_byte_stream::read_available(boost::asio::mutable_buffer buffer, boost::system::error_code& ec) {
  return socket_.read_some(buffer, ec);
}

void tcp_byte_stream::async_write(std::span<boost::asio::const_buffer const> buffers, io_completion done) {
  boost::asio::async_write(socket_, buffers, std::move(done));
}

void tcp_byte_stream::shutdown_send() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

void tcp_byte_stream::close() {
  boost::system::error_code ignored;
  if (!socket_.is_open()) return;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace sig::server
