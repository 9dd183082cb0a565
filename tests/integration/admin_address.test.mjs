// A separate admin address (--admin-listen, issue 6): the admin API and
// page and /metrics are served there and nowhere else, the public port keeps
// only what clients need (/ws, the web pages, health), and the admin API
// still needs its token on its own address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startCluster, connect, httpGet, freePort } from '../lib/cluster.mjs';

const TOKEN = 'admin-address-test-token';
let cluster;
let adminUrl;
before(async () => {
  cluster = await startCluster({ instances: 1, haproxy: false });
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  await cluster.startInstance('i2', { env: { SIGSTREAM_ADMIN_TOKEN: TOKEN, SIGSTREAM_ADMIN_LISTEN: `127.0.0.1:${port}` } });
});
after(async () => { await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 }); });

const bearer = { Authorization: `Bearer ${TOKEN}` };

test('the public port serves clients and health, not the admin API, the admin page or /metrics', async () => {
  const publicUrl = cluster.instance('i2').httpUrl;
  assert.equal((await httpGet(`${publicUrl}/admin/rooms`, { headers: bearer })).status, 404);
  assert.equal((await httpGet(`${publicUrl}/admin/`)).status, 404);
  assert.equal((await httpGet(`${publicUrl}/metrics`)).status, 404);
  assert.equal((await httpGet(`${publicUrl}/healthz`)).status, 200);
  assert.equal((await httpGet(`${publicUrl}/readyz`)).status, 200);
  assert.equal((await httpGet(`${publicUrl}/`)).status, 200, 'the demo page');
  const client = await connect(cluster.instance('i2').url);
  assert.equal((await client.request({ type: 'join', room: 'lobby' })).type, 'joined');
  client.ws.terminate();
  // Without --admin-listen, everything is on the one port (as before).
  assert.equal((await httpGet(`${cluster.instance('i1').httpUrl}/metrics`)).status, 200);
});

test('the admin address serves the admin API (with its token), the admin page and /metrics, and no clients', async () => {
  const rooms = await httpGet(`${adminUrl}/admin/rooms`, { headers: bearer });
  assert.equal(rooms.status, 200, rooms.body);
  assert.ok(Array.isArray(JSON.parse(rooms.body).rooms));
  assert.equal((await httpGet(`${adminUrl}/admin/rooms`)).status, 401, 'still needs the token');
  assert.equal((await httpGet(`${adminUrl}/admin/rooms`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await httpGet(`${adminUrl}/admin/`)).status, 200, 'the admin page');
  const metrics = await httpGet(`${adminUrl}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^sigstream_connections \d+$/m);
  assert.equal((await httpGet(`${adminUrl}/healthz`)).status, 200);
  assert.equal((await httpGet(`${adminUrl}/`)).status, 404, 'no demo page here');
  await assert.rejects(connect(`${adminUrl.replace('http', 'ws')}/ws`), /404/, 'no WebSocket clients here');
});

test('a bad --admin-listen stops the instance at start-up with a clear message (exit 2)', () => {
  const run = spawnSync(cluster.bin, ['serve', '--admin-listen', 'nowhere'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /--admin-listen 'nowhere' is not HOST:PORT/);
});
