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
import sys
import time

from nats_probe_support import connect, jetstream_request


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    port, stream, max_bytes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if max_bytes == 0 or max_bytes < -1:
        raise SystemExit('MAX_BYTES: a positive number of bytes, or -1 for no limit')
    s, f = connect(port, time.monotonic() + 5, then=b'SUB _R.> 1\r\n')
    s.settimeout(5)
    info = jetstream_request(s, f, '$JS.API.STREAM.INFO.' + stream)
    config = info['config']
    before = config.get('max_bytes')
    config['max_bytes'] = max_bytes
    answer = jetstream_request(s, f, '$JS.API.STREAM.UPDATE.' + stream, config)
    print('%s: max_bytes %s -> %s (blocks keep their size until nats-server restarts)' %
          (stream, before, answer['config']['max_bytes']))


if __name__ == '__main__':
    main()
