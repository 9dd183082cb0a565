#pragma once
// The connection under a ws_session: the few operations the session needs
// of it, so that the session runs over a TCP socket in production
// (tcp_byte_stream) and over Beast's in-memory test stream in its tests
// (one byte at a time, failures injected at every operation).
//
// Why an interface and not a template: the session's code stays in .cpp
// files, and a virtual call per I/O operation costs nothing next to the
// system call behind it. Completions are one concrete type (io_completion)
// for the same reason: a type-erased handler (std::function) would
// allocate for every read and write.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <utility>

namespace sig::server {

// The end of an asynchronous operation: a member function of an object
// that is kept alive until it has run (the session's shared_from_this(),
// as a lambda would capture it).
class io_completion {
 public:
  template <auto Member, class Owner>
  static io_completion to(std::shared_ptr<Owner> owner) {
    return io_completion(std::move(owner), [](void* object, boost::system::error_code ec, std::size_t bytes) {
      (static_cast<Owner*>(object)->*Member)(ec, bytes);
    });
  }

  void operator()(boost::system::error_code ec, std::size_t bytes) { call_(owner_.get(), ec, bytes); }

 private:
  using call_type = void (*)(void*, boost::system::error_code, std::size_t);
  io_completion(std::shared_ptr<void> owner, call_type call) : owner_(std::move(owner)), call_(call) {}

  std::shared_ptr<void> owner_;
  call_type call_;
};

class byte_stream {
 public:
  virtual ~byte_stream() = default;

  // The executor the session's handlers, posts and timer run on: the
  // connection's strand.
  virtual boost::asio::any_io_executor get_executor() = 0;

  // Waits for bytes and reads some into `buffer`: the session keeps one of
  // these in flight, and nothing else waits on the connection.
  virtual void async_read_some(boost::asio::mutable_buffer buffer, io_completion done) = 0;
  // Reads what has already arrived, without waiting: would_block (or
  // try_again) when nothing has. After a full read buffer, the rest of a
  // burst is taken on the same wake-up instead of one wait per buffer.
  virtual std::size_t read_available(boost::asio::mutable_buffer buffer, boost::system::error_code& ec) = 0;
  // Writes all of `buffers`, gathered (one writev for a batch of frames).
  // The buffers, and the span's array, must stay valid until `done`.
  virtual void async_write(std::span<boost::asio::const_buffer const> buffers, io_completion done) = 0;

  // Sends FIN and goes on reading: after the close handshake the server
  // ends the TCP connection first, then waits for the client's end, so
  // that unread bytes do not turn the close into a reset. Errors are not
  // reported: a connection already gone shows in the next read.
  virtual void shutdown_send() = 0;
  // Ends the connection both ways now; operations in flight complete with
  // operation_aborted.
  virtual void close() = 0;
  virtual bool is_open() const = 0;

  // The peer's address, for logs and the per-address limits.
  virtual boost::asio::ip::tcp::endpoint remote_endpoint(boost::system::error_code& ec) const = 0;
};

}  // namespace sig::server
