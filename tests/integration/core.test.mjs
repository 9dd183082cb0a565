// The core promise: peers on different instances see one room. Joins,
// targeted and broadcast signals, acks, leave and disconnect, through real
// NATS JetStream, Redis, HAProxy and two instances.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet } from '../lib/cluster.mjs';
import { instanceMetric, metricValue, parseMetrics } from '../lib/metrics.mjs';

let cluster;
before(async () => { cluster = await startCluster({ instances: 2 }); });
after(async () => { await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 }); });

// Connects through HAProxy until one client sits on each wanted instance.
async function clientOn(instanceId) {
  return connect(cluster.instance(instanceId).url);
}

test('health and readiness answer on every instance', async () => {
  for (const inst of cluster.instances) {
    assert.equal((await httpGet(`${inst.httpUrl}/healthz`)).status, 200);
    assert.equal((await httpGet(`${inst.httpUrl}/readyz`)).status, 200);
  }
  assert.equal((await httpGet(`${cluster.httpUrl}/readyz`)).status, 200);
});

test('through HAProxy the public gets clients and health checks, not /metrics or the admin paths', async () => {
  for (const p of ['/healthz', '/readyz', '/', '/sigstream.js']) assert.equal((await httpGet(`${cluster.httpUrl}${p}`)).status, 200, p);
  for (const p of ['/metrics', '/admin', '/admin/', '/admin/rooms', '/admin/timeline.js'])
    assert.equal((await httpGet(`${cluster.httpUrl}${p}`)).status, 404, p);
  // On the instance's own port (no separate admin address here) they answer.
  assert.equal((await httpGet(`${cluster.instance('i1').httpUrl}/metrics`)).status, 200);
  assert.equal((await httpGet(`${cluster.instance('i1').httpUrl}/admin/`)).status, 200);
});

// Runs before any other test touches a room: an instance keeps following a
// room for a while after its last peer left, and would count that traffic.
test('an instance follows only the rooms its own peers are in', async () => {
  const metric = (inst, name) => instanceMetric(cluster.instance(inst).httpUrl, name);
  const before2 = await metric('i2', 'live_messages_received_total');
  const a = await clientOn('i1');
  const b = await clientOn('i1');
  const ja = await a.request({ type: 'join', room: 'core-only-i1' });
  await b.request({ type: 'join', room: 'core-only-i1' });
  for (let k = 0; k < 50; k++) b.send({ type: 'signal', to: ja.peer, data: k });
  for (let k = 0; k < 50; k++) await a.next('signal');
  assert.equal(await metric('i2', 'live_messages_received_total'), before2,
    'instance i2 has no peer in the room and received none of its traffic');
  a.close(); b.close();
});

test('/metrics follows the Prometheus conventions: events by kind, errors by code, latencies in seconds, build and process info', async () => {
  const scrape = async (inst) => (await httpGet(`${cluster.instance(inst).httpUrl}/metrics`)).body;
  const a = await clientOn('i1');
  const b = await clientOn('i2');
  const ja = await a.request({ type: 'join', room: 'core-metrics' });
  await b.request({ type: 'join', room: 'core-metrics' });
  await a.next('peer-joined');
  for (let k = 0; k < 5; k++) assert.equal((await b.request({ type: 'signal', to: ja.peer, data: k })).type, 'ack');
  for (let k = 0; k < 5; k++) await a.next('signal');
  assert.equal((await b.request({ type: 'signal', to: 'nobody', data: 1 })).code, 'unknown-peer');
  const text1 = await scrape('i1');
  const text2 = await scrape('i2');
  const i1 = (name, labels) => metricValue(text1, `sigstream_${name}`, labels);
  const i2 = (name, labels) => metricValue(text2, `sigstream_${name}`, labels);
  assert.ok(i2('events_appended_total', { kind: 'signal' }) >= 5);
  assert.ok(i1('events_appended_total', { kind: 'join' }) >= 1);
  assert.ok(i1('events_delivered_total', { kind: 'signal' }) >= 5);
  assert.ok(i2('client_errors_total', { code: 'unknown-peer' }) >= 1);
  assert.ok(i1('delivery_latency_seconds_count') >= 5);
  assert.equal(i1('delivery_latency_seconds_bucket', { le: '+Inf' }), i1('delivery_latency_seconds_count'));
  assert.ok(i1('delivery_latency_seconds_sum') < i1('delivery_latency_seconds_count'), 'seconds, not milliseconds');
  assert.ok(i1('join_latency_seconds_count') >= 1);
  assert.ok(i1('join_latency_seconds_bucket', { le: '10' }) >= 1);
  // Every room joined on i1 was rebuilt there first.
  assert.ok(i1('room_sync_seconds_count') >= 1);
  // On a lone nats-server the first join went out with the rebuild's reads.
  assert.ok(i1('joins_before_rebuild_total') >= 1);
  assert.equal(i1('room_sync_seconds_bucket', { le: '+Inf' }), i1('room_sync_seconds_count'));
  assert.equal(i1('nats_connected'), 1);
  assert.equal(i1('redis_connected'), 1);
  assert.equal(i1('build_info', { instance_id: 'i1' }), 1);
  assert.ok(metricValue(text1, 'process_resident_memory_bytes') > 1e6);
  assert.ok(metricValue(text1, 'process_open_fds') >= 5);
  // In clock ticks (10 ms): a quiet instance may not have used one yet.
  assert.ok(metricValue(text1, 'process_cpu_seconds_total') >= 0);
  const started = metricValue(text1, 'process_start_time_seconds');
  assert.ok(started > Date.now() / 1000 - 3600 && started <= Date.now() / 1000 + 1, `start time ${started}`);
  // No `instance` label (Prometheus's own target label), no test hook, and
  // every sample belongs to a family with HELP and TYPE.
  for (const sample of parseMetrics(text1)) {
    assert.equal(sample.labels.instance, undefined, `${sample.name} has an instance label`);
    const family = sample.name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(text1.includes(`# TYPE ${family} `) || text1.includes(`# TYPE ${sample.name} `), `${sample.name}: no TYPE`);
  }
  assert.ok(!text1.includes('fault_injection'), 'the fault-injection counter is exported only with a --fault-* flag');
  a.close(); b.close();
});

test('peers on different instances see each other, and signals cross instances', async () => {
  const a = await clientOn('i1');
  const b = await clientOn('i2');
  assert.equal(a.instance, 'i1');
  assert.equal(b.instance, 'i2');
  const joinedA = await a.request({ type: 'join', room: 'core-1', meta: { name: 'ana' } });
  assert.equal(joinedA.type, 'joined');
  assert.equal(joinedA.room, 'core-1');
  assert.deepEqual(joinedA.peers, []);
  assert.ok(joinedA.seq > 0);

  const joinedB = await b.request({ type: 'join', room: 'core-1', meta: { name: 'bo' } });
  assert.deepEqual(joinedB.peers, [{ peer: joinedA.peer, meta: { name: 'ana' }, instance: 'i1' }]);
  assert.equal(joinedB.instance, 'i2', 'joined names the instance the peer is connected to');
  assert.ok(joinedB.seq > joinedA.seq);
  assert.notEqual(joinedA.peer, joinedB.peer);

  const seen = await a.next('peer-joined');
  assert.deepEqual(seen, { type: 'peer-joined', peer: joinedB.peer, meta: { name: 'bo' }, instance: 'i2', seq: joinedB.seq });

  // Targeted signal with an ack; the ack's seq is the event's place in the room.
  const offer = { sdp: { type: 'offer', sdp: 'v=0\r\n' } };
  const ack = await b.request({ type: 'signal', to: joinedA.peer, data: offer });
  assert.equal(ack.type, 'ack');
  const got = await a.next('signal');
  assert.deepEqual(got, { type: 'signal', from: joinedB.peer, to: joinedA.peer, data: offer, seq: ack.seq });

  // Broadcast: no `to`, the sender does not hear itself.
  const ack2 = await a.request({ type: 'signal', data: { candidate: 'c1' } });
  const got2 = await b.next('signal');
  assert.deepEqual(got2, { type: 'signal', from: joinedA.peer, data: { candidate: 'c1' }, seq: ack2.seq });
  await assert.rejects(a.next('signal', 300));

  // Leave with an ack; the other side hears it; the connection may join again.
  const leaveAck = await b.request({ type: 'leave' });
  assert.equal(leaveAck.type, 'ack');
  const left = await a.next('peer-left');
  assert.deepEqual(left, { type: 'peer-left', peer: joinedB.peer, reason: 'leave', seq: leaveAck.seq });
  const rejoined = await b.request({ type: 'join', room: 'core-1' });
  assert.equal(rejoined.type, 'joined');
  assert.notEqual(rejoined.peer, joinedB.peer, 'a peer id is never reused');
  assert.deepEqual(rejoined.peers.map((p) => p.peer), [joinedA.peer]);
  assert.deepEqual(rejoined.peers[0].meta, { name: 'ana' });

  // Disconnect: closing the socket is a leave with reason disconnect.
  b.close();
  const gone = await a.next('peer-left');
  assert.equal(gone.peer, rejoined.peer);
  assert.equal(gone.reason, 'disconnect');
  a.close();
});

test('every peer of a room sees its events in one order, wherever it is connected', async () => {
  const clients = [];
  for (let i = 0; i < 4; i++) clients.push(await clientOn(i % 2 ? 'i2' : 'i1'));
  const joined = [];
  for (const c of clients) joined.push(await c.request({ type: 'join', room: 'core-order' }));
  // Everyone broadcasts a burst; every receiver must see the same sequence.
  const perSender = 20;
  await Promise.all(clients.map(async (c, i) => {
    for (let k = 0; k < perSender; k++) c.send({ type: 'signal', data: { i, k } });
  }));
  const expected = (clients.length - 1) * perSender;
  const received = await Promise.all(clients.map(async (c) => {
    const out = [];
    while (out.length < expected) out.push(await c.next('signal', 10_000));
    return out;
  }));
  // Seqs only grow for each receiver, and the union of what all saw is one order.
  for (const list of received) {
    for (let k = 1; k < list.length; k++) assert.ok(list[k].seq > list[k - 1].seq, 'seq grows');
  }
  const bySeq = new Map();
  for (const list of received) for (const m of list) bySeq.set(m.seq, JSON.stringify([m.from, m.data]));
  assert.equal(bySeq.size, clients.length * perSender, 'every signal has one seq, the same for every receiver');
  // Each sender's own signals arrive in the order it sent them.
  for (const list of received) {
    const lastK = new Map();
    for (const m of list) {
      assert.ok((lastK.get(m.data.i) ?? -1) < m.data.k, 'per-sender order kept');
      lastK.set(m.data.i, m.data.k);
    }
  }
  for (const c of clients) c.close();
});

test('a signal addressed to one peer reaches only that peer', async () => {
  const [a, b, c] = [await clientOn('i1'), await clientOn('i2'), await clientOn('i2')];
  const ja = await a.request({ type: 'join', room: 'core-target' });
  const jb = await b.request({ type: 'join', room: 'core-target' });
  await c.request({ type: 'join', room: 'core-target' });
  // a's instance must have seen b join before b is a peer a can address.
  await a.next({ type: 'peer-joined', peer: jb.peer });
  const ack = await a.request({ type: 'signal', to: jb.peer, data: 'for-b-only' });
  assert.equal((await b.next('signal')).seq, ack.seq);
  await assert.rejects(c.next('signal', 500), /timed out/);
  // Unknown target: an error, and nothing is appended.
  const err = await a.request({ type: 'signal', to: 'p-nobody', data: 1 });
  assert.equal(err.code, 'unknown-peer');
  for (const x of [a, b, c]) x.close();
  void ja;
});

test('peers that connect through HAProxy are spread over the instances', async () => {
  const clients = [];
  for (let i = 0; i < 6; i++) clients.push(await connect(cluster.url));
  const where = new Set(clients.map((c) => c.instance));
  assert.deepEqual([...where].sort(), ['i1', 'i2']);
  for (const c of clients) c.close();
});

// This client does not resume (resume.test.mjs has those that do): after
// --shutdown-grace (2 s in tests) the draining instance records its leave.
test('an instance stopped with SIGTERM asks its clients to move, records the leave of those that did not, and exits cleanly', async () => {
  const a = await clientOn('i1');
  const b = await clientOn('i2');
  const ja = await a.request({ type: 'join', room: 'core-term' });
  const jb = await b.request({ type: 'join', room: 'core-term' });
  const exit = await cluster.stopInstance('i2', 'SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null });
  // Asked to move with a close handshake, not dropped.
  const closed = await b.closed;
  assert.equal(closed.code, 1012);
  assert.match(closed.reason, /draining/);
  const left = await a.next('peer-left', 10_000);
  assert.deepEqual([left.peer, left.reason], [jb.peer, 'expired']);
  await cluster.startInstance('i2');
  const c = await clientOn('i2');
  const jc = await c.request({ type: 'join', room: 'core-term' });
  assert.deepEqual(jc.peers.map((p) => p.peer), [ja.peer], 'the restarted instance sees no ghost');
  a.close(); c.close();
});

test('an instance killed with SIGKILL and restarted under its id clears the ghosts it left', async () => {
  const a = await clientOn('i1');
  const b = await clientOn('i2');
  const ja = await a.request({ type: 'join', room: 'core-kill' });
  const jb = await b.request({ type: 'join', room: 'core-kill' });
  await cluster.stopInstance('i2', 'SIGKILL');
  await cluster.startInstance('i2');
  const c = await clientOn('i2');
  const jc = await c.request({ type: 'join', room: 'core-kill' });
  assert.deepEqual(jc.peers.map((p) => p.peer), [ja.peer], 'the killed peer is not listed');
  const left = await a.next({ type: 'peer-left', peer: jb.peer }, 10_000);
  assert.equal(left.reason, 'expired');  // it stopped without saying goodbye
  assert.ok(left.seq < jc.seq, 'the ghost left before the new peer joined');
  a.close(); c.close();
});
