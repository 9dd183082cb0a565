// HAProxy's connection-rate limit per source address (issue 6), in front of
// the instances: an address opening more than SIGSTREAM_LB_CONN_RATE
// connections in 10 s is refused at the TCP level, other addresses are not.
// The shipped configuration exempts loopback (local tools and benchmarks);
// here the limit is 5 and only 127.0.0.1 is exempt, so clients on 127.0.0.2
// and 127.0.0.3 are subject to it, as remote clients would be.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/cluster.mjs';

const LIMIT = 5;
let cluster;
before(async () => {
  cluster = await startCluster({
    instances: 1,
    lbEnv: { SIGSTREAM_LB_CONN_RATE: String(LIMIT), SIGSTREAM_LB_RATE_EXEMPT: '127.0.0.1' },
  });
});
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// Opens `count` connections one after the other from `localAddress`.
async function burst(localAddress, count) {
  const clients = [];
  let refused = 0;
  for (let k = 0; k < count; k++) {
    try {
      clients.push(await cluster.connect(cluster.url, { localAddress, timeoutMs: 3000 }));
    } catch {
      refused++;
    }
  }
  return { clients, accepted: clients.length, refused };
}

test('an address over the connection rate is refused; another address and the exempt one are not', async () => {
  const flood = await burst('127.0.0.2', 12);
  assert.equal(flood.accepted, LIMIT, `the first ${LIMIT} connect (${JSON.stringify(flood)})`);
  assert.equal(flood.refused, 12 - LIMIT);
  // The accepted ones keep working.
  assert.equal((await flood.clients[0].request({ type: 'join', room: 'lb-rate' })).type, 'joined');

  const other = await burst('127.0.0.3', LIMIT);
  assert.equal(other.accepted, LIMIT, 'another address has its own count');
  const exempt = await burst('127.0.0.1', 12);
  assert.equal(exempt.accepted, 12, 'the exempt network is not limited');
});
