// scripts/dev as a user drives it (issue 13): `SIGSTREAM_NATS_NODES=3
// scripts/dev up` starts a three-node JetStream cluster (nats1..nats3, each
// with its own data folder), Redis, the instances (given every node) and
// HAProxy; `status` lists them; `stop NAME [--kill]` and `start NAME` stop and
// bring back one process (a NATS node, Redis, an instance) for drills; the
// stream and buckets keep three replicas; `down` stops everything. Run in a
// directory of its own (SIGSTREAM_RUN_DIR) on free loopback ports, with the
// built binary (SIGSTREAM_BIN: no build).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { REPO_ROOT, connect, waitFor } from '../lib/cluster.mjs';

const DEV = path.join(REPO_ROOT, 'scripts', 'dev');
const BIN = process.env.SIGSTREAM_BIN ? path.resolve(REPO_ROOT, process.env.SIGSTREAM_BIN) : path.join(REPO_ROOT, 'build', 'sigstream');
const PORTS = 14;  // haproxy, 3 NATS client, 3 monitoring, 3 route, redis, 2 instances and one added
let runDir;
let base;

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// A run of free ports (the script numbers its NATS nodes' ports one after another).
async function freeRange(count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = start; ok && p < start + count; p++) ok = await portFree(p);
    if (ok) return start;
  }
  throw new Error(`no ${count} free consecutive ports`);
}

// Runs scripts/dev with the ports of this test; `given: false` passes only
// where the cluster lives and the binary, as a user's later command would.
function dev(args, { timeoutMs = 120_000, given = true } = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGSTREAM_')));
  Object.assign(env, { SIGSTREAM_RUN_DIR: runDir, SIGSTREAM_BIN: BIN });
  if (given) Object.assign(env, {
    SIGSTREAM_NATS_NODES: '3',
    SIGSTREAM_INSTANCES: '2',
    SIGSTREAM_PORT: String(base),
    SIGSTREAM_NATS_PORT: String(base + 1),
    SIGSTREAM_NATS_MONITOR_PORT: String(base + 4),
    SIGSTREAM_NATS_CLUSTER_PORT: String(base + 7),
    SIGSTREAM_REDIS_PORT: String(base + 10),
    SIGSTREAM_FIRST_INSTANCE_PORT: String(base + 11),
    SIGSTREAM_STOP_TIMEOUT: '10',
    SIGSTREAM_LOG_LEVEL: 'info',
  });
  return new Promise((resolve) => execFile('bash', [DEV, ...args], { env, cwd: REPO_ROOT, timeout: timeoutMs },
    (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr })));
}

// `status` as {name: {role, pid, port, state, lb}}.
async function status() {
  const { stdout } = await dev(['status']);
  const rows = {};
  for (const line of stdout.split('\n').slice(1)) {
    const [role, id, pid, port, state, lb] = line.trim().split(/\s+/);
    if (id) rows[id] = { role, pid: Number(pid), port: Number(port), state, lb };
  }
  return rows;
}

const cluster = () => new Promise((resolve) => execFile(BIN, ['cluster', '--nats-url',
  [1, 2, 3].map((k) => `nats://127.0.0.1:${base + k}`).join(',')], { timeout: 30_000 },
  (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })));

before(async () => {
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-dev-'));
  base = await freeRange(PORTS);
});

after(async () => {
  if (!runDir) return;
  await dev(['down']);
  if (process.exitCode === undefined || process.exitCode === 0) fs.rmSync(runDir, { recursive: true, force: true });
  else process.stdout.write(`# kept ${runDir} (logs in logs/)\n`);
});

test('SIGSTREAM_NATS_NODES=3 scripts/dev up: three NATS nodes, Redis, two instances and HAProxy, each listed by status', { timeout: 180_000 }, async () => {
  const up = await dev(['up'], { timeoutMs: 150_000 });
  assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
  const rows = await status();
  for (const [k, name] of ['nats1', 'nats2', 'nats3'].entries()) {
    assert.equal(rows[name]?.role, 'nats-server', JSON.stringify(rows));
    assert.equal(rows[name].port, base + 1 + k);
    assert.equal(rows[name].state, 'alive');
    assert.ok(fs.statSync(path.join(runDir, 'data', 'nats', name)).isDirectory(), `${name} has its own data folder`);
  }
  assert.equal(rows.redis?.state, 'alive');
  assert.equal(rows.haproxy?.state, 'alive');
  for (const id of ['i1', 'i2']) {
    assert.equal(rows[id]?.state, 'alive');
    assert.equal(rows[id].lb, 'UP');
  }
  // Every instance was given every node.
  const args = fs.readFileSync(`/proc/${rows.i1.pid}/cmdline`, 'utf8').split('\0');
  assert.equal(args[args.indexOf('--nats-url') + 1], [1, 2, 3].map((k) => `nats://127.0.0.1:${base + k}`).join(','), args.join(' '));
  // The stream on three replicas, led by one node, the two others copies.
  const c = await cluster();
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /stream SIGSTREAM: NATS cluster sigstream, 3 replicas, leader nats[123]/, c.stdout);
  // A client through HAProxy joins.
  const client = await connect(`ws://127.0.0.1:${base}/ws`);
  assert.equal((await client.request({ type: 'join', room: 'dev-script' }, 15_000)).type, 'joined');
  client.ws.terminate();
});

test('later commands use the ports up was given: add, given nothing, starts i3 on the next of them', { timeout: 120_000 }, async () => {
  const add = await dev(['add'], { given: false });
  assert.equal(add.code, 0, `${add.stdout}\n${add.stderr}`);
  const rows = await status();
  assert.equal(rows.i3?.port, base + 13, JSON.stringify(rows));
  assert.equal(rows.i3.state, 'alive');
  await waitFor(async () => (await status()).i3.lb === 'UP', { timeoutMs: 30_000, what: 'i3 UP in HAProxy' });
  // ... and connected to the three NATS nodes up was given.
  const args = fs.readFileSync(`/proc/${rows.i3.pid}/cmdline`, 'utf8').split('\0');
  assert.equal(args[args.indexOf('--nats-url') + 1], [1, 2, 3].map((k) => `nats://127.0.0.1:${base + k}`).join(','));
  const { stdout } = await dev(['status'], { given: false });
  assert.match(stdout, new RegExp(`^nats-server\\s+nats3\\s+\\d+\\s+${base + 3}\\s+alive`, 'm'), stdout);
});

test('scripts/dev stop NAME --kill and start NAME: a NATS node, Redis and an instance, each back on its port', { timeout: 180_000 }, async () => {
  for (const name of ['nats2', 'redis', 'i2']) {
    const before = (await status())[name];
    const stop = await dev(['stop', name, '--kill']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`stopped ${name} \\(pid ${before.pid}, SIGKILL\\)`));
    assert.equal((await status())[name].state, 'dead', `${name} listed dead`);
    const start = await dev(['start', name]);
    assert.equal(start.code, 0, `${start.stdout}\n${start.stderr}`);
    const after = (await status())[name];
    assert.equal(after.state, 'alive');
    assert.equal(after.port, before.port);
    assert.notEqual(after.pid, before.pid);
  }
  // The restarted node catches up: its copy of the stream is current again.
  await waitFor(async () => /^nats2\s+current/m.test((await cluster()).stdout) || /leader nats2/.test((await cluster()).stdout),
    { timeoutMs: 60_000, what: 'nats2 current again' });
  // And a client joins through HAProxy with everything back.
  await waitFor(async () => (await status()).i2.lb === 'UP', { timeoutMs: 30_000, what: 'i2 UP in HAProxy' });
  const client = await connect(`ws://127.0.0.1:${base}/ws`);
  assert.equal((await client.request({ type: 'join', room: 'dev-script' }, 15_000)).type, 'joined');
  client.ws.terminate();
});

test('scripts/dev down stops every process it started', { timeout: 60_000 }, async () => {
  const pids = Object.values(await status()).map((r) => r.pid);
  const down = await dev(['down']);
  assert.equal(down.code, 0, down.stderr);
  // Gone, or a zombie (exited; its parent, the script, is gone and this
  // sandbox's init may not reap it).
  for (const pid of pids) {
    let state = 'gone';
    try { state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]; } catch { /* gone */ }
    assert.ok(state === 'gone' || state === 'Z', `pid ${pid} stopped (state ${state})`);
  }
  assert.match((await dev(['status'])).stdout, /dead|nothing started/);
});
