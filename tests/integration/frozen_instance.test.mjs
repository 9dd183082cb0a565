// An instance that stalls (SIGSTOP: a VM pause, a debugger, a swap storm)
// for longer than the instance timeout while NATS is up is taken for dead:
// the other instance expires its peers. When it resumes, it must not go on
// as if those peers were still in the room: it closes their connections
// with 1001, so clients reconnect and join afresh, and it serves new
// clients as before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet, waitFor, sleep } from '../lib/cluster.mjs';

const env = { SIGSTREAM_HEARTBEAT_INTERVAL: '400ms', SIGSTREAM_INSTANCE_TIMEOUT: '2s' };
let cluster;
const clients = [];

before(async () => { cluster = await startCluster({ instances: 2, env }); });
after(async () => {
  for (const c of clients) c.ws.terminate();
  try { process.kill(cluster?.instance('i2').pid, 'SIGCONT'); } catch { /* not stopped */ }
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

test('a stalled instance\'s peers expire; when it resumes it closes their connections with 1001', { timeout: 60_000 }, async () => {
  const [i1, i2] = cluster.instances;
  const a = await connect(i1.url);
  const b = await connect(i2.url);
  clients.push(a, b);
  const joinedA = await a.request({ type: 'join', room: 'frozen' });
  assert.equal(joinedA.type, 'joined');
  const joinedB = await b.request({ type: 'join', room: 'frozen' });
  await a.next('peer-joined');
  await sleep(2500);  // both instances have judged each other alive for a full timeout

  process.kill(i2.pid, 'SIGSTOP');
  const left = await a.next((m) => m.type === 'peer-left', 15_000);
  assert.deepEqual([left.peer, left.reason], [joinedB.peer, 'expired']);
  process.kill(i2.pid, 'SIGCONT');

  const closed = await Promise.race([b.closed, sleep(10_000).then(() => null)]);
  assert.ok(closed, 'the expired peer\'s connection was closed');
  assert.equal(closed.code, 1001);
  assert.match(closed.reason, /left the room \(expired\)/);
  assert.ok(!b.messages.some((m) => m.type === 'peer-left'), 'b was not told of its own leave as someone else\'s');

  // The instance carries on: ready, and a new client there joins and meets a.
  await waitFor(async () => (await httpGet(`${i2.httpUrl}/readyz`)).status === 200, { what: 'i2 ready' });
  const c = await connect(i2.url);
  clients.push(c);
  const joinedC = await c.request({ type: 'join', room: 'frozen' });
  assert.equal(joinedC.type, 'joined');
  assert.deepEqual(joinedC.peers.map((p) => p.peer), [joinedA.peer]);
  await a.next((m) => m.type === 'peer-joined' && m.peer === joinedC.peer);
  assert.match(await cluster.logTail('i2', 200), /recorded as left \(expired\) by instance i1; closing its connection/);
});
