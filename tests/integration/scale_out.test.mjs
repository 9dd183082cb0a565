// Adding an instance under load (issue 5): while peers in 5 rooms on two
// instances keep signalling, a third instance starts; its first clients get
// the right peer lists (equal to the membership folded from the stream at
// their join), and from then on each receives exactly its share of its room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect, sleep } from '../lib/cluster.mjs';
import { roomHistory, assertReceivedShare } from '../lib/stream.mjs';

const ROOMS = ['scale-a', 'scale-b', 'scale-c', 'scale-d', 'scale-e'];
let cluster;
const clients = [];

before(async () => { cluster = await startCluster({ instances: 2 }); });
after(async () => {
  for (const c of clients) c.ws.terminate();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// Members after the event numbered `seq`, folded from the room's history.
function membersAt(events, seq) {
  const members = new Set();
  for (const e of events) {
    if (e.seq > seq) break;
    if (e.kind === 'join') members.add(e.peer);
    if (e.kind === 'leave') members.delete(e.peer);
  }
  return [...members];
}

test('an instance added under load serves correct rooms from its first client', { timeout: 90_000 }, async () => {
  const old = [];
  for (const [r, room] of ROOMS.entries()) {
    for (let k = 0; k < 3; k++) {
      const c = await connect(cluster.instances[(r + k) % 2].url);
      clients.push(c);
      assert.equal((await c.request({ type: 'join', room })).type, 'joined');
      old.push({ room, c });
    }
  }
  let running = true;
  const load = (async () => {
    for (let n = 0; running && n < 3000; n++) {
      const p = old[n % old.length];
      p.c.send({ type: 'signal', data: { n } });
      if (n % 20 === 19) {  // some membership churn too: a peer leaves and joins again
        const q = old[(n / 20) % old.length | 0];
        q.c.send({ type: 'leave' });
        q.c.send({ type: 'join', room: q.room });
      }
      await sleep(10);
    }
  })();
  await sleep(1000);

  const added = await cluster.startInstance();
  const fresh = [];
  for (const room of ROOMS) {
    const c = await connect(added.url);
    clients.push(c);
    const joined = await c.request({ type: 'join', room });
    assert.equal(joined.type, 'joined');
    assert.equal(joined.instance, added.id);
    fresh.push({ room, c, joined });
  }
  await sleep(1500);
  running = false;
  await load;
  await sleep(2000);

  for (const f of fresh) {
    const events = await roomHistory(cluster, f.room);
    assert.deepEqual(f.joined.peers.map((p) => p.peer).sort(), membersAt(events, f.joined.seq).filter((p) => p !== f.joined.peer).sort(),
      `${f.room}: the peers of joined are the membership at seq ${f.joined.seq}`);
    assertReceivedShare(assert, f.c, events, f.joined, { label: `${f.room} on ${added.id}` });
    assert.ok(f.c.messages.filter((m) => m.type === 'signal').length > 10, `${f.room}: signals flowed to the new instance's peer`);
  }
});
