// Abuse under load (issue 6): the three measured abuse tests, each against
// its own real cluster on loopback (nats-server -js, redis-server, two
// sigstream instances; no HAProxy, clients talk to the instances directly).
// The plain behaviour of the same controls (a burst over the rate limit, a
// slow reader, 400 idle connections) is tested in abuse_limits.test.mjs and
// connection_limits.test.mjs; these tests add load and measurements.
//
// 1. Signal flood. Four well-behaved peers (two per instance) send each other
//    small signals, each every 40 ms (100/s in the room; the four timers
//    staggered by 10 ms), stamped with performance.now(); the receiver (same
//    process, same monotonic clock) records send -> receive latency. A quiet
//    phase (5 s, ~500 samples), then the same load while a flooding client
//    (a worker thread, so that its send loop does not block the event loop
//    that timestamps the samples) sends 1 KiB signals as fast as its sockets
//    take them on two connections, one broadcasting to the room (on i1), one
//    aiming at one calm peer (on i2), at most 20,000 sends per connection,
//    until it is closed. The signal limit is the default (100/s, burst 200).
//    Asserted: the instances refuse the flood (rate_limited_total grows by at
//    least 20 per flooding connection), each flooding connection is then
//    closed with 1008; what they refused never reached the stream (the
//    instances' events_appended_total{kind="signal"} grew by the calm samples
//    plus at most each connection's burst and what its rate refilled while
//    it was open); no calm peer is closed, every calm sample arrives within
//    3 s of its phase's end and none twice, and no instance died.
//    The latency figures (quiet and flood p50/p99/max, the slowest samples
//    with their offsets, and the flood p99 against twice the quiet one) are
//    logged, not asserted: house rule 4 keeps speed in the benchmark. A
//    bound of 2 x max(p99_quiet, 2 ms) asserted here until 2026-12-05 failed
//    CI (ctest -j2 runs this file beside the browser tests): the flood's
//    accepted burst (2 x 200 signals in the calm peers' own room, ordered
//    before their samples) delayed 5 or 6 samples by 10-50 ms there, 5-21 ms
//    on a quiet machine. Checked by experiment (figures in docs/security.md,
//    "Abuse tests"): with the limit effectively off (FLOOD.signalRate and
//    signalBurst set to 1000000) most calm samples never arrive (the calm
//    peers are closed as slow consumers) and the test fails.
//
// 2. A client that stops reading. It joins, then pauses its socket (TCP backs
//    up into the kernel buffers, then into the instance's write queue, set
//    to 1 MiB here). Another peer, on the other instance, sends 60 KB
//    signals (under the 64 KiB data limit) to the room, at most 160 MB in
//    all, until the instance has closed the slow client. The instance's
//    VmRSS (/proc/<pid>/status) is sampled every 20 ms. Asserted: the client
//    is counted in slow_consumers_total and logged, the peak RSS growth over
//    the baseline stays under 48 MiB (the 1 MiB queue plus generous slack
//    for allocator caching and NATS client buffers; far below the data
//    pushed, and kernel socket buffers, which can hold tens of MB on
//    loopback here, are not in RSS), and the instance serves a new join and
//    signal afterwards. Checked by experiment: with the queue effectively
//    unbounded (SLOW.env set to --write-queue-bytes 4GiB,
//    --write-queue-frames 1000000) the client is never cut off and the
//    growth passes the bound (the slow client's queue holds every frame).
//
// 3. 2,000 connections that never join. They are opened straight to one
//    instance, 200 at a time, with --join-timeout 2s. Asserted: every one is
//    closed by the server with 1008 no earlier than the timeout (less 250 ms
//    for the client seeing "open" after the server starts its timer) and no
//    later than the timeout plus 10 s (generous: a loaded machine), the
//    instance's policy_closes_total grows by exactly 2,000, its connections
//    gauge goes back to its baseline, and a fresh client then joins and
//    signals (and is not closed by the join timeout). Checked by experiment:
//    with --join-timeout 60s the test fails (none is closed in time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { startCluster, connect, httpGet, sleep, waitFor } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';

const require = createRequire(import.meta.url);

async function metric(cluster, id, name, labels) {
  return instanceMetric(cluster.instance(id).httpUrl, name, labels);
}

// The harness judges only the processes still running at teardown: a crash
// during a test must be caught here.
function assertAlive(cluster) {
  for (const inst of cluster.instances) {
    assert.ok(inst.alive, `instance ${inst.id} died during the test; its log:\n${cluster.logTail(inst.id, 15)}`);
  }
}

function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const MiB = 1024 * 1024;
const mib = (bytes) => (bytes / MiB).toFixed(1);

function percentile(values, p) {
  if (values.length === 0) return Infinity;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

// ---------------------------------------------------------------------------
// 1. Signal flood
// ---------------------------------------------------------------------------

const FLOOD = {
  calmPeers: 4,
  calmIntervalMs: 40,     // per peer: 25/s, 100/s in the room
  phaseMs: 5000,
  lateAfterMs: 3000,      // a sample not received this long after its phase counts as lost
  floorMs: 2,
  floodSends: 20_000,     // per flooding connection
  floodDataBytes: 1024,
  signalRate: 100,        // the defaults
  signalBurst: 200,
};
FLOOD.env = { SIGSTREAM_SIGNAL_RATE: String(FLOOD.signalRate), SIGSTREAM_SIGNAL_BURST: String(FLOOD.signalBurst) };

// The flooder: runs in a worker thread. Joins `room` on each URL, reports
// ready, and on 'go' broadcasts as fast as the socket takes it (waiting only
// when more than 1 MiB is buffered), until `sends` or the connection closes.
const FLOODER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsPath);
const { urls, room, sends, dataBytes, targets } = workerData;
const pad = 'f'.repeat(dataBytes);
const conns = urls.map((url, i) => {
  const ws = new WebSocket(url);
  const c = { ws, to: targets[i] ?? undefined, sent: 0, rateLimited: 0, otherErrors: 0, close: null, joined: null };
  c.opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  c.closed = new Promise((resolve) => ws.once('close', (code) => { c.close = { code, at: performance.now() }; resolve(); }));
  c.joinedP = new Promise((resolve) => { c.onJoined = resolve; });
  ws.on('message', (d) => {
    const m = JSON.parse(d);
    if (m.type === 'joined') c.onJoined(m);
    else if (m.type === 'error' && m.code === 'rate-limited') { if (c.rateLimited++ === 0) c.firstLimitedAt = performance.now(); }
    else if (m.type === 'error') c.otherErrors++;
  });
  return c;
});
async function flood(c) {
  const ws = c.ws;
  while (c.sent < sends && ws.readyState === WebSocket.OPEN) {
    for (let k = 0; k < 50 && c.sent < sends; k++) ws.send(JSON.stringify({ type: 'signal', to: c.to, data: { f: c.sent, pad } })), c.sent++;
    if (ws.bufferedAmount > 1048576) await new Promise((r) => setTimeout(r, 1));
    else await new Promise((r) => setImmediate(r));
  }
  c.doneAt = performance.now();
  // Unlimited (the experiment): let the server take what was sent, then go.
  if (ws.readyState === WebSocket.OPEN) {
    while (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 200));
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  }
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 10000))]);
}
(async () => {
  await Promise.all(conns.map((c) => c.opened));
  for (const c of conns) { c.ws.send(JSON.stringify({ type: 'join', room })); c.joined = await c.joinedP; }
  parentPort.postMessage({ ready: true, peers: conns.map((c) => c.joined.peer) });
  await new Promise((resolve) => parentPort.once('message', resolve));
  const t0 = performance.now();
  await Promise.all(conns.map((c) => flood(c)));
  parentPort.postMessage({ done: true, conns: conns.map((c) => ({
    to: c.to ? 'one peer' : 'room', sent: c.sent, rateLimited: c.rateLimited, otherErrors: c.otherErrors,
    closeCode: c.close?.code ?? null,
    firstLimitedMs: c.firstLimitedAt === undefined ? null : Math.round(c.firstLimitedAt - t0),
    closedMs: c.close ? Math.round(c.close.at - t0) : null,
    sendingMs: Math.round(c.doneAt - t0),
  })) });
})().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
`;

function startFlooder(urls, room, targets) {
  const worker = new Worker(FLOODER_SOURCE, {
    eval: true,
    workerData: { wsPath: require.resolve('ws'), urls, room, targets, sends: FLOOD.floodSends, dataBytes: FLOOD.floodDataBytes },
  });
  const messages = [];
  const waiters = [];
  worker.on('message', (m) => {
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  worker.on('error', (err) => { messages.push({ error: String(err) }); for (const w of waiters.splice(0)) w(); });
  const nextMessage = async (timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (messages.length === 0) {
      if (Date.now() > deadline) throw new Error(`flooder: no message within ${timeoutMs} ms`);
      await Promise.race([new Promise((r) => waiters.push(r)), sleep(100)]);
    }
    const m = messages.shift();
    if (m.error) throw new Error(`flooder failed: ${m.error}`);
    return m;
  };
  return { worker, nextMessage };
}

test('a signal flood is limited and closed (1008); it reaches the stream only up to the limit and the others lose nothing', { timeout: 240_000 }, async (t) => {
  const cluster = await startCluster({ instances: 2, haproxy: false, env: FLOOD.env, t });
  const room = 'flood-latency';
  const urls = cluster.instanceUrls;

  // The well-behaved peers: after their join, raw handlers (no buffering of
  // every message) that record each calm sample's latency and any duplicate.
  const calm = [];
  for (let k = 0; k < FLOOD.calmPeers; k++) {
    const c = await connect(urls[k % 2]);
    const joined = await c.request({ type: 'join', room });
    calm.push({ client: c, peer: joined.peer });
  }
  const outstanding = new Map();  // `${peerIndex}:${n}` -> {sentAt, phase}
  const received = new Set();     // keys already received once
  const duplicates = [];
  const latencies = new Map();    // phase -> [ms]
  const slowest = new Map();
  const phaseStart = new Map();
  for (const peer of calm) {
    const ws = peer.client.ws;
    ws.removeAllListeners('message');
    ws.on('message', (d) => {
      const now = performance.now();
      const m = JSON.parse(d);
      if (m.type !== 'signal' || m.data?.calm === undefined) return;
      const key = `${m.data.calm}:${m.data.n}`;
      if (received.has(key)) { duplicates.push(key); return; }
      received.add(key);
      const sample = outstanding.get(key);
      if (!sample) return;
      outstanding.delete(key);
      latencies.get(sample.phase).push(now - sample.sentAt);
      slowest.get(sample.phase).push([now - sample.sentAt, sample.sentAt - phaseStart.get(sample.phase)]);
    });
  }
  let n = 0;
  async function runPhase(phase) {
    latencies.set(phase, []);
    slowest.set(phase, []);
    phaseStart.set(phase, performance.now());
    // Staggered: one stall of the machine then delays one or two samples,
    // not one of every peer at once.
    const timers = [];
    let sent = 0;
    const stagger = FLOOD.calmIntervalMs / calm.length;
    calm.forEach((peer, i) => timers.push(setTimeout(() => timers.push(setInterval(() => {
      const to = calm[(i + 1) % calm.length].peer;
      const seq = n++;
      const sentAt = performance.now();
      outstanding.set(`${i}:${seq}`, { sentAt, phase });
      sent++;
      peer.client.ws.send(JSON.stringify({ type: 'signal', to, data: { calm: i, n: seq, sdp: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host' } }));
    }, FLOOD.calmIntervalMs)), i * stagger)));
    await sleep(FLOOD.phaseMs);
    timers.forEach((timer) => { clearTimeout(timer); clearInterval(timer); });
    await waitFor(() => ![...outstanding.values()].some((s) => s.phase === phase),
      { timeoutMs: FLOOD.lateAfterMs, intervalMs: 50 }).catch(() => {});
    let late = 0;
    for (const [key, s] of outstanding) if (s.phase === phase) { late++; outstanding.delete(key); }
    const values = latencies.get(phase);
    const top = slowest.get(phase).sort((a, b) => b[0] - a[0]).slice(0, 8).map(([l, at]) => `${l.toFixed(1)}@${Math.round(at)}`).join(' ');
    console.log(`${phase} slowest (ms@offset): ${top}`);
    return { phase, sent, late, p50: percentile(values, 0.5), p99: percentile(values, 0.99), max: percentile(values, 1) };
  }
  const fmt = (r) => `${r.phase}: ${r.sent} samples, ${r.late} not received within ${FLOOD.lateAfterMs} ms;`
    + ` of those received p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms`;
  const signalsAppended = async () => await metric(cluster, 'i1', 'events_appended_total', { kind: 'signal' })
    + await metric(cluster, 'i2', 'events_appended_total', { kind: 'signal' });
  const limitedTotal = async () => await metric(cluster, 'i1', 'rate_limited_total', { request: 'signal' })
    + await metric(cluster, 'i2', 'rate_limited_total', { request: 'signal' });

  await runPhase('warm-up');  // first signals on fresh connections and rooms
  const quiet = await runPhase('quiet');
  for (const peer of calm) assert.ok(peer.client.isOpen, 'a calm peer was closed');

  // Two connections of the same client: one broadcasts (from i1), one
  // targets the first calm peer (from i2).
  const flooder = startFlooder([urls[0], urls[1]], room, [null, calm[0].peer]);
  await flooder.nextMessage(15_000);  // joined
  await sleep(300);                   // its peer-joined reached everyone
  const limitedBefore = await limitedTotal();
  const appendedBefore = await signalsAppended();
  flooder.worker.postMessage('go');
  const flood = await runPhase('flood');
  const report = await flooder.nextMessage(30_000);
  await flooder.worker.terminate();
  const floodAppended = await signalsAppended() - appendedBefore - flood.sent;

  const bound = 2 * Math.max(quiet.p99, FLOOD.floorMs);
  const line = `${fmt(quiet)} | ${fmt(flood)} | flood p99 against 2 x max(p99_quiet, ${FLOOD.floorMs} ms) = ${bound.toFixed(2)} ms:`
    + ` ${flood.p99 <= bound ? 'within' : 'above'} (logged, not asserted) | flood signals appended ${floodAppended}`
    + ` | flooder: ${JSON.stringify(report.conns)}`;
  console.log(line);
  t.diagnostic(line);

  assertAlive(cluster);
  for (const peer of calm) assert.ok(peer.client.isOpen, 'a calm peer was closed during the flood');
  // Limited, then closed with 1008. The refusals are counted by the
  // instances: on a slow machine (ASan) the error frames queued behind the
  // close may never reach the flooder.
  const refused = await limitedTotal() - limitedBefore;
  assert.ok(refused >= 20 * report.conns.length, `the instances refused the flood (${refused} rate-limited)`);
  for (const c of report.conns) {
    assert.equal(c.closeCode, 1008, `the flooder was closed with 1008 (${JSON.stringify(c)})`);
    assert.ok(c.sent < FLOOD.floodSends, `closed before it sent all ${FLOOD.floodSends} (${JSON.stringify(c)})`);
  }
  // What was refused never reached the stream: each flooding connection got
  // its burst and what its rate refilled while it was open, no more.
  const allowed = report.conns.reduce((sum, c) => sum + FLOOD.signalBurst + Math.ceil(FLOOD.signalRate * (c.closedMs ?? 0) / 1000), 0);
  assert.ok(floodAppended <= allowed, `the stream took ${floodAppended} flood signals, the limit allows ${allowed}`);
  // The others lost nothing and got nothing twice.
  assert.equal(quiet.late + flood.late, 0, `calm samples not received within ${FLOOD.lateAfterMs} ms: quiet ${quiet.late}, flood ${flood.late}`);
  assert.deepEqual(duplicates, [], 'calm samples received twice');
  assert.ok(await metric(cluster, 'i1', 'policy_closes_total') >= 1);
  for (const peer of calm) peer.client.ws.terminate();
});

// ---------------------------------------------------------------------------
// 2. A client that stops reading
// ---------------------------------------------------------------------------

const SLOW = {
  blobBytes: 60_000,
  maxPushBytes: 160_000_000,
  window: 8,              // signals in flight (each acked) from the sender
  rssSlackBytes: 48 * MiB,
  env: {
    SIGSTREAM_WRITE_QUEUE_BYTES: '1MiB', SIGSTREAM_WRITE_QUEUE_FRAMES: '1024', SIGSTREAM_RESUME_GRACE: '1s',
    // Under AddressSanitizer (scripts/dev test --sanitize), freed memory sits
    // in a quarantine (256 MB by default) and RSS measures that, not the
    // instance: turn it off for this cluster. A release build ignores this.
    ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : ''}quarantine_size_mb=0:thread_local_quarantine_size_kb=0`,
  },
};

test('a client that stops reading is cut off and the instance\'s memory stays bounded', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster({ instances: 2, haproxy: false, env: SLOW.env, t });
  const room = 'slow-reader';
  const pid = cluster.instance('i1').pid;
  const sender = await connect(cluster.instance('i2').url);
  const slow = await connect(cluster.instance('i1').url);
  await sender.request({ type: 'join', room });
  const js = await slow.request({ type: 'join', room });
  await sender.next({ type: 'peer-joined', peer: js.peer });

  // Warm up: the same traffic, read, so that the baseline includes the
  // buffers any busy instance has (allocator arenas, NATS client buffers).
  const blob = 'x'.repeat(SLOW.blobBytes);
  for (let k = 0; k < 100; k++) await sender.request({ type: 'signal', data: { warm: k, blob } }, 10_000);
  await waitFor(() => slow.messages.filter((m) => m.data?.warm !== undefined).length === 100, { what: 'the warm-up signals read' });
  slow.drain();
  slow.messages.length = 0;
  await sleep(500);
  const baseline = rssBytes(pid);
  const slowBefore = await metric(cluster, 'i1', 'slow_consumers_total');

  slow.ws._socket.pause();  // stops reading: kernel buffers fill, then the instance's queue
  let peak = baseline;
  let samples = 0;
  const sampler = setInterval(() => {
    try { peak = Math.max(peak, rssBytes(pid)); samples++; } catch { /* exited: judged below */ }
  }, 20);
  const t0 = performance.now();
  let pushed = 0;
  let sent = 0;
  let cutAt = null;
  let lastCheck = 0;
  try {
    const inFlight = new Set();
    while (pushed < SLOW.maxPushBytes) {
      const p = sender.request({ type: 'signal', data: { k: sent, blob } }, 15_000).then((ack) => {
        assert.equal(ack.type, 'ack', JSON.stringify(ack));
        inFlight.delete(p);
      });
      inFlight.add(p);
      sent++;
      pushed += SLOW.blobBytes;
      if (inFlight.size >= SLOW.window) await Promise.race(inFlight);
      if (performance.now() - lastCheck > 100) {
        lastCheck = performance.now();
        if (await metric(cluster, 'i1', 'slow_consumers_total') > slowBefore) { cutAt = performance.now() - t0; break; }
      }
    }
    await Promise.all(inFlight);
    await sleep(500);  // what was in flight reaches the instance
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssBytes(pid));
  const growth = peak - baseline;
  const line = `slow reader: pushed ${mib(pushed)} MiB in ${sent} signals of ${SLOW.blobBytes} B`
    + ` (${cutAt === null ? 'never cut off' : `cut off after ${Math.round(cutAt)} ms`}); instance RSS baseline ${mib(baseline)} MiB,`
    + ` peak ${mib(peak)} MiB, growth ${mib(growth)} MiB (bound ${mib(SLOW.rssSlackBytes)} MiB; ${samples} samples)`;
  console.log(line);
  t.diagnostic(line);

  assertAlive(cluster);
  assert.ok(cutAt !== null, `the instance never closed the client that stopped reading (${mib(pushed)} MiB pushed)`);
  assert.equal(await metric(cluster, 'i1', 'slow_consumers_total'), slowBefore + 1);
  assert.match(fs.readFileSync(cluster.instance('i1').logFile, 'utf8'), /closed: slow consumer/);
  assert.ok(growth < SLOW.rssSlackBytes, `peak RSS growth ${mib(growth)} MiB over ${mib(SLOW.rssSlackBytes)} MiB`);
  const left = await sender.next({ type: 'peer-left', peer: js.peer }, 10_000);
  assert.equal(left.reason, 'expired');

  // Still serving: a new peer joins on that instance and gets a signal.
  const fresh = await connect(cluster.instance('i1').url);
  await fresh.request({ type: 'join', room });
  const ack = await sender.request({ type: 'signal', data: 'after the slow reader' });
  assert.equal((await fresh.next({ type: 'signal', seq: ack.seq }, 10_000)).data, 'after the slow reader');
  fresh.close(); sender.close(); slow.terminate();
});

// ---------------------------------------------------------------------------
// 3. 2,000 connections that never join
// ---------------------------------------------------------------------------

const IDLE = { connections: 2000, batch: 200, joinTimeoutMs: 2000, slackMs: 10_000, earlyMs: 250 };

test('2,000 connections that never join are closed by the join timeout (1008), and nothing leaks', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster({ instances: 2, haproxy: false, env: { SIGSTREAM_JOIN_TIMEOUT: `${IDLE.joinTimeoutMs}ms` }, t });
  const { url } = cluster.instance('i1');
  const connectionsBefore = await metric(cluster, 'i1', 'connections');
  const policyBefore = await metric(cluster, 'i1', 'policy_closes_total');

  const idle = [];
  const t0 = performance.now();
  try {
    for (let start = 0; start < IDLE.connections; start += IDLE.batch) {
      const batch = await Promise.all(Array.from({ length: Math.min(IDLE.batch, IDLE.connections - start) }, async () => {
        const c = await connect(url, { timeoutMs: 15_000 });
        const rec = { client: c, openedAt: performance.now(), closedAt: null, code: null };
        c.closed.then(({ code }) => { rec.closedAt = performance.now(); rec.code = code; });
        return rec;
      }));
      idle.push(...batch);
    }
    const openedIn = performance.now() - t0;
    const peakGauge = await metric(cluster, 'i1', 'connections');
    await waitFor(() => idle.every((r) => r.closedAt !== null),
      { timeoutMs: IDLE.joinTimeoutMs + IDLE.slackMs + 5000, intervalMs: 100, what: 'every idle connection closed' })
      .catch((err) => { err.message += ` (${idle.filter((r) => r.closedAt === null).length} still open)`; throw err; });
    const lifetimes = idle.map((r) => r.closedAt - r.openedAt);
    const codes = {};
    for (const r of idle) codes[r.code] = (codes[r.code] ?? 0) + 1;
    const line = `idle connections: ${idle.length} opened in ${Math.round(openedIn)} ms (gauge ${peakGauge} after the last batch);`
      + ` closed after min ${Math.round(Math.min(...lifetimes))} / p50 ${Math.round(percentile(lifetimes, 0.5))}`
      + ` / p99 ${Math.round(percentile(lifetimes, 0.99))} / max ${Math.round(Math.max(...lifetimes))} ms`
      + ` (join timeout ${IDLE.joinTimeoutMs} ms); all closed ${Math.round(Math.max(...idle.map((r) => r.closedAt)) - t0)} ms after the first open; codes ${JSON.stringify(codes)}`;
    console.log(line);
    t.diagnostic(line);

    assertAlive(cluster);
    assert.deepEqual(codes, { 1008: IDLE.connections }, 'every one closed by the server with 1008');
    assert.ok(Math.min(...lifetimes) >= IDLE.joinTimeoutMs - IDLE.earlyMs, 'none closed before the join timeout');
    assert.ok(Math.max(...lifetimes) <= IDLE.joinTimeoutMs + IDLE.slackMs, 'every one closed within the timeout plus slack');
    assert.equal(await metric(cluster, 'i1', 'policy_closes_total') - policyBefore, IDLE.connections);
    let gauge;
    await waitFor(async () => (gauge = await metric(cluster, 'i1', 'connections')) <= connectionsBefore,
      { timeoutMs: 10_000, what: 'the connections gauge back to its baseline' })
      .catch((err) => { err.message += ` (baseline ${connectionsBefore}, now ${gauge})`; throw err; });
  } finally {
    for (const r of idle) if (r.closedAt === null) r.client.ws.terminate();
  }

  // The instance still serves: two fresh clients join and signal.
  const a = await connect(url);
  const b = await connect(url);
  const ja = await a.request({ type: 'join', room: 'after-idle' });
  await b.request({ type: 'join', room: 'after-idle' });
  const ack = await b.request({ type: 'signal', to: ja.peer, data: 'hello' });
  assert.equal(ack.type, 'ack');
  assert.equal((await a.next({ type: 'signal', seq: ack.seq })).data, 'hello');
  await sleep(IDLE.joinTimeoutMs + 500);
  assert.ok(a.isOpen && b.isOpen, 'joined connections are not closed by the join timeout');
  a.close(); b.close();
});

// 4. Readers that read, but too slowly, in a busy room. A slow consumer is
//    often closed while a write to it is in flight and about to complete;
//    the instance once freed that frame under the write and crashed (heap
//    corruption, or a heap-use-after-free under ASan within seconds), found
//    by the flood experiments above. Six peers on i2 send 60 KB signals
//    (each under the default rate limit) to 20 readers on i1 that read in
//    1 ms bursts every ~150 or ~300 ms (the pace that cuts readers off
//    depends on the build and the machine), all to one reader at a time,
//    until 15 were cut off or 20 s passed; closed readers are replaced. It
//    is a race: the build before the fix aborted under ASan in 1 of 2 runs
//    of this test when the signals went to the whole room (3 of 5 with its
//    variants; not tried with the one-reader-at-a-time version), and in 4
//    of 4 flood experiments.
//    Asserted: readers were cut off as slow consumers (the path ran), both
//    instances lived through it, and i1 still serves a join.
test('readers that read too slowly are cut off while writes are in flight, and the instance lives on', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster({ instances: 2, haproxy: false, env: { SIGSTREAM_SIGNAL_RATE: '100', SIGSTREAM_SIGNAL_BURST: '200' }, t });
  const room = 'busy';
  const clients = [];
  const senders = [];
  for (let k = 0; k < 6; k++) {
    const c = await connect(cluster.instance('i2').url);
    await c.request({ type: 'join', room });
    clients.push(c);
    senders.push(c);
  }
  let stopped = false;
  const readers = [];
  const readerPeers = [];
  const addReader = async (k) => {
    const c = await connect(cluster.instance('i1').url);
    readerPeers[k] = (await c.request({ type: 'join', room })).peer;
    c.ws.removeAllListeners('message');  // keep nothing: only the socket's pace matters
    c.ws.on('message', () => {});
    clients.push(c);
    readers[k] = c;
    const sock = c.ws._socket;
    (async () => {
      while (c.isOpen && !stopped) { sock.pause(); await sleep((k % 2 ? 300 : 150) + (k % 7)); sock.resume(); await sleep(1); }
    })();
  };
  for (let k = 0; k < 20; k++) await addReader(k);
  const slowBefore = await metric(cluster, 'i1', 'slow_consumers_total');
  const blob = 'x'.repeat(60_000);
  // All signals to one reader at a time (about 33 MB/s, for 300 signals,
  // then the next reader), so that a paused reader's queue outgrows what
  // its socket takes in a pause. A broadcast did that to every reader at
  // once, but also brought every sender the others' signals (27 MB/s each),
  // more than an instance under ASan writes: it cut the senders off instead.
  let turn = 0;
  const timers = senders.map((s) => setInterval(() => {
    const to = readerPeers[Math.floor(turn++ / 300) % readerPeers.length];
    if (s.isOpen) s.ws.send(JSON.stringify({ type: 'signal', to, data: { blob } }));
  }, 11));
  try {
    // Until 15 readers were cut off (how fast depends on the machine's
    // pace), for at most 20 s.
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      await sleep(500);
      assertAlive(cluster);
      if (await metric(cluster, 'i1', 'slow_consumers_total') - slowBefore >= 15) break;
      for (let k = 0; k < readers.length; k++) if (!readers[k].isOpen) await addReader(k);
    }
  } finally {
    stopped = true;
    timers.forEach(clearInterval);
  }
  const cutOff = await metric(cluster, 'i1', 'slow_consumers_total') - slowBefore;
  const errors = senders.flatMap((s) => s.messages.filter((m) => m.type === 'error').map((m) => m.code));
  t.diagnostic(`slow readers cut off: ${cutOff}; senders open ${senders.filter((s) => s.isOpen).length}/6, errors ${JSON.stringify(errors.slice(0, 5))} (${errors.length})`);
  assert.ok(cutOff > 0, 'slow readers were cut off (the path under test ran)');
  await sleep(500);
  assertAlive(cluster);
  const fresh = await connect(cluster.instance('i1').url);
  clients.push(fresh);
  assert.equal((await fresh.request({ type: 'join', room: 'after-slow' })).type, 'joined');
  for (const c of clients) c.ws.terminate();
});
