"""What the nats-server probes beside this file share: a free loopback
port, and a connection over NATS's text protocol (no client library)."""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
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



def jetstream_request(s, f, subject, body=None):
    """Sends a JetStream API request (`body` as JSON, or empty) on a
    connection from connect() subscribed to `_R.>`, and returns the parsed
    answer. Exits, saying why, on an error answer, a closed connection or no
    answer within the socket's timeout."""
    data = json.dumps(body).encode() if body is not None else b''
    s.sendall(b'PUB %s _R.x %d\r\n%s\r\n' % (subject.encode(), len(data), data))
    try:
        while True:
            line = f.readline()
            if not line:
                raise SystemExit('nats-server closed the connection')
            if line.startswith(b'MSG'):
                n = int(line.split()[-1])
                reply = json.loads(f.read(n + 2)[:n])
                if 'error' in reply:
                    raise SystemExit(f'{subject}: {reply["error"]}')
                return reply
            if line.startswith(b'PING'):
                s.sendall(b'PONG\r\n')
    except TimeoutError:
        raise SystemExit(f'no answer from nats-server to {subject}')

@contextlib.contextmanager
def running_nats_server(binary, prefix):
    """A nats-server with JetStream (GOMAXPROCS=1, as scripts/dev runs it)
    on a free loopback port, its store in a temporary directory; killed and
    its store removed on the way out. Yields (process, port)."""
    store = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    server = subprocess.Popen([binary, '-js', '-sd', store, '-a', '127.0.0.1', '-p', str(port)],
                              env={**os.environ, 'GOMAXPROCS': '1'},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield server, port
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(store, ignore_errors=True)
