#include "adapters/nats/socket_readiness.hpp"

#include <poll.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace sig::nats {

namespace {

constexpr std::size_t tls_record_header = 5;  // type, version (2), length (2)
constexpr std::size_t tls_record_body = 16384;  // the most plaintext one record carries
// Framing, explicit nonce, tag and padding of one record, rounded up from
// the largest of TLS 1.2 and 1.3's usual suites.
constexpr std::size_t tls_record_overhead = 64;
// Free receive space below which the kernel may advertise no window: twice
// the largest segment on loopback (64 KiB), since about half of the free
// space is advertised.
constexpr std::size_t shut_window_below = 2 * 65536;

// A hang-up or error that a read would report without waiting, even with
// part of a record still queued before it.
bool hung_up(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  int rc;
  do rc = ::poll(&p, 1, 0);
  while (rc < 0 && errno == EINTR);
  return rc > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace

int bytes_waiting(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0) return 0;
  return n;
}

// One system call answers both questions: a byte waiting, or the peer gone.
read_readiness plain_readiness(int fd) {
  char byte;
  ssize_t n;
  do n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n > 0) return read_readiness::readable;
  if (n == 0) return read_readiness::closed;
  return errno == EAGAIN || errno == EWOULDBLOCK ? read_readiness::nothing : read_readiness::closed;
}

read_readiness tls_readiness(int fd) {
  unsigned char header[tls_record_header];
  ssize_t n;
  do n = ::recv(fd, header, sizeof header, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n == 0) return read_readiness::closed;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? read_readiness::nothing : read_readiness::closed;
  if (static_cast<std::size_t>(n) == tls_record_header) {
    std::size_t record = tls_record_header + (std::size_t{header[3]} << 8 | header[4]);
    if (static_cast<std::size_t>(bytes_waiting(fd)) >= record) return read_readiness::readable;
  }
  return hung_up(fd) ? read_readiness::closed : read_readiness::partial_record;
}

receive_memory receive_memory_of(int fd) {
  receive_memory m;
  std::uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &length) != 0) return m;
  m.used = info[SK_MEMINFO_RMEM_ALLOC];
  m.limit = info[SK_MEMINFO_RCVBUF];
  return m;
}

bool receive_window_may_be_shut(receive_memory memory) {
  return memory.used >= memory.limit || memory.limit - memory.used < shut_window_below;
}

send_queue send_queue_of(int fd) {
  send_queue q;
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0) q.queued = static_cast<std::size_t>(queued);
  // An empty queue takes any write (tls_write_fits): its size is not needed.
  if (q.queued == 0) return q;
  int capacity = 0;
  socklen_t length = sizeof capacity;
  if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &capacity, &length) == 0 && capacity > 0)
    q.capacity = static_cast<std::size_t>(capacity);
  return q;
}

bool tls_write_fits(std::size_t bytes, send_queue queue) {
  if (queue.queued == 0) return true;
  std::size_t on_wire = bytes + (bytes / tls_record_body + 1) * tls_record_overhead;
  std::size_t charged = 2 * queue.queued;
  return charged < queue.capacity && on_wire <= queue.capacity - charged;
}

}  // namespace sig::nats
