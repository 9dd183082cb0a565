// An operator raises the replicas of a running stream (`nats stream edit
// SIGSTREAM --replicas 3`) that sigstream created with one. A replicated
// stream's direct gets may be answered by a replica that lags behind
// (docs/operations.md, "A NATS cluster"), so reads must then go through the
// JetStream API, to the leader. The instances read the stream's
// configuration again every --stream-check-interval and move their reads
// without a restart: a room rebuilt afterwards is read on a worker, not by
// short reads (direct gets), and still sees every member.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startCluster, connect, waitFor } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';
import { natsRequest } from '../lib/stream.mjs';

const T = 15_000;

test('raising a running stream\'s replicas moves the instances\' reads to its leader without a restart', async (t) => {
  // No Redis: a room's first join on the second instance must read the
  // room's events from the stream, which shows how it reads them.
  const cluster = await startCluster({
    instances: 2, natsNodes: 3, haproxy: false, redis: false, t,
    env: { SIGSTREAM_STREAM_REPLICAS: '1', SIGSTREAM_STREAM_CHECK_INTERVAL: '500ms' },
  });
  const [i1, i2] = cluster.instances;
  const clients = [];
  t.after(() => { for (const c of clients) c.ws.terminate(); });

  // A member on i1, then one on i2: i2 rebuilds the room from the stream.
  // Returns how many short reads that took on i2, and the second `joined`.
  // While nats-server moves the stream to three replicas, appends are
  // refused for a moment (`unavailable`): a join is sent again, as the
  // client library does.
  const join = async (url, room) => {
    const client = await connect(url);
    clients.push(client);
    let answer;
    await waitFor(async () => {
      answer = await client.request({ type: 'join', room }, T);
      return answer.type === 'joined' || answer.code !== 'unavailable';
    }, { timeoutMs: T, intervalMs: 250, what: `a join of ${room} on ${url}` });
    assert.equal(answer.type, 'joined', JSON.stringify(answer));
    return answer;
  };
  const joinOnBoth = async (room) => {
    const a = await join(i1.url, room);
    const before = await instanceMetric(i2.httpUrl, 'short_reads_total');
    const b = await join(i2.url, room);
    assert.deepEqual(b.peers.map((p) => p.peer), [a.peer], `${room}: the second member sees the first`);
    return (await instanceMetric(i2.httpUrl, 'short_reads_total')) - before;
  };

  assert.equal(await instanceMetric(i2.httpUrl, 'stream_replicas'), 1);
  assert.ok(await joinOnBoth('replicas-before') > 0, 'one replica: the rebuild reads by direct gets');

  const port = [...cluster.natsNodes.values()][0].port;
  const info = await natsRequest(port, '$JS.API.STREAM.INFO.SIGSTREAM', {});
  assert.equal(info.error, undefined, JSON.stringify(info.error));
  assert.equal(info.config.num_replicas, 1);
  const updated = await natsRequest(port, '$JS.API.STREAM.UPDATE.SIGSTREAM', { ...info.config, num_replicas: 3 },
    { timeoutMs: 10_000 });
  assert.equal(updated.error, undefined, `stream update: ${JSON.stringify(updated.error)}`);

  await waitFor(async () => (await cluster.streamPlacement('SIGSTREAM'))?.copies.length === 2,
    { timeoutMs: 20_000, what: 'the stream on three nodes' });
  for (const inst of [i1, i2]) {
    await waitFor(async () => (await instanceMetric(inst.httpUrl, 'stream_replicas')) === 3,
      { timeoutMs: 10_000, what: `${inst.id} to read the stream's new replica count` });
    assert.match(fs.readFileSync(cluster.instance(inst.id).logFile, 'utf8'),
      /stream SIGSTREAM now keeps 3 replicas, .*: newest messages and rooms' short reads go through the JetStream API/);
  }
  assert.equal(await joinOnBoth('replicas-after'), 0, 'three replicas: the rebuild reads through the leader');

  // Reading the configuration more often than every 100 ms would only load
  // the JetStream API: refused at start-up (exit 2) with the reason.
  const run = spawnSync(cluster.bin, ['serve', '--stream-check-interval', '50ms'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /--stream-check-interval must be at least 100ms/);
});
