// Joins per second per client address (issue 6): a flood of joins from one
// address is refused with rate-limited, while other addresses join freely;
// the client address is the TCP peer, or behind a trusted proxy (HAProxy,
// option forwardfor) the rightmost untrusted X-Forwarded-For entry, so a
// client can neither hide behind the proxy's address nor spoof another one.
// Clients take distinct loopback source addresses (127.0.0.x) to be
// distinct clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startCluster, httpGet, sleep } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';

const RATE = 2;
const BURST = 5;
let cluster;
before(async () => {
  cluster = await startCluster({
    instances: 1,
    env: { SIGSTREAM_JOIN_RATE: String(RATE), SIGSTREAM_JOIN_BURST: String(BURST), SIGSTREAM_TRUSTED_PROXIES: '127.0.0.1' },
  });
});
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

async function metric(name, labels) {
  return instanceMetric(cluster.instance('i1').httpUrl, name, labels);
}

// `count` connections from `localAddress` each send one join at once; the
// answers, and how long the burst took (more time lets more through).
async function joinFlood(url, localAddress, count, { headers = () => undefined, room = 'flood' } = {}) {
  const clients = [];
  for (let k = 0; k < count; k++) clients.push(await cluster.connect(url, { localAddress, headers: headers(k) }));
  const t0 = Date.now();
  const replies = await Promise.all(clients.map((c) => c.request({ type: 'join', room })));
  const seconds = (Date.now() - t0) / 1000 + 0.05;
  const joined = replies.filter((r) => r.type === 'joined').length;
  const limited = replies.filter((r) => r.code === 'rate-limited').length;
  assert.equal(joined + limited, count, `every join is either admitted or rate-limited: ${JSON.stringify(replies.find((r) => r.type !== 'joined' && r.code !== 'rate-limited'))}`);
  return { clients, joined, limited, allowed: BURST + Math.ceil(RATE * seconds) };
}

test('a join flood from one address is limited; the connections stay open; other addresses join freely', async () => {
  const url = cluster.instance('i1').url;
  const before = await metric('rate_limited_total', { request: 'join' });
  const flood = await joinFlood(url, '127.0.0.2', 15);
  assert.ok(flood.joined >= BURST && flood.joined <= flood.allowed, `${flood.joined} joins admitted, burst ${BURST}`);
  assert.ok(flood.limited >= 15 - flood.allowed, `${flood.limited} rate-limited`);
  const refused = flood.clients.find((c) => c.messages.some((m) => m.code === 'rate-limited'));
  assert.ok(refused.isOpen, 'a refused join does not close the connection');
  assert.equal(await metric('rate_limited_total', { request: 'join' }) - before, flood.limited);

  // Another address is not affected by that flood.
  const other = await joinFlood(url, '127.0.0.3', BURST);
  assert.equal(other.joined, BURST);

  // The address's bucket refills at RATE a second: the refused client retries.
  await sleep(1000 / RATE + 200);
  const retry = await refused.request({ type: 'join', room: 'flood' });
  assert.equal(retry.type, 'joined', JSON.stringify(retry));
});

test('the same flood, one connection: join and leave in a loop is limited too', async () => {
  const c = await cluster.connect(cluster.instance('i1').url, { localAddress: '127.0.0.4' });
  let joined = 0;
  let limited = 0;
  const t0 = Date.now();
  for (let k = 0; k < 12; k++) {
    const reply = await c.request({ type: 'join', room: 'loop' });
    if (reply.type === 'joined') {
      joined++;
      await c.request({ type: 'leave' });
    } else {
      assert.equal(reply.code, 'rate-limited', JSON.stringify(reply));
      limited++;
    }
  }
  const allowed = BURST + Math.ceil(RATE * ((Date.now() - t0) / 1000 + 0.05));
  assert.ok(joined <= allowed && limited >= 12 - allowed, `${joined} admitted, ${limited} limited`);
  assert.ok(c.isOpen);
});

test('behind HAProxy each client address counts on its own, and a forged X-Forwarded-For changes nothing', async () => {
  // HAProxy (127.0.0.1, trusted) appends the address it saw: the instance
  // counts 127.0.0.5 and 127.0.0.6, not HAProxy's own address.
  const viaLb = `ws://127.0.0.1:${cluster.lbPort}/ws`;
  const first = await joinFlood(viaLb, '127.0.0.5', BURST);
  assert.equal(first.joined, BURST, 'a whole burst from 127.0.0.5');
  const second = await joinFlood(viaLb, '127.0.0.6', BURST);
  assert.equal(second.joined, BURST, 'a whole burst from 127.0.0.6: not counted with 127.0.0.5');

  // A client writing its own X-Forwarded-For (another address per
  // connection) is still 127.0.0.7 through HAProxy...
  const forged = (k) => ({ 'X-Forwarded-For': `198.51.100.${k + 1}` });
  const spoofViaLb = await joinFlood(viaLb, '127.0.0.7', 12, { headers: forged });
  assert.ok(spoofViaLb.joined <= spoofViaLb.allowed && spoofViaLb.limited > 0, `via HAProxy: ${spoofViaLb.joined} admitted`);
  // ...and directly, from an untrusted address, the header is ignored.
  const spoofDirect = await joinFlood(cluster.instance('i1').url, '127.0.0.8', 12, { headers: forged });
  assert.ok(spoofDirect.joined <= spoofDirect.allowed && spoofDirect.limited > 0, `direct: ${spoofDirect.joined} admitted`);
});

test('a resume is not counted against the join rate', async () => {
  const url = cluster.instance('i1').url;
  const c = await cluster.connect(url, { localAddress: '127.0.0.9' });
  const joined = await c.request({ type: 'join', room: 'resumers' });
  // Use up the address's burst with other connections.
  const flood = await joinFlood(url, '127.0.0.9', BURST + 3, { room: 'resumers-2' });
  assert.ok(flood.limited > 0, 'the address is over its join rate now');
  c.ws.terminate();  // a lost connection: the peer stays for the grace period
  const back = await cluster.connect(url, { localAddress: '127.0.0.9' });
  const resumed = await back.request({ type: 'join', room: 'resumers', resume: joined.resume });
  assert.equal(resumed.type, 'joined', JSON.stringify(resumed));
  assert.equal(resumed.peer, joined.peer);
});

test('bad --trusted-proxies, --join-rate or --join-burst stop the instance at start-up (exit 2) with the reason', () => {
  for (const [args, reason] of [
    [['--trusted-proxies', '10.0.0.0/33'], /--trusted-proxies: '10\.0\.0\.0\/33' has a bad prefix length/],
    [['--trusted-proxies', 'proxy.internal'], /--trusted-proxies: 'proxy\.internal' is not an IP address/],
    [['--join-rate', '-1'], /--join-rate must be 0 \(no limit\) or more/],
    [['--join-burst', '0'], /--join-burst at least 1/],
  ]) {
    const run = spawnSync(cluster.bin, ['serve', ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, reason);
  }
});
