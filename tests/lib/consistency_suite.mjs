// Consistency under concurrency: the guarantee the Socket.IO + Redis-key
// design cannot give. Every pair of peers learns of each other exactly once,
// every peer ends with the same view, and what each peer received is exactly
// what the stream holds for it, in the stream's order. Defined once, run by
// tests/integration/consistency*.test.mjs against clusters set up differently.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, sleep } from './cluster.mjs';
import { roomHistory, assertReceivedShare } from './stream.mjs';

// `clusterOptions` go to startCluster, with three instances unless they say
// otherwise. Returns a getter of the cluster, for a caller's own tests.
export function consistencySuite(clusterOptions = {}) {
  let cluster;
  before(async () => { cluster = await startCluster({ instances: 3, ...clusterOptions }); });
  after(async () => { await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 }); });

  const history = (room) => roomHistory(cluster, room);

  // A peer's view: its `joined` list, then every peer-joined / peer-left after it.
  function view(client, joined) {
    const members = new Set(joined.peers.map((p) => p.peer));
    for (const m of client.messages) {
      if (m.type === 'peer-joined' && m.seq > joined.seq) members.add(m.peer);
      if (m.type === 'peer-left' && m.seq > joined.seq) members.delete(m.peer);
    }
    return members;
  }

  // Checks that every pair of peers learned of each other exactly once.
  function assertPairwiseExactlyOnce(entries) {
    for (const x of entries) {
      for (const y of entries) {
        if (x === y) continue;
        const inPeers = x.joined.peers.filter((p) => p.peer === y.joined.peer).length;
        const notices = x.client.messages.filter((m) => m.type === 'peer-joined' && m.peer === y.joined.peer).length;
        assert.equal(inPeers + notices, 1,
          `${x.joined.peer} learned of ${y.joined.peer} ${inPeers + notices} times (peers: ${inPeers}, peer-joined: ${notices})`);
        // The earlier join is in the later joiner's list; the later one arrives as an event.
        if (y.joined.seq < x.joined.seq) assert.equal(inPeers, 1);
        else assert.equal(notices, 1);
      }
    }
  }

  test('two peers joining at once on two instances always find each other (100 races)', async () => {
    for (let round = 0; round < 100; round++) {
      const room = `race-${round}`;
      const [a, b] = await Promise.all([connect(cluster.instance('i1').url), connect(cluster.instance('i2').url)]);
      const [ja, jb] = await Promise.all([a.request({ type: 'join', room }), b.request({ type: 'join', room })]);
      const [first, second] = ja.seq < jb.seq ? [{ c: a, j: ja }, { c: b, j: jb }] : [{ c: b, j: jb }, { c: a, j: ja }];
      assert.deepEqual(first.j.peers, [], `round ${round}: the first joiner saw nobody`);
      assert.deepEqual(second.j.peers.map((p) => p.peer), [first.j.peer], `round ${round}: the second saw the first`);
      const notice = await first.c.next({ type: 'peer-joined', peer: second.j.peer });
      assert.equal(notice.seq, second.j.seq);
      a.close(); b.close();
    }
  });

  test('50 peers joining one room at once through three instances end with identical views; Redis flushed mid-run', async () => {
    const room = 'crowd';
    const ids = ['i1', 'i2', 'i3'];
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => connect(cluster.instance(ids[i % 3]).url)));
    const flush = (async () => { await sleep(5); await cluster.redisCli('FLUSHALL'); })();
    const joined = await Promise.all(clients.map((c, i) => c.request({ type: 'join', room, meta: { n: i } }, 15_000)));
    await flush;
    for (const j of joined) assert.equal(j.type, 'joined');
    const all = new Set(joined.map((j) => j.peer));
    assert.equal(all.size, 50, 'fifty distinct peer ids');
    // Wait until every peer has heard of every later joiner.
    const entries = clients.map((client, i) => ({ client, joined: joined[i] }));
    const maxSeq = Math.max(...joined.map((j) => j.seq));
    await Promise.all(entries.map(async ({ client, joined: j }) => {
      const later = joined.filter((o) => o.seq > j.seq).length;
      for (let k = 0; k < later; k++) await client.next('peer-joined', 15_000);
    }));
    for (const { client, joined: j } of entries) {
      const v = view(client, j);
      v.add(j.peer);
      assert.deepEqual([...v].sort(), [...all].sort(), `peer ${j.peer} has the full view`);
    }
    assertPairwiseExactlyOnce(entries);
    // The joined lists are exactly the stream's membership before each join.
    const events = (await history(room)).filter((e) => e.kind === 'join');
    assert.equal(events.length, 50);
    for (const { joined: j } of entries) {
      const before = events.filter((e) => e.seq < j.seq).map((e) => e.peer);
      assert.deepEqual(j.peers.map((p) => p.peer), before, 'peers: the members before the join, oldest first');
    }
    assert.ok(maxSeq > 0);
    for (const c of clients) c.close();
  });

  test('an instance started after a room has history serves it correctly', async () => {
    const room = 'late-instance';
    const a = await connect(cluster.instance('i1').url);
    const b = await connect(cluster.instance('i2').url);
    const ja = await a.request({ type: 'join', room, meta: { who: 'a' } });
    const jb = await b.request({ type: 'join', room, meta: { who: 'b' } });
    const gone = await connect(cluster.instance('i1').url);
    await gone.request({ type: 'join', room });
    for (let k = 0; k < 30; k++) a.send({ type: 'signal', data: { k } });
    await gone.request({ type: 'leave' });
    const late = await cluster.startInstance();
    const c = await connect(late.url);
    assert.equal(c.instance, late.id);
    const jc = await c.request({ type: 'join', room });
    assert.deepEqual(jc.peers, [{ peer: ja.peer, meta: { who: 'a' }, instance: 'i1' }, { peer: jb.peer, meta: { who: 'b' }, instance: 'i2' }]);
    assert.equal(jc.instance, late.id);
    const ack = await c.request({ type: 'signal', to: ja.peer, data: 'hello from the new instance' });
    const got = await a.next({ type: 'signal', from: jc.peer });
    assert.equal(got.seq, ack.seq);
    assert.equal((await b.next({ type: 'peer-joined', peer: jc.peer })).seq, jc.seq);
    for (const x of [a, b, c, gone]) x.close();
  });

  test('what each peer received is exactly what the stream holds for it, in order', async () => {
    const room = 'ledger';
    const ids = ['i1', 'i2', 'i3'];
    const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => connect(cluster.instance(ids[i % 3]).url)));
    const joined = [];
    for (const c of clients.slice(0, 4)) joined.push(await c.request({ type: 'join', room }));
    // Traffic while peers come and go.
    const traffic = clients.slice(0, 4).map(async (c, i) => {
      for (let k = 0; k < 40; k++) {
        const to = k % 3 === 0 ? undefined : joined[(i + 1 + (k % 3)) % 4].peer;
        c.send(to ? { type: 'signal', to, data: { i, k } } : { type: 'signal', data: { i, k } });
        if (k % 10 === 0) await sleep(2);
      }
    });
    const comings = (async () => {
      await sleep(10);
      joined.push(await clients[4].request({ type: 'join', room }));
      await sleep(10);
      joined.push(await clients[5].request({ type: 'join', room }));
      await sleep(10);
      await clients[4].request({ type: 'leave' });
    })();
    await Promise.all([...traffic, comings]);
    await sleep(500);  // let the last events arrive
    const events = await history(room);
    for (let i = 0; i < clients.length; i++) {
      assertReceivedShare(assert, clients[i], events, joined[i], { leftByRequest: i === 4, label: `peer ${i} (${joined[i].peer})` });
    }
    for (const c of clients) c.close();
  });

  return () => cluster;
}
