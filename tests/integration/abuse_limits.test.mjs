// Abuse limits (issue 6), each against a real cluster: browser origins
// outside the allow-list are refused (403), an instance holds at most
// --max-connections WebSockets (503), a room at most --max-room-peers members
// (room-full), connections that never join are closed (1008) after
// --join-timeout, and a client flooding signals is rate-limited and then
// closed (1008) while the others in its room carry on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet, sleep, waitFor } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';

const ORIGIN = 'https://app.example';
const env = {
  SIGSTREAM_ALLOWED_ORIGINS: `${ORIGIN}, https://other.example`,
  SIGSTREAM_MAX_ROOM_PEERS: '3',
  SIGSTREAM_JOIN_TIMEOUT: '1500ms',
  SIGSTREAM_SIGNAL_RATE: '20',
  SIGSTREAM_SIGNAL_BURST: '20',
};
let cluster;
before(async () => { cluster = await startCluster({ instances: 2, env }); });
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

async function metric(id, name) {
  return instanceMetric(cluster.instance(id).httpUrl, name);
}

test('origins: listed ones and non-browser clients connect; any other origin gets 403', async () => {
  const url = cluster.instance('i1').url;
  await assert.rejects(connect(url, { headers: { Origin: 'https://evil.example' } }), /403/);
  const ok = await cluster.connect(url, { headers: { Origin: ORIGIN } });
  assert.equal((await ok.request({ type: 'join', room: 'origin-ok' })).type, 'joined');
  const other = await cluster.connect(url, { headers: { Origin: 'https://other.example' } });
  assert.ok(other.isOpen);
  const noOrigin = await cluster.connect(url);
  assert.ok(noOrigin.isOpen, 'no Origin header: not a browser');
  assert.ok(await metric('i1', 'refused_upgrades_total') >= 1);
});

test('a room holds at most --max-room-peers members: the next join gets room-full', async () => {
  const room = 'full-room';
  for (let k = 0; k < 3; k++) {
    const c = await cluster.connect(cluster.instance(k % 2 ? 'i2' : 'i1').url);
    assert.equal((await c.request({ type: 'join', room })).type, 'joined');
  }
  const late = await cluster.connect(cluster.instance('i2').url);
  const reply = await late.request({ type: 'join', room });
  assert.equal(reply.code, 'room-full', JSON.stringify(reply));
  assert.ok(late.isOpen);
  assert.equal((await late.request({ type: 'join', room: 'another-room' })).type, 'joined', 'other rooms are fine');
});

test('connections that never join are closed with 1008 after --join-timeout; joined ones stay', { timeout: 60_000 }, async () => {
  const url = cluster.instance('i1').url;
  const joined = await cluster.connect(url);
  await joined.request({ type: 'join', room: 'idle-check' });
  // Many at once: every one is closed, none stays behind.
  const idle = [];
  for (let k = 0; k < 400; k++) idle.push(await cluster.connect(url));
  const t0 = Date.now();
  const codes = await Promise.all(idle.map((c) => c.closed));
  assert.ok(Date.now() - t0 >= 1000, 'not before the timeout');
  assert.deepEqual([...new Set(codes.map((c) => c.code))], [1008]);
  await sleep(500);
  assert.ok(joined.isOpen, 'a joined connection is not affected');
  await waitFor(async () => (await metric('i1', 'connections')) <= 10, { what: 'the instance let go of them' });
});

test('a signal flood is rate-limited, then closed with 1008; the rest of the room carries on', { timeout: 30_000 }, async () => {
  const room = 'flood-room';
  const flooder = await cluster.connect(cluster.instance('i1').url);
  const calm = await cluster.connect(cluster.instance('i2').url);
  const jf = await flooder.request({ type: 'join', room });
  const jc = await calm.request({ type: 'join', room });
  await flooder.next({ type: 'peer-joined', peer: jc.peer });
  // Just over the burst: the extra ones are refused, the connection stays.
  for (let n = 0; n < 30; n++) flooder.send({ type: 'signal', to: jc.peer, data: { n }, id: n });
  await waitFor(() => flooder.messages.filter((m) => m.id !== undefined && (m.type === 'ack' || m.type === 'error')).length >= 30,
    { what: 'an answer to each of the 30' });
  const first = flooder.messages.filter((m) => m.type === 'ack' || m.type === 'error');
  const limited = first.filter((m) => m.code === 'rate-limited').length;
  assert.ok(limited >= 5 && limited <= 10, `the burst (20) went through and the rest was refused (${limited} rate-limited)`);
  assert.ok(flooder.isOpen, 'a few refusals do not close the connection');
  // Going on regardless: closed with 1008.
  for (let n = 30; n < 300 && flooder.isOpen; n++) flooder.send({ type: 'signal', to: jc.peer, data: { n } });
  assert.equal((await flooder.closed).code, 1008);
  // The calm peer got exactly what was stored (the signals let through), in order.
  await sleep(500);
  const got = calm.messages.filter((m) => m.type === 'signal').map((m) => m.data.n);
  assert.ok(got.length >= 20 && got.length < 80, `${got.length} signals went through`);
  assert.ok(got.every((n, i) => i === 0 || n > got[i - 1]));
  assert.ok(await metric('i1', 'rate_limited_total', { request: 'signal' }) >= limited);
  const other = await cluster.connect(cluster.instance('i1').url);
  await other.request({ type: 'join', room });
  const ack = await other.request({ type: 'signal', to: jc.peer, data: 'still fine' });
  await calm.next({ type: 'signal', seq: ack.seq });
  const left = await calm.next({ type: 'peer-left', peer: jf.peer });
  assert.equal(left.reason, 'disconnect', 'an abusive client leaves at once, no resume grace');
  assert.ok(await metric('i1', 'policy_closes_total') >= 1);
});

test('an instance holds at most --max-connections WebSockets: more get 503', async () => {
  const inst = await cluster.startInstance('i3', { env: { SIGSTREAM_MAX_CONNECTIONS: '3' } });
  for (let k = 0; k < 3; k++) await cluster.connect(inst.url);
  await assert.rejects(connect(inst.url), /503/);
});
