// Bounded replay (issue 5): a room's membership is snapshotted into the
// stream every --snapshot-every events (a rollup on <prefix>.room.<token>.s),
// so that an instance rebuilding the room reads at most that many events
// whatever the room's age, even with Redis empty. Here: 100 per snapshot,
// 450 signals, Redis flushed, and a new instance whose first join in the room
// must replay fewer than 2 × 100 events and still list the right peers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';
import { roomHistory } from '../lib/stream.mjs';

const EVERY = 100;
let cluster;
const clients = [];
before(async () => { cluster = await startCluster({ instances: 1, env: { SIGSTREAM_SNAPSHOT_EVERY: String(EVERY) } }); });
after(async () => {
  for (const c of clients) c.ws.terminate();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

async function metric(id, name, labels) {
  return instanceMetric(cluster.instance(id).httpUrl, name, labels);
}

test('a new instance rebuilds a long room from the stream\'s snapshot, not from its whole history', { timeout: 60_000 }, async () => {
  const room = 'bounded-replay';
  const a = await connect(cluster.instance('i1').url);
  const b = await connect(cluster.instance('i1').url);
  clients.push(a, b);
  const ja = await a.request({ type: 'join', room, meta: { n: 'a' } });
  const jb = await b.request({ type: 'join', room, meta: { n: 'b' } });
  for (let n = 0; n < 450; n++) {
    const ack = await a.request({ type: 'signal', to: jb.peer, data: { n } });
    assert.equal(ack.type, 'ack');
  }
  assert.ok(await metric('i1', 'room_snapshots_total') >= 4, 'a snapshot every 100 events of the room');

  // Redis loses everything: only the stream can help the next instance.
  await cluster.redisCli('FLUSHALL');
  await cluster.startInstance('i2');
  const c = await connect(cluster.instance('i2').url);
  clients.push(c);
  const jc = await c.request({ type: 'join', room });
  assert.equal(jc.type, 'joined');
  assert.deepEqual(jc.peers.map((p) => [p.peer, p.meta]), [[ja.peer, { n: 'a' }], [jb.peer, { n: 'b' }]]);
  const replayed = await metric('i2', 'replayed_events_total');
  assert.ok(replayed < 2 * EVERY, `replayed ${replayed} events of a room of ${452 + 1}`);
  assert.equal(await metric('i2', 'room_syncs_total', { source: 'stream' }), 1);

  // The room goes on normally, and its history shows no trace of the snapshots.
  const ack = await c.request({ type: 'signal', to: ja.peer, data: 'hi' });
  await a.next({ type: 'signal', seq: ack.seq });
  const history = await roomHistory(cluster, room);
  assert.equal(history.filter((e) => e.kind === 'unreadable').length, 0);
  assert.equal(history.filter((e) => e.kind === 'signal').length, 451);
});
