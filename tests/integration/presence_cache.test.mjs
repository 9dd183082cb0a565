// Redis presence cache (issue 2, "Redis presence cache"): Redis holds, per
// room, the member list and the stream sequence it reflects; a first join on
// an instance answers from it and follows the stream from there; where Redis
// has nothing, is behind, is ahead, or is unreachable, the instance replays
// the stream. Redis is never the truth.
//
// Key: sigstream:SIGSTREAM:room:<base64url(room), no padding>, a hash
// {seq, state}. One cluster for the file; every check uses its own room and,
// where a "new instance" is needed, one started for it (cluster.startInstance()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, httpGet, waitFor, sleep } from '../lib/cluster.mjs';
import { metricValue } from '../lib/metrics.mjs';
import { roomHistory as history } from '../lib/stream.mjs';

const T = 10_000; // bound of every wait for a reply or an event
const CACHE_WAIT_MS = 15_000; // bound of every wait for Redis to reflect something
const QUIET_MS = 1_000;

const cacheKey = (room) => `sigstream:SIGSTREAM:room:${Buffer.from(room, 'utf8').toString('base64url')}`;

const membershipEvents = (events) => events.filter((e) => e.kind === 'join' || e.kind === 'leave');

/** Members after folding the stored membership events: [{peer, meta}], oldest first. */
function foldMembers(events) {
  const members = [];
  for (const e of membershipEvents(events)) {
    if (e.kind === 'join') members.push({ peer: e.peer, meta: e.meta, instance: e.instance });
    else members.splice(members.findIndex((m) => m.peer === e.peer), 1);
  }
  return members;
}

/** One instance's room rebuild counters: {fromCache, byReplay, replayed}. */
async function metrics(inst) {
  const res = await httpGet(`${inst.httpUrl}/metrics`, { timeoutMs: 5000 });
  assert.equal(res.status, 200, `${inst.id} /metrics: HTTP ${res.status}`);
  const out = {
    fromCache: metricValue(res.body, 'sigstream_room_syncs_total', { source: 'cache' }),
    byReplay: metricValue(res.body, 'sigstream_room_syncs_total', { source: 'stream' }),
    replayed: metricValue(res.body, 'sigstream_replayed_events_total'),
  };
  for (const [name, value] of Object.entries(out))
    assert.ok(Number.isFinite(value), `${inst.id} /metrics has no ${name}:\n${res.body}`);
  return out;
}

function delta(b, a) {
  return { fromCache: a.fromCache - b.fromCache, byReplay: a.byReplay - b.byReplay, replayed: a.replayed - b.replayed };
}

async function join(url, room, meta) {
  const c = await connect(url, { timeoutMs: T });
  const joined = await c.request({ type: 'join', room, meta }, T);
  assert.equal(joined.type, 'joined', `join ${room}: ${JSON.stringify(joined)}`);
  assert.equal(joined.instance, c.instance, 'joined names the instance the peer is connected to');
  c.peer = joined.peer;
  c.meta = meta;
  c.joined = joined;
  return c;
}

async function leave(c) {
  const ack = await c.request({ type: 'leave' }, T);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  return ack.seq;
}

/** Every peer in `observers` gets `type` about `peer` (and nothing else in between). */
async function allSee(observers, type, peer, seq) {
  for (const o of observers) {
    const m = await o.next(() => true, T);
    assert.equal(m.type, type, `${o.peer} expected ${type} of ${peer}, got ${JSON.stringify(m)}`);
    assert.equal(m.peer, peer);
    if (seq !== undefined) assert.equal(m.seq, seq);
  }
}

async function quiet(clients) {
  await sleep(QUIET_MS);
  for (const c of clients) assert.deepEqual(c.drain(), [], `${c.peer} got unexpected messages`);
}

const entry = (c) => ({ peer: c.peer, meta: c.meta, instance: c.instance });

test('Redis presence cache: written with its sequence, used when right, never trusted blindly', async (t) => {
  const cluster = await startCluster({ instances: 2, redis: true, haproxy: true, t });
  const [i1, i2] = cluster.instances;
  const clients = [];
  const extraInstances = [];
  t.after(async () => { await Promise.all(clients.map((c) => c.close().catch(() => {}))); });
  const track = (c) => { clients.push(c); return c; };
  const redisSeq = async (room) => {
    const v = await cluster.redisCli('HGET', cacheKey(room), 'seq');
    return v === '' ? null : Number(v);
  };
  async function waitForCacheSeq(room, seq) {
    let last;
    try {
      await waitFor(async () => { last = await redisSeq(room); return last === seq; },
        { timeoutMs: CACHE_WAIT_MS, intervalMs: 100, what: `Redis ${cacheKey(room)} seq = ${seq}` });
    } catch (err) {
      err.message += ` (last seen: ${last})`;
      throw err;
    }
  }
  async function newInstance() {
    const inst = await cluster.startInstance();
    extraInstances.push(inst.id);
    return inst;
  }
  async function latestMembershipSeq(room) {
    const m = membershipEvents(await history(cluster, room));
    return m.at(-1).seq;
  }

  await t.test('(a) after joins and leaves the hash holds seq = the latest membership event', async () => {
    const room = 'cache-a';
    const a1 = track(await join(i1.url, room, { n: 1 }));
    const a2 = track(await join(i2.url, room, { n: 2 }));
    const a3 = track(await join(i1.url, room, { n: 3 }));
    await allSee([a1], 'peer-joined', a2.peer, a2.joined.seq);
    await allSee([a1, a2], 'peer-joined', a3.peer, a3.joined.seq);
    assert.equal(await latestMembershipSeq(room), a3.joined.seq);
    await waitForCacheSeq(room, a3.joined.seq);
    const leftSeq = await leave(a2);
    await allSee([a1, a3], 'peer-left', a2.peer, leftSeq);
    assert.equal(await latestMembershipSeq(room), leftSeq);
    await waitForCacheSeq(room, leftSeq);
    const fields = (await cluster.redisCli('HKEYS', cacheKey(room))).split('\n').sort();
    assert.deepEqual(fields, ['seq', 'state']);
    assert.notEqual(await cluster.redisCli('HSTRLEN', cacheKey(room), 'state'), '0');
    // Signals are not membership: the cached sequence does not move.
    const ack = await a1.request({ type: 'signal', data: 'hello' }, T);
    assert.equal(ack.type, 'ack');
    assert.ok(ack.seq > leftSeq);
    await a3.next('signal', T);
    await sleep(500);
    assert.equal(await redisSeq(room), leftSeq);
    assert.equal(await latestMembershipSeq(room), leftSeq);
  });

  await t.test('(b) FLUSHALL and SCRIPT FLUSH mid-run lose nothing; a later instance replays the right peers', async () => {
    const room = 'cache-b';
    const b1 = track(await join(i1.url, room, { n: 1 }));
    const b2 = track(await join(i2.url, room, { n: 2 }));
    await allSee([b1], 'peer-joined', b2.peer, b2.joined.seq);
    await waitForCacheSeq(room, b2.joined.seq);

    assert.equal(await cluster.redisCli('FLUSHALL'), 'OK');
    // Stores run as EVALSHA; with the script gone they must send it again.
    assert.equal(await cluster.redisCli('SCRIPT', 'FLUSH'), 'OK');
    assert.equal(await cluster.redisCli('EXISTS', cacheKey(room)), '0');

    // More joins, leaves and signals through both instances.
    const b3 = track(await join(i2.url, room, { n: 3 }));
    assert.deepEqual(b3.joined.peers, [entry(b1), entry(b2)]);
    await allSee([b1, b2], 'peer-joined', b3.peer, b3.joined.seq);
    const b1Left = await leave(b1);
    await allSee([b2, b3], 'peer-left', b1.peer, b1Left);
    const b4 = track(await join(i1.url, room, { n: 4 }));
    assert.deepEqual(b4.joined.peers, [entry(b2), entry(b3)]);
    await allSee([b2, b3], 'peer-joined', b4.peer, b4.joined.seq);
    const s1 = await b2.request({ type: 'signal', to: b4.peer, data: 's1' }, T);
    assert.equal(s1.type, 'ack');
    assert.deepEqual((await b4.next('signal', T)).data, 's1');
    // The cache is written again by the next membership changes, with the right sequence.
    await waitForCacheSeq(room, b4.joined.seq);

    // Flushed again, with only signals after it: a new instance has nothing in Redis.
    assert.equal(await cluster.redisCli('FLUSHALL'), 'OK');
    const s2 = await b4.request({ type: 'signal', data: 's2' }, T);
    assert.equal(s2.type, 'ack');
    for (const c of [b2, b3]) assert.deepEqual((await c.next('signal', T)).data, 's2');

    const inst = await newInstance();
    const before = await metrics(inst);
    const b5 = track(await join(inst.url, room, { n: 5 }));
    const after = await metrics(inst);
    assert.equal(b5.instance, inst.id);
    const events = await history(cluster, room);
    const expected = foldMembers(events.filter((e) => e.seq < b5.joined.seq));
    assert.deepEqual(expected, [entry(b2), entry(b3), entry(b4)]);
    assert.deepEqual(b5.joined.peers, expected);
    assert.deepEqual(delta(before, after), {
      fromCache: 0, byReplay: 1, replayed: events.filter((e) => e.seq < b5.joined.seq).length,  // one subject per room: signals too
    });
    await allSee([b2, b3, b4], 'peer-joined', b5.peer, b5.joined.seq);
    // Signals between the old instances and the new one flow both ways.
    assert.equal((await b5.request({ type: 'signal', to: b2.peer, data: 'from new' }, T)).type, 'ack');
    assert.equal((await b2.next('signal', T)).data, 'from new');
    assert.equal((await b3.request({ type: 'signal', to: b5.peer, data: 'to new' }, T)).type, 'ack');
    assert.equal((await b5.next('signal', T)).data, 'to new');
    // And the new instance put the room back into Redis.
    await waitForCacheSeq(room, b5.joined.seq);
    await quiet([b2, b3, b4, b5]);
  });

  await t.test('(c) with a warm cache a new instance answers its first join from Redis', async () => {
    const room = 'cache-c';
    const c1 = track(await join(i1.url, room, { n: 1 }));
    const c2 = track(await join(i2.url, room, { n: 2 }));
    const c3 = track(await join(i1.url, room, { n: 3 }));
    const c2Left = await leave(c2);
    await allSee([c1], 'peer-joined', c2.peer);
    await allSee([c1], 'peer-joined', c3.peer);
    await allSee([c1, c3], 'peer-left', c2.peer, c2Left);
    await waitForCacheSeq(room, c2Left);

    const inst = await newInstance();
    const before = await metrics(inst);
    const c4 = track(await join(inst.url, room, { n: 4 }));
    const after = await metrics(inst);
    assert.deepEqual(c4.joined.peers, [entry(c1), entry(c3)]);
    assert.deepEqual(c4.joined.peers, foldMembers((await history(cluster, room)).filter((e) => e.seq < c4.joined.seq)));
    assert.deepEqual(delta(before, after), { fromCache: 1, byReplay: 0, replayed: 0 });
    await allSee([c1, c3], 'peer-joined', c4.peer, c4.joined.seq);
    assert.equal((await c4.request({ type: 'signal', data: 'hi' }, T)).type, 'ack');
    for (const c of [c1, c3]) assert.equal((await c.next('signal', T)).from, c4.peer);
    await waitForCacheSeq(room, c4.joined.seq);
    await quiet([c1, c3, c4]);
  });

  await t.test('(d) a stale snapshot written back: a new instance replays what came after it', async () => {
    const room = 'cache-d';
    const key = cacheKey(room);
    const backup = `sigstream-test-backup:${room}`;
    const d1 = track(await join(i1.url, room, { n: 1 }));
    const d2 = track(await join(i2.url, room, { n: 2 }));
    await allSee([d1], 'peer-joined', d2.peer);
    await waitForCacheSeq(room, d2.joined.seq);
    const staleSeq = d2.joined.seq;
    // Save the whole hash, binary-safe, inside Redis (DUMP -> RESTORE).
    const dumpRestore = "return redis.call('RESTORE', KEYS[2], 0, redis.call('DUMP', KEYS[1]), 'REPLACE')";
    assert.equal(await cluster.redisCli('EVAL', dumpRestore, 2, key, backup), 'OK');

    // Membership moves on: d3 joins, d1 leaves, d4 joins.
    const d3 = track(await join(i1.url, room, { n: 3 }));
    await allSee([d1, d2], 'peer-joined', d3.peer);
    const d1Left = await leave(d1);
    await allSee([d2, d3], 'peer-left', d1.peer, d1Left);
    const d4 = track(await join(i2.url, room, { n: 4 }));
    await allSee([d2, d3], 'peer-joined', d4.peer);
    await waitForCacheSeq(room, d4.joined.seq);

    // Put the old snapshot back (older seq, older member list).
    assert.equal(await cluster.redisCli('EVAL', dumpRestore, 2, backup, key), 'OK');
    assert.equal(await redisSeq(room), staleSeq);

    const inst = await newInstance();
    const before = await metrics(inst);
    const d5 = track(await join(inst.url, room, { n: 5 }));
    const after = await metrics(inst);
    assert.deepEqual(d5.joined.peers, [entry(d2), entry(d3), entry(d4)]);
    const events = await history(cluster, room);
    assert.deepEqual(d5.joined.peers, foldMembers(events.filter((e) => e.seq < d5.joined.seq)));
    // Served from the (stale) snapshot plus exactly the room's events after it.
    const after_stale = events.filter((e) => e.seq > staleSeq && e.seq < d5.joined.seq);
    assert.equal(membershipEvents(after_stale).length, 3);
    // Either the stale snapshot plus the events after it, or (not trusting it
    // at all) a full replay; never the snapshot alone.
    const d = delta(before, after);
    const allMembership = events.filter((e) => e.seq < d5.joined.seq).length;
    assert.ok(
      (d.fromCache === 1 && d.byReplay === 0 && d.replayed === after_stale.length)
        || (d.fromCache === 0 && d.byReplay === 1 && d.replayed === allMembership),
      `sync counters on ${inst.id}: ${JSON.stringify(d)} (membership events after the stale seq: `
        + `${after_stale.length}, in all: ${allMembership})`);
    await allSee([d2, d3, d4], 'peer-joined', d5.peer, d5.joined.seq);
    // The stale entry is repaired: the cache moves on to the newest membership.
    await waitForCacheSeq(room, d5.joined.seq);
    await cluster.redisCli('DEL', backup);
    await quiet([d2, d3, d4, d5]);
  });

  await t.test('(e) a cache ahead of the stream is not trusted', async () => {
    const room = 'cache-e';
    const e1 = track(await join(i1.url, room, { n: 1 }));
    const e2 = track(await join(i2.url, room, { n: 2 }));
    const e3 = track(await join(i2.url, room, { n: 3 }));
    const e2Left = await leave(e2);
    await allSee([e1], 'peer-joined', e2.peer);
    await allSee([e1], 'peer-joined', e3.peer);
    await allSee([e1, e3], 'peer-left', e2.peer, e2Left);
    await waitForCacheSeq(room, e2Left);
    const huge = 999_999_999_999;
    await cluster.redisCli('HSET', cacheKey(room), 'seq', huge);
    assert.equal(await redisSeq(room), huge);

    const inst = await newInstance();
    const before = await metrics(inst);
    const e4 = track(await join(inst.url, room, { n: 4 }));
    const after = await metrics(inst);
    assert.deepEqual(e4.joined.peers, [entry(e1), entry(e3)]);
    const events = await history(cluster, room);
    assert.deepEqual(e4.joined.peers, foldMembers(events.filter((e) => e.seq < e4.joined.seq)));
    assert.deepEqual(delta(before, after), {
      fromCache: 0, byReplay: 1, replayed: events.filter((e) => e.seq < e4.joined.seq).length,
    });
    // The entry that claimed a future sequence is replaced by a true one.
    await waitFor(async () => (await redisSeq(room)) < huge, { timeoutMs: T, what: 'the cache ahead of the stream to be replaced' });
    assert.ok(await redisSeq(room) >= e2Left);
    await allSee([e1, e3], 'peer-joined', e4.peer, e4.joined.seq);
    await quiet([e1, e3, e4]);
  });

  await t.test('(f) Redis down: joins still work with the right peers; the cache is written again once it is back', async () => {
    const room = 'cache-f';
    // Only i1 has ever seen this room.
    const f1 = track(await join(i1.url, room, { n: 1 }));
    const f2 = track(await join(i1.url, room, { n: 2 }));
    await allSee([f1], 'peer-joined', f2.peer);
    await waitForCacheSeq(room, f2.joined.seq);

    await cluster.stopRedis();
    const before = await metrics(i2);
    const f3 = track(await join(i2.url, room, { n: 3 }));
    const after = await metrics(i2);
    assert.deepEqual(f3.joined.peers, [entry(f1), entry(f2)]);
    assert.deepEqual(delta(before, after).byReplay, 1);
    await allSee([f1, f2], 'peer-joined', f3.peer, f3.joined.seq);
    // Membership keeps changing on both instances while Redis is down.
    const f2Left = await leave(f2);
    await allSee([f1, f3], 'peer-left', f2.peer, f2Left);
    const f4 = track(await join(i2.url, room, { n: 4 }));
    assert.deepEqual(f4.joined.peers, [entry(f1), entry(f3)]);
    await allSee([f1, f3], 'peer-joined', f4.peer, f4.joined.seq);
    // A brand-new instance, started while Redis is down, also gets it right.
    const inst = await newInstance();
    const f5 = track(await join(inst.url, room, { n: 5 }));
    assert.deepEqual(f5.joined.peers, [entry(f1), entry(f3), entry(f4)]);
    await allSee([f1, f3, f4], 'peer-joined', f5.peer, f5.joined.seq);
    assert.equal((await f5.request({ type: 'signal', data: 'redis is down' }, T)).type, 'ack');
    for (const c of [f1, f3, f4]) assert.equal((await c.next('signal', T)).data, 'redis is down');

    await cluster.startRedis(); // same port; it comes back empty
    assert.equal(await cluster.redisCli('EXISTS', cacheKey(room)), '0');
    // Next membership change, appended by i1 (which was connected when Redis went away).
    const f6 = track(await join(i1.url, room, { n: 6 }));
    assert.deepEqual(f6.joined.peers, [entry(f1), entry(f3), entry(f4), entry(f5)]);
    await allSee([f1, f3, f4, f5], 'peer-joined', f6.peer, f6.joined.seq);
    await waitForCacheSeq(room, f6.joined.seq);
    // And one appended by i2.
    const f3Left = await leave(f3);
    await allSee([f1, f4, f5, f6], 'peer-left', f3.peer, f3Left);
    await waitForCacheSeq(room, f3Left);
    await quiet([f1, f4, f5, f6]);
  });

  await t.test('(g) after a Redis restart, an instance that was idle through the outage writes the cache on its next membership change', async () => {
    // The instance started in (c) has c4 in room cache-c and did nothing
    // with Redis while it was down (see (f)). Redis came back empty.
    const room = 'cache-c';
    const c4 = clients.find((c) => c.joined?.room === room && c.meta?.n === 4);
    assert.ok(c4, 'c4 from (c)');
    assert.equal(await cluster.redisCli('EXISTS', cacheKey(room)), '0');
    const c4Left = await leave(c4);
    assert.equal(await latestMembershipSeq(room), c4Left);
    await waitForCacheSeq(room, c4Left);
  });

  await t.test('extra instances stop cleanly', async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    for (const id of extraInstances) {
      const exit = await cluster.stopInstance(id);
      assert.equal(exit.code, 0, `${id}: ${JSON.stringify(exit)}`);
    }
  });
});
