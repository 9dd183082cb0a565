#pragma once
// Drives one nats.c connection from an Asio executor, so that its socket is
// read and written by the instance's I/O thread and no library thread sits
// between a publish and its acknowledgement or between the server and a
// room (natsOptions_SetEventLoop; ../shared notes: natsc-datapath.md).
//
// - Reads: when the socket is readable, natsConnection_ProcessReadEvent runs
//   on the loop's strand; every message it parses is handed to the message
//   handler right there (nats.c's connection filter), and the handler's
//   batch hook runs once the socket is drained. nats.c never queues these
//   messages, so no delivery thread is woken.
// - Writes: a publish from any thread only appends to nats.c's buffer and
//   asks for a write; the loop posts one handler that sends everything the
//   current turn published in one system call. Over TLS it first checks
//   that the socket can take all of it (socket_readiness.hpp), and
//   otherwise looks again shortly, so that nats.c never waits for room.
// - nats.c calls attach/read/write/detach from other threads too (its
//   reconnect and timer threads, a closing thread): those calls only take a
//   small mutex and post.
//
// nats.c 3.4 closes the socket right after asking to stop polling it, so
// "stop" releases the descriptor from Asio synchronously, never closes it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

struct __natsConnection;
struct __natsOptions;
struct __natsMsg;

namespace sig::nats {

enum class read_readiness;

class event_loop {
 public:
  using executor_type = boost::asio::strand<boost::asio::io_context::executor_type>;
  // Offered every message of the connection, on the loop's strand, as nats.c
  // parses it. Return true to take it (the handler then owns the natsMsg
  // and must destroy it), false to leave it to nats.c (its subscription
  // queues it as usual).
  using message_handler = std::function<bool(__natsMsg*)>;

  explicit event_loop(boost::asio::io_context& io);
  ~event_loop();
  event_loop(event_loop const&) = delete;
  event_loop& operator=(event_loop const&) = delete;

  executor_type const& executor() const { return strand_; }

  // Before connecting: hands nats.c the loop's callbacks. `tls`: the
  // connection will use TLS, so reads wait for whole records.
  // `receive_buffer` (testing only): each socket's SO_RCVBUF; 0: the kernel's.
  void install(__natsOptions* opts, bool tls, int receive_buffer = 0);
  // After connecting: messages go to `handler`, and `after_read` runs once
  // per read pass (after the messages of one or more socket reads), on the
  // strand, so that work can be batched per pass.
  void set_message_handler(message_handler handler, std::function<void()> after_read);
  void bind(__natsConnection* nc);
  // True when nats.c offers messages inline (its connection filter is in
  // this build of the library); false: they are queued to their
  // subscriptions and the after-read hook must drain those itself.
  bool inline_delivery() const { return inline_delivery_; }
  // Read passes and messages taken inline so far (tests and metrics).
  std::uint64_t read_passes() const { return read_passes_; }
  // Over TLS: since when writes have been held back because the socket
  // could not take them whole; empty once one went out (or none was held).
  std::optional<std::chrono::steady_clock::time_point> writes_held_since() const { return writes_held_since_; }

 private:
  friend struct loop_callbacks;  // nats.c's C callbacks (event_loop.cpp)

  void attach(__natsConnection* nc, int fd);
  void stop_polling();
  void request_write();
  void do_read(std::uint64_t generation);
  void arm_read(std::uint64_t generation);
  void look_again_soon(std::uint64_t generation);
  read_readiness readiness(int fd);
  void do_write(std::uint64_t generation);
  bool write_would_wait(int fd) const;
  void wait_for_send_room(std::uint64_t generation);

  boost::asio::io_context& io_;
  executor_type strand_;
  boost::asio::steady_timer partial_timer_;  // TLS: the rest of a record, looked for again
  boost::asio::steady_timer send_room_timer_;  // TLS: room for nats.c's buffer, looked for again
  std::chrono::milliseconds send_room_wait_;   // grows while the server does not read
  message_handler handler_;
  std::function<void()> after_read_;
  bool inline_delivery_ = false;
  bool tls_ = false;  // set by install, before the first read
  int receive_buffer_ = 0;  // set by install
  std::uint64_t read_passes_ = 0;
  std::optional<std::chrono::steady_clock::time_point> writes_held_since_;
  // TLS: the part of a record last seen waiting, and how many looks in a
  // row found it the same (a record that does not grow may be kept out by
  // the socket's own receive buffer).
  int partial_bytes_ = 0;
  int partial_looks_ = 0;

  // Shared with nats.c's threads (attach, read/write interest, detach).
  std::mutex mutex_;
  __natsConnection* nc_ = nullptr;  // set by the first attach, before any handler of ours runs
  std::optional<boost::asio::posix::stream_descriptor> descriptor_;
  std::uint64_t generation_ = 0;  // a new socket (reconnect) or none: stale handlers stop
  bool read_armed_ = false;
  bool write_wanted_ = false;
  bool write_posted_ = false;
  bool write_armed_ = false;
};

}  // namespace sig::nats
