#pragma once
// Whether nats.c can read or write a connection's socket now without
// waiting.
//
// nats.c's read (natsSock_Read, 3.4.1) returns at once on a plain socket
// with nothing to read, but over TLS an SSL_read that wants more bytes
// makes it poll() the socket with no timeout on the calling thread. Driven
// from the instance's I/O thread (event_loop), that one thread then waits
// for the NATS server to send something, while the writes that would make
// it answer wait behind it: the instance freezes. A readiness that is stale
// (Asio's edge for bytes an earlier pass already read) or a record still
// arriving is enough. So over TLS nats.c is only asked to read when a whole
// TLS record is in the socket, or when the socket is closed or failed,
// which it must see to reconnect.
//
// Writes have the same trap: SSL_write of nats.c's whole buffer into a
// socket that cannot take it all makes nats.c poll() for room, untimed
// (natsSock_Write), while a plain socket's send just stops short. So over
// TLS the loop lets nats.c write only what the socket's send buffer can
// take at once (tls_write_fits), and otherwise looks again shortly.
#include <cstddef>

namespace sig::nats {

enum class read_readiness {
  nothing,         // wait for the socket
  partial_record,  // TLS: part of a record; the rest raises a new edge
  readable,        // a read finds something without waiting
  closed,          // the peer hung up or the socket failed: a read finds that at once
};

// Bytes in the socket's receive queue (FIONREAD).
int bytes_waiting(int fd);

// A plain socket: readable when it holds any byte. One system call (a
// peek), as the FIONREAD it replaces, and it also sees a hang-up.
read_readiness plain_readiness(int fd);

// A TLS socket: readable when a whole record (5-byte header, then the
// length it names) is in the receive queue. Peeks; reads nothing.
read_readiness tls_readiness(int fd);

// A socket's receive memory as the kernel counts it (SO_MEMINFO): what the
// queued bytes take with their buffers' overhead, and the socket's limit.
struct receive_memory {
  std::size_t used = 0;
  std::size_t limit = 0;
};
receive_memory receive_memory_of(int fd);

// Whether the socket's own receive buffer may be what keeps the rest of a
// record out. The kernel advertises no window once its free space is below
// about a segment (64 KiB on loopback, with the free space counted about
// half), and it counts queued bytes with their overhead: 13 KB of a record
// were seen holding 112 KB of a 153 KB buffer, and nothing more came. Then
// the part already there must be read for the rest to come in (nats.c waits
// for it inside the read, which the peer is already sending).
bool receive_window_may_be_shut(receive_memory memory);

// A socket's send buffer: bytes the kernel holds that the peer has not
// acknowledged (SIOCOUTQ), and what it may hold (SO_SNDBUF, as autotuned;
// not asked, and 0, when nothing is queued).
struct send_queue {
  std::size_t queued = 0;
  std::size_t capacity = 0;
};
send_queue send_queue_of(int fd);

// Whether a TLS write of `bytes` of plaintext goes into the send buffer
// whole, without waiting. The kernel charges each queued byte more than one
// byte (its buffers' overhead), so what is queued counts twice; records
// add their framing. An empty queue always takes the write: the peer has
// acknowledged everything, and a buffer larger than the socket's could not
// be sent otherwise (nats.c cannot be asked to write part of it).
bool tls_write_fits(std::size_t bytes, send_queue queue);

}  // namespace sig::nats
