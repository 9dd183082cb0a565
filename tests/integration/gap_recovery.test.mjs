// The live feed is core NATS and may drop messages. With every 7th live
// message dropped on purpose, rooms must find each gap (or the missing echo
// of their own append), catch up from the stream, and still deliver to each
// peer exactly its share of the stream, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet, sleep } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';
import { roomHistory, expectedSeqs, receivedSeqs, assertReceivedShare } from '../lib/stream.mjs';

let cluster;
let lateCluster;
before(async () => {
  cluster = await startCluster({ instances: 2, haproxy: false, env: { SIGSTREAM_FAULT_DROP_LIVE_EVERY: '7' } });
  lateCluster = await startCluster({ instances: 2, haproxy: false, env: { SIGSTREAM_FAULT_DELAY_LIVE_EVERY: '5' } });
});
after(async () => {
  const failed = process.exitCode !== undefined && process.exitCode !== 0;
  await cluster?.stop({ failed });
  await lateCluster?.stop({ failed });
});

async function metric(id, name, on = cluster) {
  return instanceMetric(on.instance(id).httpUrl, name);
}

test('every peer receives exactly its share of the stream although the live feed loses messages', async () => {
  const room = 'lossy';
  const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => connect(cluster.instance(i % 2 ? 'i2' : 'i1').url)));
  const joined = [];
  for (const c of clients.slice(0, 4)) joined.push(await c.request({ type: 'join', room }, 10_000));
  for (let round = 0; round < 30; round++) {
    const i = round % 4;
    const to = round % 3 === 0 ? undefined : joined[(i + 1) % 4].peer;
    const ack = await clients[i].request(to ? { type: 'signal', to, data: { round } } : { type: 'signal', data: { round } }, 10_000);
    assert.equal(ack.type, 'ack');
    if (round === 10) joined.push(await clients[4].request({ type: 'join', room }, 10_000));
    if (round === 20) assert.equal((await clients[4].request({ type: 'leave' }, 10_000)).type, 'ack');
  }
  const events = await roomHistory(cluster, room);
  // Wait (bounded) until every peer has everything it should have.
  const deadline = Date.now() + 15_000;
  for (let i = 0; i < clients.length; i++) {
    const leftByRequest = i === 4;
    const want = expectedSeqs(events, joined[i]);
    while (!leftByRequest && receivedSeqs(clients[i]).length < want.length && Date.now() < deadline) await sleep(50);
    assertReceivedShare(assert, clients[i], events, joined[i], { leftByRequest, label: `peer ${i}` });
  }
  const dropped = await metric('i1', 'live_dropped_by_fault_injection_total') + await metric('i2', 'live_dropped_by_fault_injection_total');
  const catchUps = await metric('i1', 'catch_ups_total') + await metric('i2', 'catch_ups_total');
  assert.ok(dropped > 0, 'the fault injection dropped live messages');
  assert.ok(catchUps > 0, 'and the rooms caught up from the stream');
  for (const c of clients) c.close();
});

test('a live feed that arrives out of order is put back in order without reading the stream', async () => {
  const room = 'late';
  const clients = await Promise.all(Array.from({ length: 4 }, (_, i) => connect(lateCluster.instance(i % 2 ? 'i2' : 'i1').url)));
  const joined = [];
  for (const c of clients) joined.push(await c.request({ type: 'join', room }, 10_000));
  // Bursts, so that a held message is overtaken by the next ones.
  await Promise.all(clients.map(async (c, i) => {
    for (let k = 0; k < 25; k++) c.send({ type: 'signal', data: { i, k } });
  }));
  const events = await roomHistory(lateCluster, room);
  const deadline = Date.now() + 15_000;
  for (let i = 0; i < clients.length; i++) {
    const want = expectedSeqs(events, joined[i]);
    while (receivedSeqs(clients[i]).length < want.length && Date.now() < deadline) await sleep(50);
  }
  const finalEvents = await roomHistory(lateCluster, room);
  for (let i = 0; i < clients.length; i++) assertReceivedShare(assert, clients[i], finalEvents, joined[i], { label: `peer ${i}` });
  const catchUps = await metric('i1', 'catch_ups_total', lateCluster) + await metric('i2', 'catch_ups_total', lateCluster);
  assert.equal(catchUps, 0, 'late messages were waited for, not read again from the stream');
  for (const c of clients) c.close();
});
