// Consistency under concurrency (tests/lib/consistency_suite.mjs) with two
// I/O threads per instance (--threads 2): the sessions, rooms, the NATS loop
// and the Redis cache then run on either thread, each on its strand, so a
// missing strand shows up here as a race the default setting never has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consistencySuite } from '../lib/consistency_suite.mjs';

const cluster = consistencySuite({ env: { SIGSTREAM_THREADS: '2' } });

test('the instances ran with two I/O threads', () => {
  for (const id of ['i1', 'i2', 'i3']) assert.match(cluster().logTail(id, 500), / 2 I\/O threads;/);
});
