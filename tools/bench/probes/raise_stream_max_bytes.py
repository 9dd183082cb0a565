#!/usr/bin/env python3
"""Raises a running stream's max_bytes, keeping the block size it was made
with: an experiment, not a way to run sigstream.

nats-server 2.9.10 picks a file stream's block size when it makes the
stream, from max_bytes (up to about 128 KB gives 32 KB blocks; sigstream's
1 GiB gives 8 MB), and picks it again from the stored config when it
restarts. A stream made with `--retention-max-bytes 100000` and raised to
1 GiB with this keeps 32 KB blocks until nats-server restarts, so the write
block's cache never grows past 32 KB (docs/benchmarks.md, thirteenth and
fourteenth sessions): the benchmark then measures sigstream without the
store's regrowth stalls and without losing history to the small limit.

Usage: tools/bench/probes/raise_stream_max_bytes.py PORT STREAM MAX_BYTES
  e.g. SIGSTREAM_RETENTION_MAX_BYTES=100000 scripts/dev up --restart --fresh
       tools/bench/probes/raise_stream_max_bytes.py "$(cat .run/pids/nats.port)" SIGSTREAM 1073741824
"""
import json
import sys
import time

from nats_probe_support import connect


def request(s, f, subject, body):
    data = json.dumps(body).encode() if body is not None else b''
    s.sendall(b'PUB %s _R.x %d\r\n%s\r\n' % (subject.encode(), len(data), data))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        line = f.readline()
        if not line:
            break
        if line.startswith(b'MSG'):
            n = int(line.split()[-1])
            return json.loads(f.read(n + 2)[:n])
        if line.startswith(b'PING'):
            s.sendall(b'PONG\r\n')
    raise SystemExit('no answer from nats-server to ' + subject)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    port, stream, max_bytes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    s, f = connect(port, time.monotonic() + 5, then=b'SUB _R.> 1\r\n')
    s.settimeout(5)
    info = request(s, f, '$JS.API.STREAM.INFO.' + stream, None)
    if 'error' in info:
        raise SystemExit('stream info: %s' % info['error'])
    config = info['config']
    before = config.get('max_bytes')
    config['max_bytes'] = max_bytes
    answer = request(s, f, '$JS.API.STREAM.UPDATE.' + stream, config)
    if 'error' in answer:
        raise SystemExit('stream update: %s' % answer['error'])
    print('%s: max_bytes %s -> %s (blocks keep their size until nats-server restarts)' %
          (stream, before, answer['config']['max_bytes']))


if __name__ == '__main__':
    main()
