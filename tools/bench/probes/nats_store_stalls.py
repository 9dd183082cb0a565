#!/usr/bin/env python3
"""How long nats-server takes to acknowledge appends to a file stream with
RePublish, paced, with nothing of sigstream in the way.

A probe for docs/benchmarks.md ("Seventh session"): nats-server 2.9.10's file
store keeps the whole cache of the block being written while RePublish reads
each subject's last message, and regrows it by copying, up to the block size
(8 MB for a stream of 1 GiB). While it copies, it acknowledges nothing. This
starts its own nats-server (GOMAXPROCS=1, as scripts/dev runs it) on a free
loopback port in a temporary directory, makes the stream, publishes at a
steady rate over 100 subjects with a reply subject per message, and reports
the acknowledgements' latency.

  --layout one   one stream of 1 GiB (sigstream's layout today)
  --layout two   a live stream of 100 KB (32 KB blocks, whose cache stays
                 small) and an archive of 1 GiB that sources it: the layout
                 this probe was written to weigh
  --no-republish the same streams without RePublish: nothing reads the block
                 being written, so its cache is emptied at every flush and
                 never regrows (the causal check of the thirteenth session)

Usage: tools/bench/probes/nats_store_stalls.py --layout one --rate 5000 --duration 20
Run it on a quiet machine; it stops by itself (at most duration + 15 s).
"""
import argparse
import select
import shutil
import time

from nats_probe_support import connect, jetstream_request, running_nats_server


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--layout', choices=['one', 'two'], required=True)
    ap.add_argument('--rate', type=int, default=5000, help='appends per second (1..20000)')
    ap.add_argument('--duration', type=float, default=20, help='seconds (1..60)')
    ap.add_argument('--payload-bytes', type=int, default=450,
                    help='bytes per append (16..4096; 450 is about what a signal of the benchmark stores)')
    ap.add_argument('--no-republish', action='store_true',
                    help='make the streams without RePublish (nothing reads the block being written)')
    ap.add_argument('--nats-server', default=shutil.which('nats-server') or '/usr/sbin/nats-server')
    a = ap.parse_args()
    if not 1 <= a.rate <= 20000 or not 1 <= a.duration <= 60 or not 16 <= a.payload_bytes <= 4096:
        ap.error('--rate must be 1..20000, --duration 1..60 and --payload-bytes 16..4096')
    payload = b'x' * a.payload_bytes
    with running_nats_server(a.nats_server, 'nats-store-stalls-') as (server, port):
        s, f = connect(port, time.monotonic() + 10, then=b'SUB _R.> 1\r\n')
        live = {'name': 'LIVE', 'subjects': ['room.>'], 'storage': 'file',
                'max_bytes': (1 << 30) if a.layout == 'one' else 100_000}
        if not a.no_republish:
            live['republish'] = {'src': 'room.>', 'dest': 'live.>'}
        jetstream_request(s, f, '$JS.API.STREAM.CREATE.LIVE', live)
        if a.layout == 'two':
            jetstream_request(s, f, '$JS.API.STREAM.CREATE.ARCH',
                    {'name': 'ARCH', 'storage': 'file', 'max_bytes': 1 << 30, 'sources': [{'name': 'LIVE'}]})
        total = int(a.rate * a.duration)
        sent_at = [0.0] * total
        latencies = []
        s.setblocking(False)
        pending = b''
        sent = 0
        start = time.perf_counter()
        give_up = start + a.duration + 15
        while len(latencies) < total and time.perf_counter() < give_up:
            now = time.perf_counter()
            while sent < total and start + sent / a.rate <= now:
                sent_at[sent] = time.perf_counter()
                s.sendall(b'PUB room.r%d _R.%d %d\r\n%s\r\n' % (sent % 100, sent, len(payload), payload))
                sent += 1
            wait = start + sent / a.rate - time.perf_counter() if sent < total else 0.001
            select.select([s], [], [], max(0.0, min(0.001, wait)))
            try:
                pending += s.recv(1 << 20)
            except BlockingIOError:
                pass
            while True:
                end = pending.find(b'\r\n')
                if end < 0:
                    break
                line = pending[:end]
                if line.startswith(b'MSG'):
                    parts = line.split()
                    size = int(parts[-1])
                    if len(pending) < end + 2 + size + 2:
                        break
                    number = int(parts[1].split(b'.')[1])
                    latencies.append((time.perf_counter() - sent_at[number]) * 1000)
                    pending = pending[end + 2 + size + 2:]
                else:
                    if line == b'PING':
                        s.sendall(b'PONG\r\n')
                    pending = pending[end + 2:]
        latencies.sort()
        n = len(latencies)
        if n == 0:
            raise SystemExit('no acknowledgement came back')
        print(f'layout {a.layout}{" without RePublish" if a.no_republish else ""}, {a.rate}/s for {a.duration:.0f} s: {n} of {total} acknowledged; '
              f'p50 {latencies[n // 2]:.2f} ms, p99 {latencies[int(n * 0.99)]:.2f} ms, '
              f'p99.9 {latencies[int(n * 0.999)]:.2f} ms, max {latencies[-1]:.2f} ms; '
              f'{sum(1 for x in latencies if x > 5)} over 5 ms')


if __name__ == '__main__':
    main()
