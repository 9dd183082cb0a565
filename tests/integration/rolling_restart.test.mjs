// A rolling restart under load (issue 5): SIGTERM each of three instances in
// turn, and start it again, while 9 browser-library clients in 3 rooms keep
// broadcasting through HAProxy. Every signal acknowledged reaches every other
// peer of its room exactly once and in order, no peer ever leaves or changes
// its id, and the stream holds no leave. The resume secret is not configured:
// the instances share the one they keep in NATS, restarted ones included.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { execFile } from 'node:child_process';
import { startCluster, waitFor, sleep } from '../lib/cluster.mjs';
import { roomHistory } from '../lib/stream.mjs';
import { SigstreamClient } from '../../web/sigstream.js';

const ROOMS = ['roll-a', 'roll-b', 'roll-c'];
const env = { SIGSTREAM_HEARTBEAT_INTERVAL: '500ms', SIGSTREAM_INSTANCE_TIMEOUT: '3000ms', SIGSTREAM_SHUTDOWN_GRACE: '8s' };

let cluster;
const peers = [];  // {room, index, client, frames, peer}

const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGSTREAM_')));
function membersInStream(room) {
  return new Promise((resolve, reject) => execFile(cluster.bin, ['state', room, '--nats-url', cluster.natsUrl, '--format', 'json'],
    { env: cleanEnv() }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(JSON.parse(stdout).members.map((m) => m.peer).sort()))));
}

// Records every frame the library receives, so that a duplicate the library
// would drop by its seq is still seen here.
function recordingWebSocket(frames) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.on('message', (data) => frames.push(JSON.parse(data.toString())));
    }
  };
}

before(async () => {
  cluster = await startCluster({ instances: 3, env });
  for (const room of ROOMS) {
    for (let index = 0; index < 3; index++) {
      const frames = [];
      const client = new SigstreamClient(cluster.url, { WebSocket: recordingWebSocket(frames), minBackoffMs: 50, maxBackoffMs: 1000 });
      await client.connect();
      const joined = await client.join(room, { index });
      peers.push({ room, index, client, frames, peer: joined.peer, sent: [], maybe: new Set() });
    }
  }
  // Everyone knows everyone before the load starts.
  for (const p of peers) {
    await waitFor(() => new Set(p.frames.flatMap((m) => (m.type === 'joined' ? m.peers.map((x) => x.peer) : m.type === 'peer-joined' ? [m.peer] : []))).size === 2,
      { what: `${p.peer} sees its room` });
  }
});

after(async () => {
  for (const p of peers) p.client.close();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

test('SIGTERM each instance in turn under load: no signal lost or doubled, no peer leaves', { timeout: 180_000 }, async () => {
  const joinedFrames = new Map(peers.map((p) => [p, p.frames.length]));
  let running = true;
  // Each peer broadcasts every 40 ms; a signal refused while reconnecting
  // (the client knows: it rejects) is not counted as sent.
  const load = peers.map(async (p) => {
    for (let n = 0; running && n < 3000; n++) {
      try {
        await p.client.signal(null, { from: p.index, n });
        p.sent.push(n);
      } catch (err) {
        if (!['disconnected', 'unavailable'].includes(err.code)) throw err;
        // On the wire when the connection closed: stored or not, the client
        // cannot know (its ack was lost). It may arrive, at most once.
        if (err.code === 'disconnected') p.maybe.add(n);
      }
      await sleep(40);
    }
  });

  await sleep(1000);
  const instances = cluster.instances.map((i) => i.id);
  for (const id of instances) {
    const exit = await cluster.stopInstance(id, 'SIGTERM', { timeoutMs: 20_000 });
    assert.deepEqual(exit, { code: 0, signal: null }, `${id} drained and exited 0`);
    await cluster.startInstance(id);
    await sleep(1000);
  }
  await sleep(1000);
  running = false;
  await Promise.all(load);

  // Every acknowledged broadcast reached both other peers of its room, once, in order.
  for (const p of peers) {
    assert.equal(p.client.peer, p.peer, 'the peer id never changed');
    assert.ok(p.sent.length > 50, `${p.peer} kept signalling (${p.sent.length})`);
    for (const q of peers.filter((x) => x.room === p.room && x !== p)) {
      await waitFor(() => q.frames.filter((m) => m.type === 'signal' && m.from === p.peer).length >= p.sent.length,
        { timeoutMs: 10_000, what: `${q.peer} receives ${p.peer}'s ${p.sent.length} signals` });
      const got = q.frames.filter((m) => m.type === 'signal' && m.from === p.peer).map((m) => m.data.n);
      assert.ok(got.every((n, i) => i === 0 || n > got[i - 1]), `${q.peer} got ${p.peer}'s signals in order, none twice`);
      assert.deepEqual(got.filter((n) => !p.maybe.has(n)), p.sent,
        `${q.peer} got every acknowledged signal of ${p.peer}, and nothing that was never sent`);
    }
    const later = p.frames.slice(joinedFrames.get(p));
    assert.deepEqual(later.filter((m) => m.type === 'peer-left' || m.type === 'peer-joined'), [], `${p.peer} saw nobody leave or join`);
    assert.ok(later.some((m) => m.type === 'joined' && m.peer === p.peer), `${p.peer} resumed at least once`);
  }
  for (const room of ROOMS) {
    // Each peer's view (joined.peers, then joins and leaves) equals the stream's membership.
    const members = await membersInStream(room);
    assert.deepEqual(members, peers.filter((p) => p.room === room).map((p) => p.peer).sort());
    for (const p of peers.filter((x) => x.room === room)) {
      const view = new Set([p.peer]);
      for (const m of p.frames) {
        if (m.type === 'joined') for (const x of m.peers) view.add(x.peer);
        if (m.type === 'peer-joined') view.add(m.peer);
        if (m.type === 'peer-left') view.delete(m.peer);
      }
      assert.deepEqual([...view].sort(), members, `${p.peer}'s view`);
    }
    const history = await roomHistory(cluster, room);
    assert.equal(history.filter((e) => e.kind === 'leave').length, 0, `no leave in ${room}`);
    assert.ok(history.filter((e) => e.kind === 'resume').length >= 3, `resumes recorded in ${room}`);
  }
});
