// Reconnects are never refused while an instance is alive (issue 13). After
// kill -9 of one of three instances its clients reconnect at once, and
// HAProxy's leastconn sends them to the instance with the fewest
// connections: the dead one. A connection error must mark that server down
// at once (not after three failed checks) and the connection be tried again
// on another server, so every one of 20 connections opened at once right
// after the kill opens and can join. With the checks alone, the dead
// instance answers 503 for about 3 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, connect } from '../lib/cluster.mjs';

let cluster;
const held = [];

before(async () => {
  cluster = await startCluster({ instances: 3 });
});

after(async () => {
  for (const c of held) c.ws.terminate();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

test('kill -9 of one instance: 20 connections opened at once through HAProxy all open and join', { timeout: 60_000 }, async () => {
  // Connections held on i1 and i3, none on i2: leastconn picks i2 first.
  for (const id of ['i1', 'i3'])
    for (let k = 0; k < 5; k++) held.push(await connect(cluster.instance(id).url));
  assert.equal((await cluster.stopInstance('i2', 'SIGKILL')).signal, 'SIGKILL');

  const attempts = await Promise.allSettled(Array.from({ length: 20 }, () => connect(cluster.url)));
  const refused = attempts.filter((a) => a.status === 'rejected').map((a) => a.reason.message);
  const opened = attempts.filter((a) => a.status === 'fulfilled').map((a) => a.value);
  held.push(...opened);
  assert.deepEqual(refused, [], `${refused.length} of 20 connections refused`);
  assert.deepEqual(new Set(opened.map((c) => c.instance)), new Set(['i1', 'i3']));
  for (const [k, client] of opened.entries()) {
    const joined = await client.request({ type: 'join', room: `failover-${k % 4}` });
    assert.equal(joined.type, 'joined');
  }
});
