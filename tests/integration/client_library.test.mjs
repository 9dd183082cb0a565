// The browser client library (web/sigstream.js), run in Node with the `ws`
// package as its WebSocket, against a real cluster: joins and signals across
// instances, errors as rejected promises with the protocol's code, reconnect
// through HAProxy after an instance is killed, the backoff math, and the
// module served by the instances themselves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { startCluster, httpGet, waitFor } from '../lib/cluster.mjs';
import { SigstreamClient, SigstreamError, backoffDelay } from '../../web/sigstream.js';

const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const env = { SIGSTREAM_WEB_ROOT: WEB_ROOT };

let cluster;
const clients = [];
before(async () => { cluster = await startCluster({ instances: 2, env }); });
after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// A WebSocket class that remembers which instance answered each upgrade,
// and every frame the client sent.
function recordingWebSocket(seen, sent = []) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.on('upgrade', (res) => seen.push(res.headers['x-sigstream-instance']));
    }
    send(data, ...rest) { sent.push(JSON.parse(data)); return super.send(data, ...rest); }
  };
}

async function client(url, options = {}) {
  const c = new SigstreamClient(url, { WebSocket, reconnect: false, ...options });
  clients.push(c);
  await c.connect();
  return c;
}

// Resolves the detail of the next `type` event of `target`, or rejects after timeoutMs.
function nextEvent(target, type, timeoutMs = 5000, predicate = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, on);
      reject(new Error(`no ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    function on(ev) {
      if (!predicate(ev.detail)) return;
      clearTimeout(timer);
      target.removeEventListener(type, on);
      resolve(ev.detail);
    }
    target.addEventListener(type, on);
  });
}

test('two clients on different instances join, see each other and exchange signals', async () => {
  const a = await client(cluster.instance('i1').url);
  const b = await client(cluster.instance('i2').url);
  const ja = await a.join('lib-1', { name: 'ana' });
  assert.equal(ja.room, 'lib-1');
  assert.deepEqual(ja.peers, []);
  assert.equal(typeof ja.seq, 'number');
  assert.equal(a.peer, ja.peer);

  const seenByA = nextEvent(a, 'peer-joined');
  const jb = await b.join('lib-1', { name: 'bo' });
  assert.deepEqual(jb.peers, [{ peer: ja.peer, meta: { name: 'ana' }, instance: 'i1' }]);
  assert.equal(jb.instance, 'i2');
  assert.notEqual(jb.peer, ja.peer);
  const pj = await seenByA;
  assert.equal(pj.peer, jb.peer);
  assert.deepEqual(pj.meta, { name: 'bo' });

  // Targeted: the ack's seq is the seq the receiver sees.
  const offer = { sdp: { type: 'offer', sdp: 'v=0\r\n' } };
  const gotA = nextEvent(a, 'signal');
  const seq = await b.signal(ja.peer, offer);
  assert.equal(typeof seq, 'number');
  assert.deepEqual(await gotA, { type: 'signal', from: jb.peer, to: ja.peer, data: offer, seq });

  // Broadcast: `to` null.
  const gotB = nextEvent(b, 'signal');
  const seq2 = await a.signal(null, { candidate: 'c1' });
  assert.equal(typeof seq2, 'number');
  assert.ok(seq2 > seq);
  assert.deepEqual(await gotB, { type: 'signal', from: ja.peer, data: { candidate: 'c1' }, seq: seq2 });

  // Leave: the other side hears it.
  const leftA = nextEvent(a, 'peer-left');
  const leaveSeq = await b.leave();
  assert.deepEqual(await leftA, { type: 'peer-left', peer: jb.peer, reason: 'leave', seq: leaveSeq });
  assert.equal(b.peer, null);
  a.close(); b.close();
});

test('refused requests reject with the protocol error code', async () => {
  const a = await client(cluster.instance('i1').url);
  await assert.rejects(a.signal(null, 1), (e) => e instanceof SigstreamError && e.code === 'not-in-room');
  await assert.rejects(a.join(''), (e) => e instanceof SigstreamError && e.code === 'invalid-room');
  await a.join('lib-errors');
  await assert.rejects(a.join('lib-errors-2'), { code: 'already-in-room' });
  await assert.rejects(a.signal('no-such-peer', { x: 1 }), { code: 'unknown-peer' });
  // The connection survives its errors.
  assert.equal(typeof await a.signal(null, 'still here'), 'number');
  // Pending requests are rejected on close, and nothing is sent after it.
  const pending = a.signal(null, 'x');
  a.close();
  await assert.rejects(pending, { code: 'closed' });
  await assert.rejects(a.signal(null, 'y'), { code: 'disconnected' });
});

// A server that answers the first `unavailableFirst` copies of each signal
// with `unavailable`, then acknowledges: what the library sends again.
async function scriptedServer(unavailableFirst) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const signals = [];
  wss.on('connection', (ws) => ws.on('message', (text) => {
    const msg = JSON.parse(String(text));
    if (msg.type === 'join') {
      ws.send(JSON.stringify({ type: 'joined', id: msg.id, room: msg.room, peer: 'me', peers: [], seq: 1, resume: '' }));
    } else if (msg.type === 'signal') {
      signals.push(msg);
      const copies = signals.filter((m) => JSON.stringify(m.data) === JSON.stringify(msg.data)).length;
      ws.send(JSON.stringify(copies <= unavailableFirst
        ? { type: 'error', id: msg.id, code: 'unavailable', message: 'not confirmed in time' }
        : { type: 'ack', id: msg.id, seq: 10 + signals.length }));
    }
  }));
  return { url: `ws://127.0.0.1:${wss.address().port}/ws`, signals, close: () => new Promise((r) => wss.close(r)) };
}

test('signal() sends a request answered unavailable again with the same id, up to signalAttempts, then rejects', async () => {
  const server = await scriptedServer(2);
  try {
    const c = new SigstreamClient(server.url, { WebSocket, minBackoffMs: 20, signalAttempts: 3 });
    await c.connect();
    await c.join('scripted');
    assert.equal(await c.signal('other', { n: 1 }), 13);  // third copy acknowledged
    assert.equal(server.signals.length, 3);
    assert.equal(new Set(server.signals.map((m) => m.id)).size, 1, 'every copy has the same id');
    assert.deepEqual(server.signals.map((m) => m.data), [{ n: 1 }, { n: 1 }, { n: 1 }]);
    // The next signal is a new request: a new id, sent three times too.
    assert.equal(await c.signal('other', { n: 2 }), 16);
    const ids = [...new Set(server.signals.map((m) => m.id))];
    assert.equal(ids.length, 2);
    c.close();
    const once = new SigstreamClient(server.url, { WebSocket, signalAttempts: 1 });
    await once.connect();
    await once.join('scripted');
    await assert.rejects(once.signal('other', { n: 3 }), { code: 'unavailable' });
    for (const bad of [0, -1, 2.5, NaN, '3', null])
      assert.throws(() => new SigstreamClient(server.url, { WebSocket, signalAttempts: bad }), TypeError, String(bad));
    assert.equal(server.signals.filter((m) => m.data.n === 3).length, 1, 'signalAttempts 1: sent once');
    once.close();
  } finally {
    await server.close();
  }
});

test('the first connect rejects when nothing listens', async () => {
  const c = new SigstreamClient('ws://127.0.0.1:1/ws', { WebSocket });
  await assert.rejects(c.connect(), { code: 'disconnected' });
});

test('backoff: full jitter within [0, min(max, min * 2^attempt)]', () => {
  const opts = { minBackoffMs: 100, maxBackoffMs: 1000 };
  const caps = [100, 200, 400, 800, 1000, 1000, 1000];
  caps.forEach((cap, attempt) => {
    assert.equal(backoffDelay(attempt, { ...opts, random: () => 0 }), 0);
    assert.equal(backoffDelay(attempt, { ...opts, random: () => 0.5 }), cap / 2);
    const top = backoffDelay(attempt, { ...opts, random: () => 0.999999 });
    assert.ok(top <= cap && top >= cap - 1, `attempt ${attempt}: ${top} near ${cap}`);
  });
  assert.equal(backoffDelay(1e6, { ...opts, random: () => 0.5 }), 500, 'huge attempts stay capped');
  for (let attempt = 0; attempt < 30; attempt++) {
    const d = backoffDelay(attempt, opts);
    assert.ok(d >= 0 && d <= Math.min(1000, 100 * 2 ** attempt));
  }
  // Defaults: 250 ms doubling up to 10 s.
  assert.equal(backoffDelay(0, { random: () => 0.5 }), 125);
  assert.equal(backoffDelay(10, { random: () => 0.5 }), 5000);
});

test('every instance serves the module with its JavaScript media type', async () => {
  const want = fs.readFileSync(path.join(WEB_ROOT, 'sigstream.js'), 'utf8');
  for (const url of [...cluster.instances.map((i) => i.httpUrl), cluster.httpUrl]) {
    const res = await httpGet(`${url}/sigstream.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/javascript/);
    assert.equal(res.body, want);
  }
  const dts = await httpGet(`${cluster.httpUrl}/sigstream.d.ts`);
  assert.equal(dts.status, 200);
});

test('reconnects through HAProxy after its instance is killed, resumes as the same peer with what it missed, and can signal', async (t) => {
  const c2 = await startCluster({ instances: 2, env, t });
  const seen = [];
  const sent = [];
  const a = await client(c2.url, {
    WebSocket: recordingWebSocket(seen, sent), reconnect: true, minBackoffMs: 50, maxBackoffMs: 500,
  });
  const ja = await a.join('lib-reconnect', { name: 'ana' });
  const first = seen[0];
  assert.ok(['i1', 'i2'].includes(first), `reached ${first}`);
  const other = first === 'i1' ? 'i2' : 'i1';
  const b = await client(c2.instance(other).url);
  const aSawB = nextEvent(a, 'peer-joined', 10_000);
  const jb = await b.join('lib-reconnect', { name: 'bo' });
  assert.deepEqual(jb.peers.map((p) => p.peer), [ja.peer]);
  // a has had b's join before its instance dies: b is then in the membership
  // as of the seq a resumes from (had it not, b's join would come in the
  // replay instead).
  assert.equal((await aSawB).peer, jb.peer);

  const events = [];
  for (const type of ['close', 'reconnecting', 'reconnected']) a.addEventListener(type, () => events.push(type));
  const reconnecting = nextEvent(a, 'reconnecting', 5000);
  const reconnected = nextEvent(a, 'reconnected', 20_000);
  const bSeesAny = [];
  for (const type of ['peer-joined', 'peer-left']) b.addEventListener(type, (ev) => bSeesAny.push(ev.detail));
  // Every signal a gets from here on: the one sent below may come before
  // b's own acknowledgement of it does.
  const aSignals = [];
  a.addEventListener('signal', (ev) => aSignals.push(ev.detail));
  await c2.stopInstance(first, 'SIGKILL');
  // Sent once a's instance is gone: the resume's replay brings it, or, if a
  // has resumed already (within a few ms on a quiet machine), it comes live.
  const whileAway = await b.signal(ja.peer, { while: 'away' });
  const gotMissed = waitFor(() => aSignals.some((m) => m.seq === whileAway),
    { timeoutMs: 20_000, what: 'the signal sent after a\'s instance died' })
    .then(() => aSignals.find((m) => m.seq === whileAway));

  const r1 = await reconnecting;
  assert.equal(r1.attempt, 0);
  assert.ok(r1.delayMs >= 0 && r1.delayMs <= 50);
  const rj = await reconnected;
  assert.equal(seen.at(-1), other, 'HAProxy sent the client to the surviving instance');
  assert.equal(events[0], 'close');
  assert.ok(events.indexOf('reconnecting') < events.indexOf('reconnected'));
  assert.equal(rj.room, 'lib-reconnect');
  assert.equal(rj.peer, ja.peer, 'the same peer id: the client resumed');
  assert.equal(rj.resumed, true);
  assert.equal(a.peer, rj.peer);
  assert.ok(rj.peers.some((p) => p.peer === jb.peer), 'the peer that stayed is in the list');
  assert.deepEqual((await gotMissed).data, { while: 'away' }, 'the signal sent while away arrives');
  assert.equal(aSignals.filter((m) => m.seq === whileAway).length, 1, 'once');
  assert.deepEqual(bSeesAny, [], 'b saw a neither leave nor join');
  const joins = sent.filter((m) => m.type === 'join');
  assert.equal(joins.length, 2);
  const { last_seq: lastSeq, ...rejoin } = joins[1];
  assert.deepEqual({ ...rejoin, id: undefined }, { type: 'join', room: 'lib-reconnect', meta: { name: 'ana' }, resume: ja.resume, id: undefined },
    'the re-join carries the token');
  assert.ok(lastSeq >= ja.seq && lastSeq < whileAway, `and the seq of the last event the client had (${lastSeq})`);

  // Signals go both ways again.
  const gotB = nextEvent(b, 'signal', 5000, (m) => m.from === rj.peer);
  const seq = await a.signal(jb.peer, { after: 'reconnect' });
  assert.deepEqual(await gotB, { type: 'signal', from: rj.peer, to: jb.peer, data: { after: 'reconnect' }, seq });
  const gotA = nextEvent(a, 'signal');
  await b.signal(rj.peer, 'welcome back');
  assert.equal((await gotA).data, 'welcome back');

  // No reconnect after an explicit close.
  let again = false;
  a.addEventListener('reconnecting', () => { again = true; });
  a.close();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(again, false);
  b.close();
});
