// The live feed is core NATS and may drop messages. With every 7th live
// message dropped on purpose, rooms must find each gap (or the missing echo
// of their own append), catch up from the stream, and still deliver to each
// peer exactly its share of the stream, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet, sleep } from './lib/cluster.mjs';
import { roomHistory, expectedSeqs, receivedSeqs } from './lib/stream.mjs';

let cluster;
before(async () => {
  cluster = await startCluster({ instances: 2, haproxy: false, env: { SIGSTREAM_FAULT_DROP_LIVE_EVERY: '7' } });
});
after(async () => { await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 }); });

async function metric(id, name) {
  const body = (await httpGet(`${cluster.instance(id).httpUrl}/metrics`)).body;
  return Number(body.split('\n').find((l) => l.startsWith(`sigstream_${name}{`)).split(' ').pop());
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
    const want = expectedSeqs(events, joined[i]);
    while (receivedSeqs(clients[i]).length < want.length && Date.now() < deadline) await sleep(50);
    assert.deepEqual(receivedSeqs(clients[i]), want, `peer ${i} received exactly its share, in order`);
  }
  const dropped = await metric('i1', 'live_dropped_by_fault_injection_total') + await metric('i2', 'live_dropped_by_fault_injection_total');
  const catchUps = await metric('i1', 'catch_ups_total') + await metric('i2', 'catch_ups_total');
  assert.ok(dropped > 0, 'the fault injection dropped live messages');
  assert.ok(catchUps > 0, 'and the rooms caught up from the stream');
  for (const c of clients) c.close();
});
