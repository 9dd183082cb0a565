"""What the nats-server probes beside this file share: a free loopback
port, and a connection over NATS's text protocol (no client library)."""
import socket
import time


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def connect(port, deadline, then=b''):
    """Connects to nats-server on 127.0.0.1:`port`, retrying until
    `deadline` (time.monotonic()) while it starts; sends CONNECT (with
    headers) and `then`. Returns the socket and a buffered reader of it."""
    while True:
        try:
            s = socket.create_connection(('127.0.0.1', port), timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit('nats-server did not start')
            time.sleep(0.05)
    f = s.makefile('rb')
    f.readline()  # INFO
    s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n' + then)
    return s, f
