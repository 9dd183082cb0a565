#!/usr/bin/env python3
"""Summarizes the signal traces that `sigstream-bench --trace FILE` writes.

For each signal step: how many signals, p50 / p90 / p99 from send to
receipt, the share over 2 ms and how many took over 5 ms; then the same
step cut into seconds by send time: in how many of them the p99 was 2 ms
or more, and 5 ms or more. The seconds are what the overload step's
"back under 5 ms" looks at, and they show whether a step's tail comes
from a few stalls (a handful of bad seconds) or from every second alike.

  --episodes MS  also list the slow episodes of each step: runs of signals
                 over MS, a new episode after 50 ms without one
  --steps LIST   only these steps (comma-separated numbers, from 1)

Usage: tools/bench/probes/trace_summary.py [--episodes 3] TRACE...
A trace line is `S step n room sender_instance target_instance sent_ns` or
`R step n received_ns` (CLOCK_MONOTONIC, from the bench's start).
"""
import argparse
import collections


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def read_trace(path):
    """Returns {step: [(sent_ns, latency_ms)]} for every signal received."""
    sent = {}
    steps = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            if line.startswith('#'):
                continue
            fields = line.split()
            if not fields:
                continue
            if fields[0] == 'S':
                sent[(fields[1], fields[2])] = int(fields[-1])
            elif fields[0] == 'R':
                key = (fields[1], fields[2])
                if key in sent:
                    at = sent[key]
                    steps[int(fields[1])].append((at, (int(fields[3]) - at) / 1e6))
    return steps


def episodes(signals, threshold_ms, gap_ns=50_000_000):
    start = min(at for at, _ in signals)
    found = []
    for at, latency in sorted(s for s in signals if s[1] > threshold_ms):
        if found and at - found[-1][1] < gap_ns:
            found[-1][1] = at
            found[-1][2] += 1
            found[-1][3] = max(found[-1][3], latency)
        else:
            found.append([at, at, 1, latency])
    return [((a - start) / 1e9, n, worst) for a, _, n, worst in found]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('traces', nargs='+')
    parser.add_argument('--episodes', type=float, metavar='MS')
    parser.add_argument('--steps', type=lambda text: {int(x) for x in text.split(',')})
    args = parser.parse_args()
    for path in args.traces:
        print(path)
        for step, signals in sorted(read_trace(path).items()):
            if args.steps and step not in args.steps:
                continue
            latencies = sorted(latency for _, latency in signals)
            n = len(latencies)
            start = min(at for at, _ in signals)
            seconds = collections.defaultdict(list)
            for at, latency in signals:
                seconds[(at - start) // 1_000_000_000].append(latency)
            second_p99 = [percentile(sorted(v), .99) for _, v in sorted(seconds.items())]
            print('  step %d: %d signals, p50 %.2f p90 %.2f p99 %.2f ms, over 2 ms %.1f %%, over 5 ms %d; '
                  'seconds with p99 >= 2 ms: %d of %d, >= 5 ms: %d' %
                  (step, n, percentile(latencies, .5), percentile(latencies, .9), percentile(latencies, .99),
                   100 * sum(x > 2 for x in latencies) / n, sum(x > 5 for x in latencies),
                   sum(x >= 2 for x in second_p99), len(second_p99), sum(x >= 5 for x in second_p99)))
            if args.episodes:
                found = episodes(signals, args.episodes)
                print('    %d episodes over %.1f ms' % (len(found), args.episodes))
                for at, count, worst in found:
                    print('    %8.3f s  %3d signals  worst %.1f ms' % (at, count, worst))


if __name__ == '__main__':
    main()
