#include "adapters/nats/event_loop.hpp"

#include "adapters/nats/socket_readiness.hpp"

#include <nats/nats.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <algorithm>

extern "C" {
// nats.c's connection filter (src/conn.h of 3.4.1, exported by Debian's
// libnats.so.3.4, not in nats.h): called for every message of a known
// subscription on the thread that parsed it, before nats.c queues it.
// Weak: a libnats without it still links and runs, with messages queued to
// their subscriptions and drained by the after-read hook instead.
typedef void (*sig_nats_message_filter)(natsConnection* nc, natsMsg** msg, void* closure);
void natsConn_setFilterWithClosure(natsConnection* nc, sig_nats_message_filter filter, void* closure)
    __attribute__((weak));
}

namespace sig::nats {

namespace asio = boost::asio;

namespace {

// Socket reads per handler before other handlers (sessions, rooms) get a
// turn: 16 × nats.c's 32 KiB buffer.
constexpr int reads_per_turn = 16;

// Over TLS, a write the socket cannot take whole is tried again after this
// long, doubling up to the longest while the server still does not read:
// it is not reading, and nothing wakes the loop when it does (an edge for
// room comes only after a send that found none, and none is tried).
constexpr std::chrono::milliseconds first_send_room_wait{1};
constexpr std::chrono::milliseconds longest_send_room_wait{16};

// Looks (1 ms apart) at part of a TLS record that does not grow before the
// socket's receive memory is asked whether it keeps the rest out.
constexpr int unchanged_looks_before_reading_part = 3;

}  // namespace

struct loop_callbacks {
  static natsStatus attach(void** user_data, void* loop, natsConnection* nc, natsSock fd) {
    auto* self = static_cast<event_loop*>(loop);
    *user_data = self;
    self->attach(nc, static_cast<int>(fd));
    return NATS_OK;
  }
  static natsStatus read(void* user_data, bool add) {
    // nats.c asks to start reading only through attach; "stop" precedes
    // closing the socket, and must be done before this returns.
    if (!add) static_cast<event_loop*>(user_data)->stop_polling();
    return NATS_OK;
  }
  static natsStatus write(void* user_data, bool add) {
    auto* self = static_cast<event_loop*>(user_data);
    if (add) {
      self->request_write();
    } else {
      std::lock_guard lock(self->mutex_);
      self->write_wanted_ = false;
    }
    return NATS_OK;
  }
  static natsStatus detach(void* user_data) {
    static_cast<event_loop*>(user_data)->stop_polling();
    return NATS_OK;
  }
  static void filter(natsConnection*, natsMsg** msg, void* closure) {
    auto* self = static_cast<event_loop*>(closure);
    if (self->handler_ && self->handler_(*msg)) *msg = nullptr;
  }
};

event_loop::event_loop(asio::io_context& io)
    : io_(io),
      strand_(asio::make_strand(io)),
      partial_timer_(strand_),
      send_room_timer_(strand_),
      send_room_wait_(first_send_room_wait) {}

event_loop::~event_loop() { stop_polling(); }

void event_loop::install(natsOptions* opts, bool tls, int receive_buffer) {
  tls_ = tls;
  receive_buffer_ = receive_buffer;
  natsOptions_SetEventLoop(opts, this, &loop_callbacks::attach, &loop_callbacks::read, &loop_callbacks::write,
                           &loop_callbacks::detach);
}

void event_loop::set_message_handler(message_handler handler, std::function<void()> after_read) {
  handler_ = std::move(handler);
  after_read_ = std::move(after_read);
}

void event_loop::bind(natsConnection* nc) {
  if (natsConn_setFilterWithClosure != nullptr) {
    natsConn_setFilterWithClosure(nc, &loop_callbacks::filter, this);
    inline_delivery_ = true;
  }
}

// A new socket (first connect or reconnect), from the connecting thread.
void event_loop::attach(natsConnection* nc, int fd) {
  std::uint64_t generation;
  {
    std::lock_guard lock(mutex_);
    nc_ = nc;
    if (descriptor_) {
      descriptor_->release();
      descriptor_.reset();
    }
    generation = ++generation_;
    if (receive_buffer_ > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_, sizeof receive_buffer_);
    boost::system::error_code ec;
    descriptor_.emplace(io_);
    descriptor_->assign(fd, ec);
    if (ec) {
      descriptor_.reset();
      return;
    }
    read_armed_ = false;
    write_armed_ = false;
    write_posted_ = false;
  }
  asio::post(strand_, [this, generation] { do_read(generation); });
  // nats.c asks for a write only when it has bytes to send (a send of none
  // reads as a closed connection): one asked for before this socket was
  // ours is honoured now.
  bool asked;
  {
    std::lock_guard lock(mutex_);
    asked = write_wanted_;
  }
  if (asked) request_write();
}

// Synchronous: nats.c closes the socket as soon as this returns. Pending
// waits complete with operation_aborted and see a newer generation.
void event_loop::stop_polling() {
  std::lock_guard lock(mutex_);
  ++generation_;
  if (descriptor_) {
    boost::system::error_code ec;
    descriptor_->cancel(ec);
    descriptor_->release();
    descriptor_.reset();
  }
  read_armed_ = false;
  write_armed_ = false;
  write_wanted_ = false;
}

void event_loop::request_write() {
  std::uint64_t generation;
  {
    std::lock_guard lock(mutex_);
    write_wanted_ = true;
    if (write_posted_ || write_armed_ || !descriptor_) return;
    write_posted_ = true;
    generation = generation_;
  }
  // Posted, not done here: every publish of the current turn lands in
  // nats.c's buffer first, and goes out in one send.
  asio::post(strand_, [this, generation] { do_write(generation); });
}

void event_loop::do_write(std::uint64_t generation) {
  int fd;
  {
    std::lock_guard lock(mutex_);
    write_posted_ = false;
    if (generation != generation_ || !write_wanted_ || !descriptor_) return;
    fd = descriptor_->native_handle();
  }
  if (write_would_wait(fd)) {
    if (!writes_held_since_) writes_held_since_ = std::chrono::steady_clock::now();
    wait_for_send_room(generation);
    return;
  }
  writes_held_since_.reset();
  send_room_wait_ = first_send_room_wait;
  // One send of nats.c's whole buffer; on a partial send nats.c keeps the
  // rest and leaves write interest on, so wait until the socket drains.
  natsConnection_ProcessWriteEvent(nc_);
  std::lock_guard lock(mutex_);
  if (generation != generation_ || !write_wanted_ || write_armed_ || !descriptor_) return;
  write_armed_ = true;
  descriptor_->async_wait(asio::posix::stream_descriptor::wait_write,
                          asio::bind_executor(strand_, [this, generation](boost::system::error_code ec) {
                            {
                              std::lock_guard lock(mutex_);
                              if (generation != generation_) return;
                              write_armed_ = false;
                            }
                            if (!ec) do_write(generation);
                          }));
}

// A plain send never waits (it stops short); SSL_write of a buffer the
// socket cannot take whole would, inside nats.c. nats.c's buffer only grows
// between here and its write (a PING from its timer thread at most).
bool event_loop::write_would_wait(int fd) const {
  if (!tls_) return false;
  int buffered = natsConnection_Buffered(nc_);
  if (buffered <= 0) return false;
  return !tls_write_fits(static_cast<std::size_t>(buffered), send_queue_of(fd));
}

// Counts as the armed write: requests meanwhile add to nats.c's buffer and
// go out with it.
void event_loop::wait_for_send_room(std::uint64_t generation) {
  {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || write_armed_) return;
    write_armed_ = true;
  }
  send_room_timer_.expires_after(send_room_wait_);
  send_room_wait_ = std::min(send_room_wait_ * 2, longest_send_room_wait);
  send_room_timer_.async_wait(asio::bind_executor(strand_, [this, generation](boost::system::error_code ec) {
    if (ec) return;
    {
      std::lock_guard lock(mutex_);
      if (generation != generation_) return;
      write_armed_ = false;
    }
    do_write(generation);
  }));
}

// Asio registers descriptors edge-triggered and nats.c reads at most one
// buffer per call, so the loop reads until nothing is left rather than
// waiting for an edge that already came. Over TLS, "something" must be a
// whole record (socket_readiness.hpp says why).
read_readiness event_loop::readiness(int fd) {
  if (!tls_) return plain_readiness(fd);
  auto now = tls_readiness(fd);
  if (now != read_readiness::partial_record) {
    partial_looks_ = 0;
    return now;
  }
  // Part of a record that stops growing while the socket's receive memory
  // is nearly used up is kept out by that buffer (socket_readiness.hpp):
  // nothing would ever wake the loop. Read the part; the rest then comes in.
  int waiting = bytes_waiting(fd);
  partial_looks_ = waiting == partial_bytes_ ? partial_looks_ + 1 : 1;
  partial_bytes_ = waiting;
  if (partial_looks_ >= unchanged_looks_before_reading_part && receive_window_may_be_shut(receive_memory_of(fd))) {
    partial_looks_ = 0;
    return read_readiness::readable;
  }
  return now;
}

// On the strand: reads until the socket is drained (or this turn's share is
// used), hands the pass to the after-read hook, then waits for more.
void event_loop::do_read(std::uint64_t generation) {
  int fd;
  {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || !descriptor_) return;
    fd = descriptor_->native_handle();
  }
  ++read_passes_;
  // A plain socket is read on any readiness (a read of nothing returns at
  // once); a TLS one only when the read cannot wait. A hang-up gets one
  // read per pass, for nats.c to see it and reconnect.
  auto now = tls_ ? readiness(fd) : read_readiness::readable;
  bool hang_up_read = false;
  for (int reads = 0; reads < reads_per_turn; ++reads) {
    bool read_it = now == read_readiness::readable || (now == read_readiness::closed && !hang_up_read);
    if (!read_it) break;
    hang_up_read = hang_up_read || now == read_readiness::closed;
    // On a broken socket nats.c stops polling (a newer generation) and
    // reconnects from a thread of its own.
    natsConnection_ProcessReadEvent(nc_);
    {
      std::lock_guard lock(mutex_);
      if (generation != generation_) {
        now = read_readiness::nothing;
        break;
      }
    }
    now = readiness(fd);
  }
  if (after_read_) after_read_();
  if (now == read_readiness::readable) {
    asio::post(strand_, [this, generation] { do_read(generation); });
  } else if (now == read_readiness::partial_record) {
    look_again_soon(generation);
  } else {
    arm_read(generation);
  }
}

// Bytes that arrived after the last look but before the wait began raised
// an edge nobody was waiting for. Asio's wait re-arms the descriptor
// (epoll_ctl MOD), so the kernel would report them, but only through the
// reactor's next epoll_wait and then the strand; a look right after arming
// reads them one pass of the handler queue sooner. (Without it, one run of
// two at 10,000/s stalled for seconds; with it, none of eight did: not a
// proof, and the look costs one system call per pass.)
void event_loop::arm_read(std::uint64_t generation) {
  int fd;
  {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || !descriptor_) return;
    fd = descriptor_->native_handle();
    if (!read_armed_) {
      read_armed_ = true;
      descriptor_->async_wait(asio::posix::stream_descriptor::wait_read,
                              asio::bind_executor(strand_, [this, generation](boost::system::error_code ec) {
                                {
                                  std::lock_guard lock(mutex_);
                                  if (generation != generation_) return;
                                  read_armed_ = false;
                                }
                                if (!ec) do_read(generation);
                              }));
    }
  }
  auto now = readiness(fd);
  if (now == read_readiness::readable) asio::post(strand_, [this, generation] { do_read(generation); });
  if (now == read_readiness::partial_record) look_again_soon(generation);
}

// The rest of a TLS record is on its way (or kept out: readiness()). A wait
// for the socket would fire at once, or never (Asio waits for a new edge):
// look again shortly instead.
void event_loop::look_again_soon(std::uint64_t generation) {
  partial_timer_.expires_after(std::chrono::milliseconds(1));
  partial_timer_.async_wait(asio::bind_executor(strand_, [this, generation](boost::system::error_code ec) {
    if (!ec) do_read(generation);
  }));
}

}  // namespace sig::nats
