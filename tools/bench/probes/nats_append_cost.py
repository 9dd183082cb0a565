#!/usr/bin/env python3
"""What nats-server 2.9.10 spends per append to a file stream with RePublish,
and how much of it is waking up, with nothing of sigstream in the way.

A probe for docs/benchmarks.md ("Eighth session"). Starts its own nats-server
(GOMAXPROCS=1, as scripts/dev runs it) on a free loopback port in a temporary
directory, makes a 1 GiB stream republishing `room.>` to `live.>`, and opens
three publisher connections, as three sigstream instances would: each
publishes a third of the rate over 100 subjects, at random (Poisson) times,
with a `Nats-Msg-Id` and a reply subject of its own per append, and each
subscribes to every republished copy (in sigstream's benchmark every room
has a peer on every instance). It reports nats-server's CPU time (user +
system, from /proc) and its context switches per append.

  --windows 0,1000   microseconds a publisher waits after a write before it
                     writes again (0: each append written as it comes); what
                     came meanwhile goes out in one write
  --no-ack           appends without a reply subject (no PubAck)
  --no-echo          publishers do not subscribe to the copies (then the
                     PubAck is the only thing written back to them)

Usage: tools/bench/probes/nats_append_cost.py --rate 5000 --windows 0,500,1000
Run it on a quiet machine; every run stops by itself (duration + 1 s).
"""
import argparse
import json
import os
import random
import select
import shutil
import time

from nats_probe_support import connect, running_nats_server

PAYLOAD = b'x' * 400  # about what a signal of the benchmark stores
PUBLISHERS = 3


def cpu_seconds(pid):
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def context_switches(pid):
    total = 0
    for task in os.listdir(f'/proc/{pid}/task'):
        for line in open(f'/proc/{pid}/task/{task}/status'):
            if 'ctxt_switches' in line:
                total += int(line.split()[1])
    return total


def run(a, window_us):
    with running_nats_server(a.nats_server, 'nats-append-cost-') as (server, port):
        admin, admin_file = connect(port, time.monotonic() + 10)
        admin.sendall(b'SUB _ADMIN.> 1\r\n')
        config = json.dumps({'name': 'LIVE', 'subjects': ['room.>'], 'storage': 'file', 'max_bytes': 1 << 30,
                             'republish': {'src': 'room.>', 'dest': 'live.>'}}).encode()
        admin.sendall(b'PUB $JS.API.STREAM.CREATE.LIVE _ADMIN.1 %d\r\n%s\r\n' % (len(config), config))
        while not admin_file.readline().startswith(b'MSG'):
            pass
        if b'"error"' in admin_file.readline():
            raise SystemExit('the stream was not created')
        publishers = []
        for k in range(PUBLISHERS):
            c, _ = connect(port, time.monotonic() + 5)
            c.sendall((b'' if a.no_echo else b'SUB live.> 1\r\n') + b'SUB _R%d.> 2\r\n' % k)
            c.setblocking(False)
            publishers.append(c)
        time.sleep(0.3)
        each = int(a.rate * a.duration) // PUBLISHERS
        rng = random.Random(1)
        arrivals = []
        for _ in range(PUBLISHERS):
            t, times = 0.0, []
            for _ in range(each):
                t += rng.expovariate(a.rate / PUBLISHERS)
                times.append(t)
            arrivals.append(times)
        sent = [0] * PUBLISHERS
        last_write = [-1.0] * PUBLISHERS
        window = window_us / 1e6
        copies = acks = number = 0
        switches0, cpu0 = context_switches(server.pid), cpu_seconds(server.pid)
        start = time.perf_counter()
        stop = start + a.duration + 1  # bounded: what is not sent by then is not sent
        while time.perf_counter() < stop and (sum(sent) < each * PUBLISHERS or time.perf_counter() < start + a.duration + 0.5):
            elapsed = time.perf_counter() - start
            for k, c in enumerate(publishers):
                if elapsed - last_write[k] < window:
                    continue
                due = sent[k]
                while due < each and arrivals[k][due] <= elapsed:
                    due += 1
                if due == sent[k]:
                    continue
                out = []
                for _ in range(due - sent[k]):
                    header = b'NATS/1.0\r\nNats-Msg-Id: i%d.abcdefgh.%d\r\n\r\n' % (k, number)
                    reply = b'' if a.no_ack else b' _R%d.%d' % (k, number)
                    out.append(b'HPUB room.r%d%s %d %d\r\n%s%s\r\n' % (
                        number % 100, reply, len(header), len(header) + len(PAYLOAD), header, PAYLOAD))
                    number += 1
                c.sendall(b''.join(out))
                sent[k] = due
                last_write[k] = elapsed
            readable, _, _ = select.select(publishers, [], [], 0.0005)
            for c in readable:
                try:
                    data = c.recv(1 << 20)
                except BlockingIOError:
                    continue
                copies += data.count(b'HMSG live.')
                acks += data.count(b'MSG _R')
                if b'PING\r\n' in data:
                    c.sendall(b'PONG\r\n')
        appends = sum(sent)
        used = cpu_seconds(server.pid) - cpu0
        switches = context_switches(server.pid) - switches0
        print(f'{a.rate}/s, window {window_us} us{", no ack" if a.no_ack else ""}{", no echo" if a.no_echo else ""}: '
              f'nats-server {used / appends * 1e6:.1f} us and {switches / appends:.2f} context switches per append '
              f'({appends} appended, {copies} copies and {acks} acks read back, of '
              f'{0 if a.no_echo else PUBLISHERS * appends} and {0 if a.no_ack else appends})', flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rate', type=int, default=5000, help='appends per second, all publishers (3..20000)')
    ap.add_argument('--windows', default='0', help='comma-separated microseconds (0..10000)')
    ap.add_argument('--duration', type=float, default=10, help='seconds per run (1..60)')
    ap.add_argument('--rounds', type=int, default=1, help='runs of each window, interleaved (1..5)')
    ap.add_argument('--no-ack', action='store_true')
    ap.add_argument('--no-echo', action='store_true')
    ap.add_argument('--nats-server', default=shutil.which('nats-server') or '/usr/sbin/nats-server')
    a = ap.parse_args()
    windows = [int(w) for w in a.windows.split(',')]
    if not 3 <= a.rate <= 20000 or not 1 <= a.duration <= 60 or not 1 <= a.rounds <= 5 \
            or not all(0 <= w <= 10000 for w in windows):
        ap.error('--rate 3..20000, --duration 1..60, --rounds 1..5, --windows 0..10000 each')
    for _ in range(a.rounds):
        for w in windows:
            run(a, w)


if __name__ == '__main__':
    main()
