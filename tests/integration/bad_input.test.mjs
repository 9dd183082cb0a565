// Bad input (issue 2, "Bad input: each case has a test"): every malformed or
// hostile request gets docs/protocol.md's error code (or close code), the
// connection carries on where the protocol says so, and no other peer, room
// or instance notices anything.
//
// One cluster (2 instances, Redis, HAProxy) for the whole file. A witness
// pair of peers, one on each instance, exchanges signals before, during and
// after the abuse; at the end the stream must hold exactly the witness
// events, and rooms touched only by rejected requests must hold none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet, pidAlive, sleep } from '../lib/cluster.mjs';
import { roomHistory as history } from '../lib/stream.mjs';

const T = 10_000; // bound of every single wait for a reply or event (shared 2-core machine)
const QUIET_MS = 1_500; // how long "nothing else arrives" is watched
const CLOSE_WAIT_MS = 10_000;

const DATA_LIMIT = 64 * 1024; // max-data-bytes default, serialized
const META_LIMIT = 4 * 1024; // max-meta-bytes default, serialized
const FRAME_LIMIT = 80 * 1024; // max-frame-bytes default

// --- helpers ----------------------------------------------------------------

const show = (frame) => {
  const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
  return text.length > 120 ? `${text.slice(0, 117)}... (${text.length} chars)` : text;
};

/**
 * Send `frame` (a raw string, sent as-is) and expect an `error` with `code`.
 * `id`: the id the error must echo; undefined: the error must carry no id.
 */
async function refused(client, frame, code, { id } = {}) {
  client.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  const err = await client.next('error', T);
  assert.equal(err.code, code, `${show(frame)} -> ${JSON.stringify(err)}`);
  assert.equal(typeof err.message, 'string');
  if (id === undefined) assert.equal('id' in err, false, `${show(frame)}: unexpected id in ${JSON.stringify(err)}`);
  else assert.deepEqual(err.id, id, `${show(frame)}: id not echoed in ${JSON.stringify(err)}`);
  assert.ok(client.isOpen, `${show(frame)}: the connection closed (${JSON.stringify(client.closeInfo)})`);
  return err;
}

/** The connection still works: a valid request gets its normal answer. */
async function stillServes(client) {
  assert.ok(client.isOpen, `connection closed: ${JSON.stringify(client.closeInfo)}`);
  const reply = await client.request({ type: 'leave' }, T);
  // Not in a room: the protocol's answer to a well-formed leave.
  assert.equal(reply.type, 'error', JSON.stringify(reply));
  assert.equal(reply.code, 'not-in-room', JSON.stringify(reply));
}

/** Resolves the close info, or fails after a bounded wait. */
async function closedWithin(client, ms = CLOSE_WAIT_MS) {
  let timer;
  const info = await Promise.race([
    client.closed,
    new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); }),
  ]);
  clearTimeout(timer);
  assert.ok(info, `connection still open ${ms} ms later`);
  return info;
}

/** Nothing beyond what was consumed arrives within QUIET_MS, on every client. */
async function assertQuiet(clients, what) {
  await sleep(QUIET_MS);
  for (const [name, c] of Object.entries(clients)) {
    const extra = c.drain();
    assert.deepEqual(extra, [], `${name} received unexpected messages ${what}: ${JSON.stringify(extra)}`);
  }
}

async function joinRoom(url, room, meta) {
  const c = await connect(url, { timeoutMs: T });
  const req = { type: 'join', room };
  if (meta !== undefined) req.meta = meta;
  const joined = await c.request(req, T);
  assert.equal(joined.type, 'joined', `join ${JSON.stringify(room)}: ${JSON.stringify(joined)}`);
  c.peer = joined.peer;
  c.room = room;
  c.joined = joined;
  return c;
}

const utf8len = (s) => Buffer.byteLength(s, 'utf8');

// ---------------------------------------------------------------------------

test('bad input is refused with the protocol code and nobody else notices', async (t) => {
  const cluster = await startCluster({ instances: 2, redis: true, haproxy: true, t });
  const [url1, url2] = cluster.instanceUrls;
  const viaLb = cluster.url;
  const openClients = [];
  t.after(async () => { await Promise.all(openClients.map((c) => c.close().catch(() => {}))); });
  const track = (c) => { openClients.push(c); return c; };
  const pidsAtStart = cluster.instances.map((i) => i.pid);

  // Rooms that only ever see refused requests: at the end they must have no events.
  const untouchedRooms = new Set();

  // --- the witness pair -------------------------------------------------------
  const WITNESS = 'witness';
  const witnessEvents = []; // what the stream must hold for the witness room, in order
  const wa = track(await joinRoom(url1, WITNESS, { who: 'wa' }));
  const wb = track(await joinRoom(url2, WITNESS, { who: 'wb' }));
  assert.equal(wa.instance, 'i1');
  assert.equal(wb.instance, 'i2');
  assert.deepEqual(wa.joined.peers, []);
  assert.deepEqual(wb.joined.peers, [{ peer: wa.peer, meta: { who: 'wa' }, instance: 'i1' }]);
  const waSawWb = await wa.next('peer-joined', T);
  assert.deepEqual(waSawWb, { type: 'peer-joined', peer: wb.peer, meta: { who: 'wb' }, instance: 'i2', seq: wb.joined.seq });
  witnessEvents.push({ kind: 'join', peer: wa.peer, meta: { who: 'wa' }, seq: wa.joined.seq });
  witnessEvents.push({ kind: 'join', peer: wb.peer, meta: { who: 'wb' }, seq: wb.joined.seq });

  let round = 0;
  async function witnessExchange(label) {
    round++;
    // wa -> wb, addressed
    const d1 = { label, round, dir: 'a->b' };
    const ack1 = await wa.request({ type: 'signal', to: wb.peer, data: d1 }, T);
    assert.equal(ack1.type, 'ack', JSON.stringify(ack1));
    const got1 = await wb.next('signal', T);
    assert.deepEqual(got1, { type: 'signal', from: wa.peer, to: wb.peer, data: d1, seq: ack1.seq });
    witnessEvents.push({ kind: 'signal', from: wa.peer, to: wb.peer, data: d1, seq: ack1.seq });
    // wb -> everyone else (wa), broadcast
    const d2 = { label, round, dir: 'b->*' };
    const ack2 = await wb.request({ type: 'signal', data: d2 }, T);
    assert.equal(ack2.type, 'ack', JSON.stringify(ack2));
    assert.ok(ack2.seq > ack1.seq);
    const got2 = await wa.next('signal', T);
    assert.deepEqual(got2, { type: 'signal', from: wb.peer, data: d2, seq: ack2.seq });
    witnessEvents.push({ kind: 'signal', from: wb.peer, data: d2, seq: ack2.seq });
    // Nothing but that reached either witness.
    await assertQuiet({ wa, wb }, `around witness exchange '${label}'`);
  }

  await t.test('witness pair exchanges signals across instances before the abuse', async () => {
    await witnessExchange('before');
  });

  // --- malformed frames -------------------------------------------------------

  await t.test('not JSON: bad-request, connection stays open', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    for (const frame of ['{not json', 'hello', '', ' ', '{"type":"join",', '{"type":"leave"}{"type":"leave"}',
      '{"type":"leave"} trailing', "{'type':'leave'}", '{"type":"join","room":"x",}']) {
      await refused(c, frame, 'bad-request');
    }
    await stillServes(c);
  });

  await t.test('JSON that is not an object: bad-request', async () => {
    const c = track(await connect(url2, { timeoutMs: T }));
    for (const frame of ['[]', '[{"type":"leave"}]', '42', '-1.5e3', '"join"', '"{\\"type\\":\\"leave\\"}"',
      'null', 'true', 'false']) {
      await refused(c, frame, 'bad-request');
    }
    await stillServes(c);
  });

  await t.test('JSON nested far too deep: bad-request, the server survives', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    const depth = 20_000; // 40 KB frame: under the transport limit
    await refused(c, `${'['.repeat(depth)}${']'.repeat(depth)}`, 'bad-request');
    await refused(c, `{"type":"signal","data":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`, 'bad-request');
    await stillServes(c);
  });

  await t.test('missing type: bad-request (id echoed)', async () => {
    const c = track(await connect(url2, { timeoutMs: T }));
    await refused(c, '{}', 'bad-request');
    await refused(c, { room: 'rejected-missing-type' }, 'bad-request');
    await refused(c, { room: 'rejected-missing-type', id: 'm1' }, 'bad-request', { id: 'm1' });
    untouchedRooms.add('rejected-missing-type');
    await stillServes(c);
  });

  await t.test('type not a string: bad-request', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    for (const type of [1, 0, null, true, ['join'], { join: true }]) {
      await refused(c, { type, room: 'rejected-type-not-string' }, 'bad-request');
    }
    untouchedRooms.add('rejected-type-not-string');
    await stillServes(c);
  });

  await t.test('unknown type: bad-request, then a valid request on the same connection works', async () => {
    const c = track(await connect(url2, { timeoutMs: T }));
    for (const type of ['dance', 'JOIN', 'Join', 'join ', '', 'peer-joined', 'joined', 'ack', 'error',
      'x'.repeat(500), '\u00e9\u{1F389}']) {
      await refused(c, { type, room: 'rejected-unknown-type' }, 'bad-request');
    }
    untouchedRooms.add('rejected-unknown-type');
    // A valid request right after is served normally.
    const joined = await c.request({ type: 'join', room: 'after-unknown-type' }, T);
    assert.equal(joined.type, 'joined', JSON.stringify(joined));
    assert.equal(joined.room, 'after-unknown-type');
    assert.deepEqual(joined.peers, []);
    const ack = await c.request({ type: 'leave' }, T);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.ok(ack.seq > joined.seq);
  });

  await t.test('join with missing or mistyped fields: bad-request, no event stored', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    await refused(c, { type: 'join' }, 'bad-request');
    await refused(c, { type: 'join', meta: { a: 1 } }, 'bad-request');
    for (const room of [5, null, true, ['r'], { name: 'r' }]) {
      await refused(c, { type: 'join', room }, 'bad-request');
    }
    for (const meta of ['x', 5, [1, 2], true]) {
      await refused(c, { type: 'join', room: 'rejected-meta-type', meta }, 'bad-request');
    }
    untouchedRooms.add('rejected-meta-type');
    for (const token of [5, null, { t: 'x' }, ['x'], false]) {
      await refused(c, { type: 'join', room: 'rejected-token-type', token }, 'bad-request');
    }
    untouchedRooms.add('rejected-token-type');
    for (const resume of [5, { r: 1 }]) {
      await refused(c, { type: 'join', room: 'rejected-resume-type', resume }, 'bad-request');
    }
    untouchedRooms.add('rejected-resume-type');
    // The connection was never put in a room by any of these.
    await stillServes(c);
  });

  await t.test('signal with missing data, non-string or empty to: bad-request, the room hears nothing', async () => {
    const room = 'signal-fields';
    const s1 = track(await joinRoom(url1, room));
    const s2 = track(await joinRoom(url2, room));
    assert.deepEqual((await s1.next('peer-joined', T)).peer, s2.peer);
    await refused(s1, { type: 'signal', to: s2.peer }, 'bad-request');
    await refused(s1, { type: 'signal' }, 'bad-request');
    for (const to of [5, null, true, [s2.peer], { peer: s2.peer }]) {
      await refused(s1, { type: 'signal', to, data: { x: 1 } }, 'bad-request');
    }
    await refused(s1, { type: 'signal', to: '', data: { x: 1 } }, 'bad-request');
    await refused(s1, { type: 'signal', to: '', data: { x: 1 }, id: 'e1' }, 'bad-request', { id: 'e1' });
    // Still in the room: a valid signal goes through, and is the first thing s2 sees.
    const ack = await s1.request({ type: 'signal', to: s2.peer, data: 'marker' }, T);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const got = await s2.next(() => true, T);
    assert.deepEqual(got, { type: 'signal', from: s1.peer, to: s2.peer, data: 'marker', seq: ack.seq });
    await assertQuiet({ s1, s2 }, 'after refused signals');
    const events = await history(cluster, room);
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'signal'],
      `stored: ${JSON.stringify(events)}`);
  });

  await t.test('binary frame: bad-request, connection stays open, nothing joined', async () => {
    const c = track(await connect(url2, { timeoutMs: T }));
    c.ws.send(Buffer.from(JSON.stringify({ type: 'join', room: 'rejected-binary' })), { binary: true });
    const err = await c.next('error', T);
    assert.equal(err.code, 'bad-request', JSON.stringify(err));
    c.ws.send(Buffer.from([0, 1, 2, 0xff]), { binary: true });
    assert.equal((await c.next('error', T)).code, 'bad-request');
    untouchedRooms.add('rejected-binary');
    await stillServes(c); // also proves the binary join did not put it in a room
    // And a real join works afterwards on the same connection.
    const joined = await c.request({ type: 'join', room: 'after-binary' }, T);
    assert.equal(joined.type, 'joined', JSON.stringify(joined));
    assert.equal((await c.request({ type: 'leave' }, T)).type, 'ack');
  });

  await t.test('data over 64 KiB: too-large and stays open; exactly 64 KiB is delivered', async () => {
    const room = 'data-limit';
    const s1 = track(await joinRoom(url1, room));
    const s2 = track(await joinRoom(url2, room));
    await s1.next('peer-joined', T);
    const over = 'x'.repeat(DATA_LIMIT - 1); // serialized: DATA_LIMIT + 1 bytes with the quotes
    assert.equal(JSON.stringify(over).length, DATA_LIMIT + 1);
    await refused(s1, { type: 'signal', to: s2.peer, data: over, id: 'big' }, 'too-large', { id: 'big' });
    await refused(s1, { type: 'signal', data: { blob: 'y'.repeat(DATA_LIMIT) } }, 'too-large');
    // Exactly at the limit: accepted and delivered intact.
    const atLimit = 'z'.repeat(DATA_LIMIT - 2);
    assert.equal(JSON.stringify(atLimit).length, DATA_LIMIT);
    const ack = await s1.request({ type: 'signal', to: s2.peer, data: atLimit }, T);
    assert.equal(ack.type, 'ack', `exactly ${DATA_LIMIT} bytes of data: ${show(ack)}`);
    const got = await s2.next(() => true, T);
    assert.equal(got.type, 'signal', show(got));
    assert.equal(got.from, s1.peer);
    assert.equal(got.seq, ack.seq);
    assert.equal(got.data, atLimit);
    await assertQuiet({ s1, s2 }, 'after the data limit checks');
    const events = await history(cluster, room);
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'signal']);
    assert.equal(events[2].data, atLimit);
  });

  await t.test('meta over 4 KiB: too-large, nothing joined; exactly 4 KiB is accepted', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    const metaOf = (bytes) => ({ k: 'm'.repeat(bytes - '{"k":""}'.length) });
    assert.equal(JSON.stringify(metaOf(META_LIMIT + 1)).length, META_LIMIT + 1);
    await refused(c, { type: 'join', room: 'rejected-meta-size', meta: metaOf(META_LIMIT + 1), id: 7 },
      'too-large', { id: 7 });
    await refused(c, { type: 'join', room: 'rejected-meta-size', meta: metaOf(3 * META_LIMIT) }, 'too-large');
    untouchedRooms.add('rejected-meta-size');
    await stillServes(c);
    // Exactly at the limit, in a room with an observer on the other instance.
    const obs = track(await joinRoom(url2, 'meta-limit'));
    const meta = metaOf(META_LIMIT);
    const joined = await c.request({ type: 'join', room: 'meta-limit', meta }, T);
    assert.equal(joined.type, 'joined', show(joined));
    assert.deepEqual(joined.peers, [{ peer: obs.peer, meta: {}, instance: obs.instance }]);
    const pj = await obs.next('peer-joined', T);
    assert.deepEqual(pj, { type: 'peer-joined', peer: joined.peer, meta, instance: c.instance, seq: joined.seq });
    assert.equal((await c.request({ type: 'leave' }, T)).type, 'ack');
    assert.equal((await obs.next('peer-left', T)).reason, 'leave');
  });

  await t.test('a frame just under the transport limit is read (bad-request for its content), connection stays open', async () => {
    const c = track(await connect(url2, { timeoutMs: T }));
    const head = '{"type":"frame-limit","pad":"';
    const frame = `${head}${'p'.repeat(FRAME_LIMIT - head.length - 2)}"}`;
    assert.equal(frame.length, FRAME_LIMIT);
    await refused(c, frame, 'bad-request');
    await stillServes(c);
  });

  await t.test('a frame over the transport limit (80 KiB): close 1009; the room only sees a disconnect', async () => {
    const room = 'frame-over';
    const obs = track(await joinRoom(url1, room));
    const big = track(await joinRoom(url2, room));
    assert.equal((await obs.next('peer-joined', T)).peer, big.peer);
    big.send({ type: 'signal', to: obs.peer, data: 'b'.repeat(FRAME_LIMIT + 1024) });
    const info = await closedWithin(big);
    assert.equal(info.code, 1009, `close: ${JSON.stringify(info)}`);
    const left = await obs.next(() => true, T);
    assert.equal(left.type, 'peer-left', `observer got ${show(left)} instead of peer-left`);
    assert.equal(left.peer, big.peer);
    assert.equal(left.reason, 'disconnect');
    await assertQuiet({ obs }, 'after the oversized frame');
    const events = await history(cluster, room);
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'leave'], JSON.stringify(events.map(show)));
  });

  await t.test('frames of 1 MiB and 16 MiB, straight to an instance and through HAProxy: close 1009, never a reset', async () => {
    // Far past the limit, the close goes before the rest of the frame is
    // read; the instance must still read and drop it, or the kernel resets
    // the connection and the client sees 1006.
    for (const [size, how] of [[1 << 20, 'direct'], [1 << 20, 'haproxy'], [16 << 20, 'direct'], [16 << 20, 'haproxy']]) {
      const room = `frame-huge-${size}-${how}`;
      const obs = track(await joinRoom(url1, room));
      const big = track(await joinRoom(how === 'direct' ? url2 : viaLb, room));
      assert.equal((await obs.next('peer-joined', T)).peer, big.peer);
      big.send({ type: 'signal', to: obs.peer, data: 'h'.repeat(size) });
      const info = await closedWithin(big);
      assert.equal(info.code, 1009, `${size} bytes ${how}: close ${JSON.stringify(info)}`);
      const left = await obs.next(() => true, T);
      assert.equal(left.type, 'peer-left', `observer got ${show(left)} instead of peer-left`);
      assert.equal(left.reason, 'disconnect');
      assert.ok(obs.isOpen, `the observer's connection closed: ${JSON.stringify(obs.closeInfo)}`);
      const events = await history(cluster, room);
      assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'leave'], JSON.stringify(events.map(show)));
    }
  });

  await t.test('invalid UTF-8 in a text frame: close 1007; the room only sees a disconnect', async () => {
    const room = 'bad-utf8';
    const obs = track(await joinRoom(url2, room));
    const bad = track(await joinRoom(url1, room));
    assert.equal((await obs.next('peer-joined', T)).peer, bad.peer);
    // {"type":"signal","data":"<0xFF 0xFE>"} as a *text* frame.
    const raw = Buffer.concat([Buffer.from('{"type":"signal","data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    bad.ws.send(raw, { binary: false });
    const info = await closedWithin(bad);
    assert.equal(info.code, 1007, `close: ${JSON.stringify(info)}`);
    const left = await obs.next(() => true, T);
    assert.equal(left.type, 'peer-left', `observer got ${show(left)} instead of peer-left`);
    assert.equal(left.peer, bad.peer);
    assert.equal(left.reason, 'disconnect');
    await assertQuiet({ obs }, 'after the invalid UTF-8 frame');
    const events = await history(cluster, room);
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'leave']);

    // Not joined, other malformed sequences: truncated multi-byte, overlong '/', UTF-16 surrogate.
    for (const bytes of [[0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
      const c = track(await connect(url1, { timeoutMs: T }));
      const frame = Buffer.concat([Buffer.from('{"type":"join","room":"'), Buffer.from(bytes), Buffer.from('"}')]);
      c.ws.send(frame, { binary: false });
      const closed = await closedWithin(c);
      assert.equal(closed.code, 1007, `bytes ${Buffer.from(bytes).toString('hex')}: ${JSON.stringify(closed)}`);
    }
    // A lone surrogate written as a JSON escape is valid UTF-8 on the wire but
    // not a Unicode string: bad-request, the connection stays open.
    const c = track(await connect(url2, { timeoutMs: T }));
    await refused(c, '{"type":"join","room":"\\ud800"}', 'bad-request');
    await refused(c, '{"type":"join","room":"a\\udc00b"}', 'bad-request');
    await stillServes(c);
  });

  await t.test('witness pair still fine after the transport-level abuse', async () => {
    await witnessExchange('middle');
  });

  // --- room names -------------------------------------------------------------

  await t.test('room name empty, 201 bytes: invalid-room; 200 bytes: joined', async () => {
    const c = track(await connect(viaLb, { timeoutMs: T }));
    await refused(c, { type: 'join', room: '' }, 'invalid-room');
    await refused(c, { type: 'join', room: '', id: 'e' }, 'invalid-room', { id: 'e' });
    const ascii201 = 'r'.repeat(201);
    const multi201 = `a${'\u00e9'.repeat(100)}`; // 1 + 100 * 2 bytes
    const emoji201 = `${'\u{1F389}'.repeat(50)}x`; // 50 * 4 + 1 bytes
    for (const room of [ascii201, multi201, emoji201]) {
      assert.equal(utf8len(room), 201);
      await refused(c, { type: 'join', room }, 'invalid-room');
    }
    await stillServes(c);
    const ascii200 = 'r'.repeat(200);
    const multi200 = '\u00e9'.repeat(100);
    const emoji200 = '\u{1F389}'.repeat(50);
    for (const room of [ascii200, multi200, emoji200]) {
      assert.equal(utf8len(room), 200);
      const joined = await c.request({ type: 'join', room }, T);
      assert.equal(joined.type, 'joined', `${utf8len(room)}-byte room: ${show(joined)}`);
      assert.equal(joined.room, room);
      assert.deepEqual(joined.peers, []);
      const ack = await c.request({ type: 'leave' }, T);
      assert.equal(ack.type, 'ack', show(ack));
      const events = await history(cluster, room);
      assert.deepEqual(events.map((e) => [e.kind, e.room, e.peer]),
        [['join', room, joined.peer], ['leave', room, joined.peer]]);
    }
  });

  await t.test('names built to attack subjects are valid, distinct rooms', async () => {
    // Plain names first, wildcard-looking ones last: were any of them mapped
    // to a wildcard or to another room's subject, a later joiner would see
    // earlier peers, or receive their events.
    const names = [
      'a', 'b', 'A', 'a.b', 'a b', 'a\tb', 'a/b', 'a\u0000b', 'YQ', 'sigstream.room.YQ.m',
      '\u{1F389}', '\u{1F389}.\u{1F38A}', 'rooms.>', 'a.*', 'sigstream.room.>', 'sigstream.live.>',
      'sigstream.>', '*', '>',
    ];
    assert.equal(new Set(names).size, names.length);
    const pairs = [];
    for (const room of names) {
      const meta = { room };
      const p1 = track(await joinRoom(url1, room, meta));
      const p2 = track(await joinRoom(url2, room, meta));
      assert.equal(p1.joined.room, room);
      assert.equal(p2.joined.room, room);
      assert.deepEqual(p1.joined.peers, [], `first peer of ${JSON.stringify(room)} sees others: ${show(p1.joined)}`);
      assert.deepEqual(p2.joined.peers, [{ peer: p1.peer, meta, instance: p1.instance }],
        `second peer of ${JSON.stringify(room)}: ${show(p2.joined)}`);
      const pj = await p1.next('peer-joined', T);
      assert.deepEqual(pj, { type: 'peer-joined', peer: p2.peer, meta, instance: p2.instance, seq: p2.joined.seq });
      pairs.push({ room, p1, p2 });
    }

    // Every peer broadcasts, and sends one addressed signal to its partner.
    await Promise.all(pairs.flatMap(({ room, p1, p2 }) => [
      p1.request({ type: 'signal', data: { room, from: 'p1' } }, T),
      p2.request({ type: 'signal', data: { room, from: 'p2' } }, T),
      p1.request({ type: 'signal', to: p2.peer, data: { room, to: 'p2' } }, T),
    ]).map(async (reply) => assert.equal((await reply).type, 'ack', show(await reply))));
    for (const { room, p1, p2 } of pairs) {
      const a = await p1.next('signal', T);
      assert.deepEqual([a.from, a.data], [p2.peer, { room, from: 'p2' }], `${JSON.stringify(room)}: ${show(a)}`);
      const b1 = await p2.next((m) => m.type === 'signal' && m.to === undefined, T);
      assert.deepEqual([b1.from, b1.data], [p1.peer, { room, from: 'p1' }], `${JSON.stringify(room)}: ${show(b1)}`);
      const b2 = await p2.next((m) => m.type === 'signal' && m.to === p2.peer, T);
      assert.deepEqual([b2.from, b2.data], [p1.peer, { room, to: 'p2' }], `${JSON.stringify(room)}: ${show(b2)}`);
    }

    // A visitor walks through every room but '>' and '*' (join, signal, leave):
    // the pair in that room sees it; the pairs in '>' and '*' see nothing.
    const visitor = track(await connect(url1, { timeoutMs: T }));
    for (const { room, p1, p2 } of pairs) {
      if (room === '>' || room === '*') continue;
      const joined = await visitor.request({ type: 'join', room }, T);
      assert.equal(joined.type, 'joined', show(joined));
      assert.deepEqual(joined.peers.map((p) => p.peer), [p1.peer, p2.peer], `${JSON.stringify(room)}: ${show(joined)}`);
      assert.equal((await visitor.request({ type: 'signal', data: 'visit' }, T)).type, 'ack');
      assert.equal((await visitor.request({ type: 'leave' }, T)).type, 'ack');
      for (const p of [p1, p2]) {
        assert.equal((await p.next('peer-joined', T)).peer, joined.peer);
        assert.deepEqual([(await p.next('signal', T)).data], ['visit']);
        assert.equal((await p.next('peer-left', T)).peer, joined.peer);
      }
    }
    const quiet = {};
    for (const { room, p1, p2 } of pairs) { quiet[`${JSON.stringify(room)}/p1`] = p1; quiet[`${JSON.stringify(room)}/p2`] = p2; }
    await assertQuiet(quiet, 'from rooms other than their own');

    // The stream agrees: each room holds its own events only, under its own name.
    for (const { room, p1, p2 } of pairs) {
      if (room.includes('\u0000')) continue; // cannot be passed on a command line
      const events = await history(cluster, room);
      assert.ok(events.every((e) => e.room === room), `${JSON.stringify(room)}: ${JSON.stringify(events)}`);
      const peers = new Set(events.map((e) => e.peer ?? e.from));
      const expectedCount = room === '>' || room === '*' ? 5 : 8;
      assert.equal(events.length, expectedCount, `${JSON.stringify(room)}: ${JSON.stringify(events)}`);
      assert.ok(peers.has(p1.peer) && peers.has(p2.peer));
    }
  });

  // --- state errors -------------------------------------------------------------

  await t.test('signal before join: not-in-room', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    await refused(c, { type: 'signal', data: { x: 1 } }, 'not-in-room');
    await refused(c, { type: 'signal', to: wa.peer, data: { x: 1 }, id: 's1' }, 'not-in-room', { id: 's1' });
    await stillServes(c);
    // The witness it named got nothing.
    await assertQuiet({ wa, wb }, 'after a signal from a peer outside the room');
  });

  await t.test('join twice: already-in-room; the peer stays in its first room', async () => {
    const obs = track(await joinRoom(url1, 'twice'));
    const c = track(await joinRoom(url2, 'twice'));
    await obs.next('peer-joined', T);
    await refused(c, { type: 'join', room: 'twice' }, 'already-in-room');
    await refused(c, { type: 'join', room: 'rejected-second-join', id: 2 }, 'already-in-room', { id: 2 });
    untouchedRooms.add('rejected-second-join');
    // Still a member of 'twice': its signal reaches the observer, and that is
    // the first thing the observer sees (no join or leave happened).
    assert.equal((await c.request({ type: 'signal', data: 'still here' }, T)).type, 'ack');
    const got = await obs.next(() => true, T);
    assert.deepEqual([got.type, got.from, got.data], ['signal', c.peer, 'still here']);
    await assertQuiet({ obs, c }, 'after the second join');
    const events = await history(cluster, 'twice');
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'signal']);
  });

  await t.test('leave before join, and leave twice: not-in-room; signal after leave: not-in-room', async () => {
    const c = track(await connect(url2, { timeoutMs: T }));
    await refused(c, { type: 'leave' }, 'not-in-room');
    await refused(c, { type: 'leave', id: 'l1' }, 'not-in-room', { id: 'l1' });
    const joined = await c.request({ type: 'join', room: 'leave-twice' }, T);
    assert.equal(joined.type, 'joined');
    assert.equal((await c.request({ type: 'leave' }, T)).type, 'ack');
    await refused(c, { type: 'leave', id: 'l2' }, 'not-in-room', { id: 'l2' });
    await refused(c, { type: 'signal', data: 1, id: 'l3' }, 'not-in-room', { id: 'l3' });
    const events = await history(cluster, 'leave-twice');
    assert.deepEqual(events.map((e) => e.kind), ['join', 'leave']);
  });

  await t.test('to naming a peer of another room, or the sender itself: unknown-peer; nobody receives it', async () => {
    const x = track(await joinRoom(url1, 'room-x'));
    const y = track(await joinRoom(url2, 'room-y'));
    const z = track(await joinRoom(url1, 'room-y'));
    assert.equal((await y.next('peer-joined', T)).peer, z.peer);
    await refused(x, { type: 'signal', to: y.peer, data: 'psst', id: 'u1' }, 'unknown-peer', { id: 'u1' });
    await refused(x, { type: 'signal', to: wa.peer, data: 'psst' }, 'unknown-peer');
    await refused(x, { type: 'signal', to: x.peer, data: 'me' }, 'unknown-peer');
    await refused(x, { type: 'signal', to: 'p-no-such-peer', data: 'psst' }, 'unknown-peer');
    await refused(y, { type: 'signal', to: y.peer, data: 'me', id: 9 }, 'unknown-peer', { id: 9 });
    // A broadcast in room-x (alone there) reaches nobody in room-y.
    assert.equal((await x.request({ type: 'signal', data: 'to all of room-x' }, T)).type, 'ack');
    // A marker through room-y: the first thing y sees.
    assert.equal((await z.request({ type: 'signal', to: y.peer, data: 'marker' }, T)).type, 'ack');
    const got = await y.next(() => true, T);
    assert.deepEqual([got.type, got.from, got.data], ['signal', z.peer, 'marker']);
    await assertQuiet({ x, y, z, wa, wb }, 'after signals to foreign peers');
    assert.deepEqual((await history(cluster, 'room-y')).map((e) => e.kind), ['join', 'join', 'signal']);
    assert.deepEqual((await history(cluster, 'room-x')).map((e) => e.kind), ['join', 'signal']);
  });

  await t.test('request id is echoed on errors, string and number', async () => {
    const c = track(await connect(url1, { timeoutMs: T }));
    await refused(c, { type: 'bogus', id: 'abc-1' }, 'bad-request', { id: 'abc-1' });
    await refused(c, { type: 'bogus', id: 42 }, 'bad-request', { id: 42 });
    await refused(c, { type: 'bogus', id: 0 }, 'bad-request', { id: 0 });
    await refused(c, { type: 'bogus', id: -7 }, 'bad-request', { id: -7 });
    await refused(c, { type: 'bogus', id: 2.5 }, 'bad-request', { id: 2.5 });
    await refused(c, { type: 'bogus', id: '' }, 'bad-request', { id: '' });
    await refused(c, { type: 'bogus', id: 'quote"back\\slash\u{1F389}' }, 'bad-request', { id: 'quote"back\\slash\u{1F389}' });
    await refused(c, { id: 'no-type' }, 'bad-request', { id: 'no-type' });
    await refused(c, { type: 'join', room: '', id: 11 }, 'invalid-room', { id: 11 });
    await refused(c, { type: 'join', id: 'nr' }, 'bad-request', { id: 'nr' });
    await refused(c, { type: 'signal', data: 1, id: 'sig' }, 'not-in-room', { id: 'sig' });
    await refused(c, { type: 'leave', id: 12 }, 'not-in-room', { id: 12 });
    // An id that is neither a string nor a number is itself a bad request.
    for (const id of [{ a: 1 }, [1], true, null]) {
      await refused(c, { type: 'leave', id }, 'bad-request');
    }
    await stillServes(c);
  });

  await t.test('a client cannot make the service store an event claiming another sender', async () => {
    const room = 'forgery';
    const victim = track(await joinRoom(url1, room, { who: 'victim' }));
    // A forged peer id in the join is ignored: the server assigns the id.
    const forger = track(await connect(url2, { timeoutMs: T }));
    const joined = await forger.request({ type: 'join', room, peer: victim.peer, from: victim.peer, instance: 'i1' }, T);
    assert.equal(joined.type, 'joined', show(joined));
    assert.notEqual(joined.peer, victim.peer);
    forger.peer = joined.peer;
    assert.equal((await victim.next('peer-joined', T)).peer, forger.peer);
    const receiver = track(await joinRoom(url1, room, { who: 'receiver' }));
    await victim.next('peer-joined', T);
    await forger.next('peer-joined', T);

    // Signals with a forged `from` (and other stray fields), addressed and broadcast.
    const forged1 = { type: 'signal', to: receiver.peer, from: victim.peer, data: { claim: 'I am the victim' } };
    const ack1 = await forger.request(forged1, T);
    assert.equal(ack1.type, 'ack', show(ack1));
    const forged2 = { type: 'signal', from: victim.peer, peer: victim.peer, seq: 1, data: { claim: 'broadcast' } };
    const ack2 = await forger.request(forged2, T);
    assert.equal(ack2.type, 'ack', show(ack2));

    const r1 = await receiver.next('signal', T);
    assert.deepEqual(r1, { type: 'signal', from: forger.peer, to: receiver.peer, data: forged1.data, seq: ack1.seq });
    const r2 = await receiver.next('signal', T);
    assert.deepEqual(r2, { type: 'signal', from: forger.peer, data: forged2.data, seq: ack2.seq });
    const v2 = await victim.next('signal', T);
    assert.deepEqual(v2, { type: 'signal', from: forger.peer, data: forged2.data, seq: ack2.seq });
    await assertQuiet({ victim, receiver, forger }, 'after the forged signals');

    const events = await history(cluster, room);
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'join', 'signal', 'signal']);
    assert.equal(events[1].peer, forger.peer);
    assert.equal(events[1].instance, 'i2');
    const stored = events.filter((e) => e.kind === 'signal');
    assert.deepEqual(stored.map((e) => [e.seq, e.from, e.to, e.data]), [
      [ack1.seq, forger.peer, receiver.peer, forged1.data],
      [ack2.seq, forger.peer, undefined, forged2.data],
    ]);
  });

  // --- nobody noticed --------------------------------------------------------------

  await t.test('witness pair after the abuse: signals still flow, nothing extra arrived', async () => {
    await witnessExchange('after');
  });

  await t.test('the witness room holds exactly the witness events; refused-only rooms hold none', async () => {
    const events = await history(cluster, WITNESS);
    const stored = events.map((e) => {
      const out = { kind: e.kind, seq: e.seq };
      if (e.kind === 'join') Object.assign(out, { peer: e.peer, meta: e.meta });
      else if (e.kind === 'signal') {
        Object.assign(out, { from: e.from, data: e.data });
        if (e.to !== undefined) out.to = e.to;
      } else Object.assign(out, { peer: e.peer, reason: e.reason });
      return out;
    });
    assert.deepEqual(stored, witnessEvents);
    assert.ok(events.every((e) => e.room === WITNESS));
    assert.deepEqual(events.map((e) => e.instance),
      witnessEvents.map((e) => ((e.peer ?? e.from) === wa.peer ? 'i1' : 'i2')));
    // Every witness message ever received is accounted for.
    const kinds = (c) => c.messages.map((m) => m.type);
    assert.deepEqual(kinds(wa), ['joined', 'peer-joined', 'ack', 'signal', 'ack', 'signal', 'ack', 'signal']);
    assert.deepEqual(kinds(wb), ['joined', 'signal', 'ack', 'signal', 'ack', 'signal', 'ack']);

    for (const room of untouchedRooms) {
      assert.deepEqual(await history(cluster, room), [], `room ${JSON.stringify(room)} has events`);
    }
  });

  await t.test('both instances are the same processes as at the start, alive and ready', async () => {
    assert.deepEqual(cluster.instances.map((i) => i.pid), pidsAtStart);
    for (const inst of cluster.instances) {
      assert.ok(inst.alive && pidAlive(inst.pid), `${inst.id} is gone`);
      assert.equal((await httpGet(`${inst.httpUrl}/readyz`)).status, 200, `${inst.id} /readyz`);
    }
  });
});
