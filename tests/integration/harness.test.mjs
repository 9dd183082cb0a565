// The harness itself: a cluster of 2 instances + Redis + HAProxy comes up,
// every instance is healthy and ready, HAProxy spreads WebSocket connections
// over both, and stop() leaves no process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startCluster, connect, httpGet, pidAlive, waitFor } from '../lib/cluster.mjs';

test('cluster of 2 instances behind HAProxy comes up and goes away cleanly', async (t) => {
  const cluster = await startCluster({ instances: 2, redis: true, haproxy: true });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await cluster.stop({ failed: true });
  });

  await t.test('every instance answers /healthz and /readyz with 200', async () => {
    assert.equal(cluster.instances.length, 2);
    for (const inst of cluster.instances) {
      for (const endpoint of ['/healthz', '/readyz']) {
        const res = await httpGet(`${inst.httpUrl}${endpoint}`);
        assert.equal(res.status, 200, `${inst.id} ${endpoint}: HTTP ${res.status} ${res.body}`);
      }
    }
  });

  await t.test('Redis answers through redisCli', async () => {
    assert.equal(await cluster.redisCli('PING'), 'PONG');
  });

  await t.test('a direct connection reports the instance it reached', async () => {
    for (const inst of cluster.instances) {
      const client = await connect(inst.url);
      assert.equal(client.instance, inst.id);
      await client.close();
    }
  });

  await t.test('6 connections through HAProxy land on both instances', async () => {
    const clients = [];
    try {
      for (let i = 0; i < 6; i++) clients.push(await connect(cluster.url));
      const perInstance = {};
      for (const c of clients) perInstance[c.instance] = (perInstance[c.instance] ?? 0) + 1;
      assert.deepEqual(Object.keys(perInstance).sort(), cluster.instances.map((i) => i.id).sort(),
        `connections per instance: ${JSON.stringify(perInstance)}`);
    } finally {
      const closes = await Promise.all(clients.map((c) => c.close()));
      for (const info of closes) assert.equal(info.code, 1000);
    }
  });

  await t.test('stop() kills every process and removes the temp dir', async () => {
    const pids = cluster.pids();
    assert.ok(pids.length >= 5, `expected nats, redis, 2 instances and haproxy, got pids ${pids}`);
    const result = await cluster.stop({ failed: false });
    stopped = true;
    assert.deepEqual(result.problems, []);
    // stop() waits for every exit, so this only polls for the kernel's bookkeeping.
    await waitFor(() => pids.every((pid) => !pidAlive(pid)),
      { timeoutMs: 2000, what: `pids ${pids.join(', ')} to be gone` });
    assert.equal(fs.existsSync(cluster.dir), false, `${cluster.dir} still exists`);
  });
});
