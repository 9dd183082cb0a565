#pragma once
// Whether nats.c can read a connection's socket now without waiting.
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

}  // namespace sig::nats
