// Dead instances leave no ghosts (issue 5). Three instances with a short
// heartbeat timeout; 40 peers in 10 rooms spread over them, signalling.
// `kill -9` of one instance: within the timeout the survivors' peers get
// `peer-left` with reason `expired` for exactly the dead instance's peers, the
// stream holds exactly one such leave per peer (however many survivors
// noticed), the Redis cache is repaired, and every peer's view equals the
// membership folded from the stream. Then every instance dies, and the first
// one started afterwards cleans up after all of them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startCluster, connect, waitFor, sleep } from '../lib/cluster.mjs';
import { roomHistory } from '../lib/stream.mjs';

const TIMEOUT_MS = 3000;
const env = { SIGSTREAM_HEARTBEAT_INTERVAL: '500ms', SIGSTREAM_INSTANCE_TIMEOUT: `${TIMEOUT_MS}ms` };
const ROOMS = Array.from({ length: 10 }, (_, r) => `expiry-${r}`);
const cacheKey = (room) => `sigstream:SIGSTREAM:room:${Buffer.from(room, 'utf8').toString('base64url')}`;

let cluster;
const peers = [];  // {room, client, instance, peer}

const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGSTREAM_')));
function membersInStream(room) {
  return new Promise((resolve, reject) => execFile(cluster.bin, ['state', room, '--nats-url', cluster.natsUrl, '--format', 'json'],
    { env: cleanEnv() }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(JSON.parse(stdout).members.map((m) => m.peer).sort()))));
}

// A peer's view of its room: the peers of `joined`, then joins and leaves.
function view(p) {
  const seen = new Set();
  for (const m of p.client.messages) {
    if (m.type === 'joined') for (const x of m.peers) seen.add(x.peer);
    if (m.type === 'peer-joined') seen.add(m.peer);
    if (m.type === 'peer-left') seen.delete(m.peer);
  }
  seen.add(p.peer);
  return [...seen].sort();
}

before(async () => {
  cluster = await startCluster({ instances: 3, env });
  const instances = cluster.instances;
  for (const [r, room] of ROOMS.entries()) {
    for (let k = 0; k < 4; k++) {
      const instance = instances[(r + k) % 3];
      const client = await connect(instance.url);
      const joined = await client.request({ type: 'join', room, meta: { k } });
      assert.equal(joined.type, 'joined');
      peers.push({ room, client, instance: instance.id, peer: joined.peer });
    }
  }
});

after(async () => {
  for (const p of peers) p.client.ws.terminate();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

test('kill -9 of one instance: its peers expire exactly once, within the timeout, and nothing else changes', { timeout: 60_000 }, async () => {
  const survivors = peers.filter((p) => p.instance !== 'i2');
  const dead = peers.filter((p) => p.instance === 'i2');
  assert.ok(dead.length >= 10 && survivors.length >= 20);
  // Survivors keep signalling through the kill (bounded: stops with the test).
  let signalling = true;
  const traffic = (async () => {
    for (let n = 0; signalling && n < 400; n++) {
      const p = survivors[n % survivors.length];
      p.client.send({ type: 'signal', data: { n } });
      await sleep(20);
    }
  })();

  await sleep(1000);
  const killedAt = Date.now();
  assert.equal((await cluster.stopInstance('i2', 'SIGKILL')).signal, 'SIGKILL');

  // Every survivor hears `expired` for exactly the dead peers of its room.
  for (const p of survivors) {
    const expected = dead.filter((d) => d.room === p.room).map((d) => d.peer).sort();
    await waitFor(() => p.client.messages.filter((m) => m.type === 'peer-left' && m.reason === 'expired').length >= expected.length,
      { timeoutMs: TIMEOUT_MS + 8000, what: `${p.peer} told of ${expected.length} expired peers` });
    const told = p.client.messages.filter((m) => m.type === 'peer-left').map((m) => `${m.peer}:${m.reason}`).sort();
    assert.deepEqual(told, expected.map((d) => `${d}:expired`));
  }
  const tookMs = Date.now() - killedAt;
  assert.ok(tookMs < TIMEOUT_MS + 8000, `expired after ${tookMs} ms`);
  signalling = false;
  await traffic;

  for (const room of ROOMS) {
    const events = await roomHistory(cluster, room);
    const leaves = events.filter((e) => e.kind === 'leave');
    const deadHere = dead.filter((d) => d.room === room).map((d) => d.peer).sort();
    // One leave per dead peer, however many survivors noticed; none for the living.
    assert.deepEqual(leaves.map((e) => `${e.peer}:${e.reason}`).sort(), deadHere.map((d) => `${d}:expired`));
    assert.ok(leaves.every((e) => e.instance !== 'i2'), 'recorded by a survivor');
    // The stream's membership, each survivor's view, and the cache agree.
    const members = await membersInStream(room);
    assert.deepEqual(members, survivors.filter((p) => p.room === room).map((p) => p.peer).sort());
    for (const p of survivors.filter((s) => s.room === room)) assert.deepEqual(view(p), members, `${p.peer}'s view`);
    const lastLeave = Math.max(...leaves.map((e) => e.seq));
    await waitFor(async () => Number(await cluster.redisCli('HGET', cacheKey(room), 'seq')) >= lastLeave,
      { what: `the cache of ${room} repaired past seq ${lastLeave}` });
  }
  const log = await cluster.logTail('i1', 400) + await cluster.logTail('i3', 400);
  assert.match(log, /instance i2 has not sent a heartbeat for 3000 ms: taking it for dead/);
  assert.match(log, /instance i2 is not alive: recording the leave \(expired\) of its \d+ peers/);
});

test('a clean stop (SIGTERM): the survivors expire nobody; peers that did not resume leave once, recorded by the stopping instance', { timeout: 60_000 }, async () => {
  // These test clients never resume (resume.test.mjs covers the ones that
  // do): the drain waits --shutdown-grace (2 s here) for them, then records
  // their leave itself, so that nobody has to wait for its heartbeat to age.
  const leaving = peers.filter((p) => p.instance === 'i3');
  assert.equal((await cluster.stopInstance('i3', 'SIGTERM')).code, 0);
  await sleep(TIMEOUT_MS + 2000);  // past the timeout: nobody may expire them now
  for (const room of new Set(leaving.map((p) => p.room))) {
    const leaves = (await roomHistory(cluster, room)).filter((e) => e.kind === 'leave' && leaving.some((p) => p.peer === e.peer));
    assert.deepEqual(leaves.map((e) => e.reason), leaves.map(() => 'expired'));
    assert.deepEqual(leaves.map((e) => e.instance), leaves.map(() => 'i3'), 'recorded by the stopping instance');
    assert.equal(leaves.length, leaving.filter((p) => p.room === room).length);
  }
});

test('when every instance has died, the first one started again expires the peers they held', { timeout: 60_000 }, async () => {
  const held = peers.filter((p) => p.instance === 'i1');
  assert.equal((await cluster.stopInstance('i1', 'SIGKILL')).signal, 'SIGKILL');
  for (const p of held) await waitFor(() => p.client.closeInfo, { what: 'connection gone' });
  const fresh = await cluster.startInstance(undefined, { env });
  await waitFor(async () => {
    for (const room of ROOMS) if ((await membersInStream(room)).length > 0) return false;
    return true;
  }, { timeoutMs: TIMEOUT_MS + 10_000, what: 'every room empty' });
  for (const p of held) {
    const leaves = (await roomHistory(cluster, p.room)).filter((e) => e.kind === 'leave' && e.peer === p.peer);
    assert.deepEqual(leaves.map((e) => [e.reason, e.instance]), [['expired', fresh.id]]);
  }
});

test('an instance killed and restarted at once under its id expires the peers its earlier run left behind', { timeout: 60_000 }, async () => {
  const [instance] = cluster.instances.filter((i) => i.alive);
  const room = 'expiry-restart';
  const ghosts = [];
  for (let k = 0; k < 3; k++) {
    const client = await connect(instance.url);
    const joined = await client.request({ type: 'join', room });
    ghosts.push({ client, peer: joined.peer });
  }
  assert.equal((await cluster.stopInstance(instance.id, 'SIGKILL')).signal, 'SIGKILL');
  await cluster.startInstance(instance.id, { env });  // its heartbeat goes on: nobody else will expire them
  await waitFor(async () => (await membersInStream(room)).length === 0,
    { timeoutMs: TIMEOUT_MS + 10_000, what: 'the earlier run\'s peers expired' });
  const leaves = (await roomHistory(cluster, room)).filter((e) => e.kind === 'leave');
  assert.deepEqual(leaves.map((e) => `${e.peer}:${e.reason}:${e.instance}`).sort(),
    ghosts.map((g) => `${g.peer}:expired:${instance.id}`).sort());
  for (const g of ghosts) g.client.ws.terminate();
});
