// More load than the event log can take (issue 12): appends in flight per
// instance are bounded (--max-appends-in-flight), so past the bound joins
// and signals are answered `unavailable` at once instead of queueing. Here
// the bound is 4 and nats-server is paused (SIGSTOP) for 0.8 s while three
// peers fire 60 signals each, so that acknowledgements stop coming and the
// bound is reached for certain. Then: every signal got an answer; those
// refused were never stored nor delivered; every acknowledged one was
// stored once and reached its target once, in order; nobody was taken for
// dead; and a round of signals afterwards is acknowledged as fast as before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, sleep, waitFor } from '../lib/cluster.mjs';
import { roomHistory, assertReceivedShare } from '../lib/stream.mjs';

const ROOM = 'overload';
const BOUND = 4;
const env = { SIGSTREAM_MAX_APPENDS_IN_FLIGHT: String(BOUND) };
let cluster;
const peers = [];  // {client, joined}

before(async () => {
  cluster = await startCluster({ instances: 2, env });
  for (let k = 0; k < 3; k++) {
    const client = await connect(cluster.instances[k % 2].url);
    const joined = await client.request({ type: 'join', room: ROOM });
    assert.equal(joined.type, 'joined');
    peers.push({ client, joined });
  }
});

after(async () => {
  try { process.kill(cluster?.nats?.pid, 'SIGCONT'); } catch { /* not stopped */ }
  for (const p of peers) p.client.ws.terminate();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// A burst: every peer sends `count` signals to the next peer at once;
// resolves with every answer and how long each took.
async function burst(count, tag) {
  const sends = [];
  for (const [k, p] of peers.entries()) {
    const to = peers[(k + 1) % peers.length].joined.peer;
    for (let n = 0; n < count; n++) {
      const sentAt = performance.now();
      sends.push(p.client.request({ type: 'signal', to, data: { tag, k, n } }, 15_000)
        .then((reply) => ({ k, n, reply, ms: performance.now() - sentAt })));
    }
  }
  return Promise.all(sends);
}

// A quiet round: each peer sends `count` signals, one at a time.
async function quietRound(count, tag) {
  const out = [];
  for (let n = 0; n < count; n++) {
    for (const [k, p] of peers.entries()) {
      const sentAt = performance.now();
      const reply = await p.client.request({ type: 'signal', to: peers[(k + 1) % peers.length].joined.peer, data: { tag, k, n } });
      out.push({ k, n, reply, ms: performance.now() - sentAt });
    }
  }
  return out;
}

test('past the in-flight bound joins and signals get unavailable at once; nothing acknowledged is lost, nothing refused is delivered, and latency comes back by itself', { timeout: 90_000 }, async () => {
  const before = await quietRound(5, 'warm');
  assert.ok(before.every((o) => o.reply.type === 'ack'), 'a quiet round is acknowledged');
  const quietMs = Math.max(...before.map((o) => o.ms));

  process.kill(cluster.nats.pid, 'SIGSTOP');
  const stoppedAt = performance.now();
  const pending = burst(60, 'burst');
  // A join arriving while the bound is reached is refused too.
  const late = await connect(cluster.instances[0].url);
  const lateJoin = late.request({ type: 'join', room: ROOM }, 15_000);
  await waitFor(() => peers.every((p) => p.client.messages.some((m) => m.type === 'error' && m.code === 'unavailable')),
    { timeoutMs: 700, intervalMs: 10, what: 'refusals while NATS is paused' });
  assert.ok(performance.now() - stoppedAt < 800, 'refused at once, not after a timeout');
  await sleep(Math.max(0, 800 - (performance.now() - stoppedAt)));
  process.kill(cluster.nats.pid, 'SIGCONT');
  const answers = await pending;
  const joinReply = await lateJoin;
  assert.ok(joinReply.type === 'joined' || (joinReply.type === 'error' && joinReply.code === 'unavailable'),
    JSON.stringify(joinReply));
  late.ws.terminate();

  const acked = answers.filter((o) => o.reply.type === 'ack');
  const refused = answers.filter((o) => o.reply.type === 'error');
  assert.ok(refused.every((o) => o.reply.code === 'unavailable'), JSON.stringify(refused.find((o) => o.reply.code !== 'unavailable')));
  // Each instance took at most its bound while acknowledgements stood still;
  // the rest of the burst was refused.
  assert.ok(refused.length >= answers.length - 2 * BOUND - 20, `${refused.length} of ${answers.length} refused`);
  assert.ok(acked.length >= 1, `${acked.length} acknowledged`);

  // Latency is back: a quiet round is acknowledged about as fast as before.
  await sleep(500);
  const after = await quietRound(5, 'after');
  assert.ok(after.every((o) => o.reply.type === 'ack'), JSON.stringify(after.find((o) => o.reply.type !== 'ack')));
  const afterMs = Math.max(...after.map((o) => o.ms));
  assert.ok(afterMs < Math.max(250, 10 * quietMs), `a round after the overload took ${afterMs.toFixed(1)} ms (before: ${quietMs.toFixed(1)} ms)`);

  await sleep(1500);  // the last live copies reach everyone
  const events = await roomHistory(cluster, ROOM);
  const signals = events.filter((e) => e.kind === 'signal' && e.data.tag === 'burst');
  // Stored: exactly the acknowledged ones, each once, at its acknowledged seq.
  assert.deepEqual(signals.map((e) => `${e.data.k}/${e.data.n}@${e.seq}`).sort(),
    acked.map((o) => `${o.k}/${o.n}@${o.reply.seq}`).sort());
  // Delivered: each peer got exactly its share of the stream, in order.
  for (const p of peers) assertReceivedShare(assert, p.client, events, p.joined, { label: p.joined.peer });
  // Nobody was taken for dead or left.
  assert.deepEqual(events.filter((e) => e.kind === 'leave' && peers.some((p) => p.joined.peer === e.peer)), []);
  const logs = (await cluster.logTail('i1', 300)) + (await cluster.logTail('i2', 300));
  assert.doesNotMatch(logs, /taking it for dead/);
});
