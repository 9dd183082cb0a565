// Resume (issue 5, docs/protocol.md `resume`): a client whose connection dropped
// comes back on any instance within the grace period with its token, gets
// its old peer id back and every event it had not received, in order and
// exactly once; the other peers see nothing. Forged, altered, expired and
// other-room tokens are refused; past the grace the peer has left (expired).
// Covered: a network blip, a takeover of a still-open connection, a drain
// (SIGTERM, 1012) with the browser client library through HAProxy, and a
// kill -9 of the instance under a peer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { startCluster, connect, waitFor, sleep } from '../lib/cluster.mjs';
import { roomHistory } from '../lib/stream.mjs';
import { SigstreamClient } from '../../web/sigstream.js';

const SECRET = 'resume-test-secret';
const GRACE_MS = 3000;
const TIMEOUT_MS = 3000;
const env = {
  SIGSTREAM_RESUME_SECRET: SECRET,
  SIGSTREAM_RESUME_GRACE: `${GRACE_MS}ms`,
  SIGSTREAM_HEARTBEAT_INTERVAL: '500ms',
  SIGSTREAM_INSTANCE_TIMEOUT: `${TIMEOUT_MS}ms`,
  SIGSTREAM_SHUTDOWN_GRACE: '8s',
};

let cluster;
const opened = [];
before(async () => { cluster = await startCluster({ instances: 3, env }); });
after(async () => {
  for (const c of opened) (c.ws ? c.ws.terminate() : c.close());
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

async function open(url) {
  const c = await connect(url);
  opened.push(c);
  return c;
}

async function joinAs(url, room, meta = {}) {
  const client = await open(url);
  const joined = await client.request({ type: 'join', room, meta });
  assert.equal(joined.type, 'joined', JSON.stringify(joined));
  assert.ok(joined.resume.startsWith('r1.'), 'joined carries a resume token');
  return { client, joined, peer: joined.peer };
}

const isEvent = (m) => ['peer-joined', 'peer-left', 'signal'].includes(m.type);
const eventsOf = (client) => client.messages.filter(isEvent);
const lastSeqOf = (p) => Math.max(p.joined.seq, ...eventsOf(p.client).map((m) => m.seq));

// A token as the service makes it (the test knows the secret).
function mint({ room, peer, joinSeq, expires }, secret = SECRET) {
  const body = `${Buffer.from(room, 'utf8').toString('base64url')}\n${peer}\n${joinSeq}\n${expires}`;
  const part = `r1.${Buffer.from(body).toString('base64url')}`;
  return `${part}.${crypto.createHmac('sha256', secret).update(part).digest('base64url')}`;
}
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

async function signal(from, to, data) {
  const ack = await from.client.request({ type: 'signal', to, data });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  return ack.seq;
}

test('a dropped peer resumes on another instance: same id, every missed event once and in order, nobody sees it go', { timeout: 60_000 }, async () => {
  const room = 'resume-blip';
  const [i1, i2, i3] = cluster.instances;
  const a = await joinAs(i1.url, room, { name: 'a' });
  const b = await joinAs(i2.url, room, { name: 'b' });
  await a.client.next({ type: 'peer-joined', peer: b.peer });
  await signal(b, a.peer, { before: 1 });
  await a.client.next({ type: 'signal', from: b.peer });
  const lastSeq = lastSeqOf(a);

  await a.client.terminate();  // the network goes away: no close frame
  await sleep(300);
  // While a is away: signals to it, a broadcast, a newcomer who signals it.
  const missed = [];
  for (let n = 0; n < 3; n++) missed.push(await signal(b, a.peer, { away: n }));
  missed.push(await signal(b, undefined, { broadcast: true }));
  const c = await joinAs(i3.url, room, { name: 'c' });
  missed.push(c.joined.seq);
  await b.client.next({ type: 'peer-joined', peer: c.peer });
  missed.push(await signal(c, a.peer, { fromC: true }));

  const back = await open(i3.url);
  const joined = await back.request({ type: 'join', room, resume: a.joined.resume, last_seq: lastSeq });
  assert.equal(joined.type, 'joined', JSON.stringify(joined));
  assert.equal(joined.peer, a.peer, 'the old peer id');
  assert.equal(joined.seq, lastSeq, 'joined.seq is the last event the client had');
  assert.deepEqual(joined.peers.map((p) => p.peer), [b.peer], 'the membership as of that event');
  assert.ok(joined.resume.startsWith('r1.'), 'a fresh token');

  await waitFor(() => eventsOf(back).length >= missed.length, { what: 'the missed events' });
  const live = await signal(b, a.peer, { live: true });
  await back.next({ type: 'signal', seq: live });
  const received = eventsOf(back).map((m) => m.seq);
  assert.deepEqual(received, [...missed, live].sort((x, y) => x - y), 'exactly the missed events, in order, then live');
  assert.ok(eventsOf(back).some((m) => m.type === 'peer-joined' && m.peer === c.peer));

  // The others saw nothing of it; the stream holds a resume, not a leave.
  for (const other of [b, c]) {
    assert.ok(!other.client.messages.some((m) => (m.type === 'peer-left' || m.type === 'peer-joined') && m.peer === a.peer),
      'no peer-left or peer-joined for the resumed peer');
  }
  const history = await roomHistory(cluster, room);
  assert.ok(!history.some((e) => e.kind === 'leave' && e.peer === a.peer), 'no leave recorded');
  assert.ok(history.some((e) => e.kind === 'resume' && e.peer === a.peer && e.instance === 'i3'), 'a resume on i3');
  const metrics = await (await fetch(`${i3.httpUrl}/metrics`)).text();
  assert.match(metrics, /^sigstream_resumes_total [1-9]/m);
  assert.match(metrics, /^sigstream_resume_replayed_events_total [1-9]/m);
});

test('a resume takes over a connection that is still open: the old one is closed, the new one carries on', { timeout: 30_000 }, async () => {
  const room = 'resume-takeover';
  const [i1, i2] = cluster.instances;
  const d = await joinAs(i1.url, room);
  const e = await joinAs(i2.url, room);
  await d.client.next({ type: 'peer-joined', peer: e.peer });
  const other = await open(i2.url);
  const joined = await other.request({ type: 'join', room, resume: d.joined.resume, last_seq: lastSeqOf(d) });
  assert.equal(joined.peer, d.peer);
  const closed = await d.client.closed;
  assert.equal(closed.code, 1001, 'the replaced connection is closed (going away)');
  const seq = await signal(e, d.peer, { to: 'the new connection' });
  await other.next({ type: 'signal', seq });
  await sleep(300);
  assert.ok(!e.client.messages.some((m) => m.type === 'peer-left' && m.peer === d.peer));
});

test('a last_seq outside [join, now] is clamped: beyond the head nothing is replayed, below the join everything since it', { timeout: 30_000 }, async () => {
  const room = 'resume-clamp';
  const [i1, i2] = cluster.instances;
  const p = await joinAs(i1.url, room);
  const q = await joinAs(i2.url, room);
  await p.client.next({ type: 'peer-joined', peer: q.peer });
  const sent = await signal(q, p.peer, { once: true });
  await p.client.next({ type: 'signal', seq: sent });

  const ahead = await open(i2.url);
  const j1 = await ahead.request({ type: 'join', room, resume: p.joined.resume, last_seq: 1e15 });
  assert.equal(j1.peer, p.peer, JSON.stringify(j1));
  assert.ok(j1.seq >= sent && j1.seq < 1e15, `joined.seq ${j1.seq} is the point just before the resume`);
  assert.deepEqual(j1.peers.map((x) => x.peer), [q.peer]);

  const behind = await open(i1.url);
  const j2 = await behind.request({ type: 'join', room, resume: j1.resume, last_seq: 0 });
  assert.equal(j2.seq, p.joined.seq, 'below the join: from the join');
  assert.deepEqual(j2.peers, [], 'nobody was there at the join');
  await waitFor(() => eventsOf(behind).length >= 2, { what: 'everything since the join' });
  assert.deepEqual(eventsOf(behind).map((m) => [m.type, m.seq]), [['peer-joined', q.joined.seq], ['signal', sent]]);
  assert.equal((await ahead.closed).code, 1001, 'the previous connection was taken over');
});

test('forged, altered, expired, other-room and unknown-peer tokens are refused; the connection carries on', { timeout: 30_000 }, async () => {
  const room = 'resume-refused';
  const [i1, i2] = cluster.instances;
  const p = await joinAs(i1.url, room);
  const claims = { room, peer: p.peer, joinSeq: p.joined.seq, expires: inAnHour() };
  const [head, sig] = [p.joined.resume.slice(0, p.joined.resume.lastIndexOf('.')), p.joined.resume.slice(p.joined.resume.lastIndexOf('.') + 1)];
  const altered = `${head.slice(0, -2)}${head.at(-2) === 'A' ? 'B' : 'A'}${head.at(-1)}.${sig}`;
  const cases = {
    forged: mint(claims, 'not-the-secret'),
    altered,
    expired: mint({ ...claims, expires: Math.floor(Date.now() / 1000) - 5 }),
    'other room': mint({ ...claims, room: 'somewhere-else' }),
    'unknown peer': mint({ ...claims, peer: 'pNotAMemberOfThisRoom' }),
    garbage: 'r1.x.y',
  };
  const c = await open(i2.url);
  for (const [what, resume] of Object.entries(cases)) {
    const reply = await c.request({ type: 'join', room, resume, last_seq: p.joined.seq });
    assert.equal(reply.type, 'error', `${what}: ${JSON.stringify(reply)}`);
    assert.equal(reply.code, 'unauthorized', what);
    assert.ok(!reply.message.includes(resume), `${what}: the token is not echoed`);
  }
  assert.ok(c.isOpen, 'still open');
  const fresh = await c.request({ type: 'join', room });
  assert.equal(fresh.type, 'joined');
  assert.notEqual(fresh.peer, p.peer);
  // The real peer was never disturbed.
  await p.client.next({ type: 'peer-joined', peer: fresh.peer });
  assert.ok(p.client.isOpen);
  const metrics = await (await fetch(`${i2.httpUrl}/metrics`)).text();
  assert.match(metrics, /^sigstream_resumes_refused_total ([6-9]|\d\d)/m);
});

test('past the grace period the peer has left (expired) and a resume gets a clear error', { timeout: 30_000 }, async () => {
  const room = 'resume-too-late';
  const [i1, i2] = cluster.instances;
  const gone = await joinAs(i1.url, room);
  const stays = await joinAs(i2.url, room);
  await gone.client.next({ type: 'peer-joined', peer: stays.peer });
  const droppedAt = Date.now();
  await gone.client.terminate();
  const left = await stays.client.next({ type: 'peer-left', peer: gone.peer }, GRACE_MS + 5000);
  const after = Date.now() - droppedAt;
  assert.equal(left.reason, 'expired');
  assert.ok(after >= GRACE_MS - 200, `not before the grace period (${after} ms)`);
  const c = await open(i2.url);
  const reply = await c.request({ type: 'join', room, resume: gone.joined.resume, last_seq: gone.joined.seq });
  assert.equal(reply.code, 'unauthorized', JSON.stringify(reply));
  assert.match(reply.message, /left the room/);
  const history = await roomHistory(cluster, room);
  assert.equal(history.filter((e) => e.kind === 'leave' && e.peer === gone.peer).length, 1, 'one leave');
});

test('a client that closes its WebSocket itself leaves at once (reason disconnect), without waiting for the grace', { timeout: 20_000 }, async () => {
  const room = 'resume-clean-close';
  const [i1, i2] = cluster.instances;
  const a = await joinAs(i1.url, room);
  const b = await joinAs(i2.url, room);
  await a.client.next({ type: 'peer-joined', peer: b.peer });
  const t0 = Date.now();
  await a.client.close(1001);
  const left = await b.client.next({ type: 'peer-left', peer: a.peer }, 2000);
  assert.equal(left.reason, 'disconnect');
  assert.ok(Date.now() - t0 < GRACE_MS);
});

// The browser client library through HAProxy, with a WebSocket that
// records every frame, so that duplicates the library would drop are seen.
function recordingWebSocket(frames) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.on('message', (data) => frames.push(JSON.parse(data.toString())));
    }
  };
}

test('SIGTERM: the drained instance\'s client resumes elsewhere by itself; no signal lost or doubled, no leave', { timeout: 60_000 }, async () => {
  const room = 'resume-drain';
  const frames = [];
  const lib = new SigstreamClient(cluster.url, { WebSocket: recordingWebSocket(frames), minBackoffMs: 50, maxBackoffMs: 500 });
  opened.push(lib);
  await lib.connect();
  const joined = await lib.join(room, { name: 'lib' });
  const target = joined.instance;
  const senderAt = cluster.instances.find((i) => i.id !== target);
  const sender = await joinAs(senderAt.url, room);
  await waitFor(() => frames.some((m) => m.type === 'peer-joined' && m.peer === sender.peer));
  const reconnected = new Promise((resolve) => lib.addEventListener('reconnected', (ev) => resolve(ev.detail), { once: true }));

  // Signals to the library's peer all through the drain.
  const sent = [];
  const traffic = (async () => {
    for (let n = 0; n < 60; n++) {
      sent.push(await signal(sender, joined.peer, { n }));
      await sleep(25);
    }
  })();
  await sleep(300);
  const stopped = cluster.stopInstance(target, 'SIGTERM', { timeoutMs: 20_000 });
  const detail = await reconnected;
  assert.equal(detail.peer, joined.peer, 'same peer id after the move');
  assert.equal(detail.resumed, true);
  assert.notEqual(detail.instance, target, 'resumed on another instance');
  await traffic;
  assert.equal((await stopped).code, 0, 'the drained instance exits 0');
  // It stopped because its one peer had moved, not at the grace deadline.
  assert.match(cluster.logTail(target, 50), /drain done: all peers moved/);
  assert.doesNotMatch(cluster.logTail(target, 50), /did not resume elsewhere/);

  await waitFor(() => frames.filter((m) => m.type === 'signal').length >= sent.length, { what: 'every signal' });
  await sleep(200);
  const got = frames.filter((m) => m.type === 'signal').map((m) => m.data.n);
  assert.deepEqual(got, sent.map((_, n) => n), 'every signal exactly once, in order');
  assert.ok(!sender.client.messages.some((m) => m.type === 'peer-left' || (m.type === 'peer-joined' && m.peer === joined.peer)));
  const history = await roomHistory(cluster, room);
  assert.equal(history.filter((e) => e.kind === 'leave').length, 0, 'no leave recorded');
  await cluster.startInstance(target);
});

test('kill -9: a peer that resumes misses nothing; one that does not expires within the timeout', { timeout: 60_000 }, async () => {
  const room = 'resume-kill';
  const [i1, i2, i3] = cluster.instances;
  const comes = await joinAs(i2.url, room);
  const stays = await joinAs(i2.url, room);
  const watcher = await joinAs(i1.url, room);
  await comes.client.next({ type: 'peer-joined', peer: watcher.peer });
  const lastSeq = lastSeqOf(comes);
  assert.equal((await cluster.stopInstance('i2', 'SIGKILL')).signal, 'SIGKILL');
  const killedAt = Date.now();
  const missed = [await signal(watcher, comes.peer, { whileDown: 1 }), await signal(watcher, comes.peer, { whileDown: 2 })];
  const back = await open(i3.url);
  const joined = await back.request({ type: 'join', room, resume: comes.joined.resume, last_seq: lastSeq });
  assert.equal(joined.peer, comes.peer, JSON.stringify(joined));
  const expired = await watcher.client.next({ type: 'peer-left', peer: stays.peer }, TIMEOUT_MS + 5000);
  assert.equal(expired.reason, 'expired');
  assert.ok(Date.now() - killedAt < TIMEOUT_MS + 4000, 'within the timeout');
  await waitFor(() => eventsOf(back).filter((m) => m.type === 'signal').length >= 2, { what: 'the signals sent while down' });
  assert.deepEqual(eventsOf(back).filter((m) => m.type === 'signal').map((m) => m.seq), missed);
  // The one that resumed is still in the room for everyone.
  await sleep(TIMEOUT_MS);
  assert.ok(!watcher.client.messages.some((m) => m.type === 'peer-left' && m.peer === comes.peer));
  const seq = await signal(watcher, comes.peer, { after: true });
  await back.next({ type: 'signal', seq });
  const history = await roomHistory(cluster, room);
  assert.deepEqual(history.filter((e) => e.kind === 'leave').map((e) => e.peer), [stays.peer]);
});
