// Event log set-up (issue 2, "Event log"): one JetStream stream with file
// storage holds every room's events; instances create it at start-up if
// absent, with the configured retention, and never clobber an operator's
// settings on an existing one. A stream that exists but is not shaped for
// sigstream is refused: the instance logs why and exits non-zero (what
// ensure_stream() in src/adapters/nats/event_log.cpp does), never touching it.
//
// Stream configs are read from nats-server's monitoring endpoint (/jsz).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startCluster, connect, httpGet, waitFor } from '../lib/cluster.mjs';
import { roomHistory as history, natsRequest } from '../lib/stream.mjs';

const T = 10_000;
const NS = 1_000_000_000;
const HOUR = 3600 * NS;
const EXIT_WAIT_MS = 30_000;

/** {config, state} of stream `name` as nats-server's /jsz reports it, or undefined. */
async function streamInfo(cluster, name) {
  const res = await httpGet(
    `http://127.0.0.1:${cluster.natsMonitorPort}/jsz?accounts=true&streams=true&config=true`, { timeoutMs: 5000 });
  assert.equal(res.status, 200, `/jsz: HTTP ${res.status}`);
  const jsz = JSON.parse(res.body);
  for (const account of jsz.account_details ?? []) {
    for (const stream of account.stream_detail ?? []) if (stream.name === name) return stream;
  }
  return undefined;
}

async function createStreamAsOperator(cluster, config) {
  const reply = await natsRequest(cluster.natsPort, `$JS.API.STREAM.CREATE.${config.name}`, config);
  assert.equal(reply.error, undefined, `stream create: ${JSON.stringify(reply.error)}`);
  return reply;
}

const readLog = (cluster, id) => fs.readFileSync(cluster.instance(id).logFile, 'utf8');

/** Start an instance that is expected to give up: resolves {exit, readyzSeen, log}. */
async function startExpectingExit(cluster, env) {
  const inst = await cluster.startInstance(undefined, { env, wait: false });
  const readyzSeen = new Set();
  await waitFor(async () => {
    if (!cluster.instance(inst.id).alive) return true;
    try {
      readyzSeen.add((await httpGet(`${inst.httpUrl}/readyz`, { timeoutMs: 1000 })).status);
    } catch { /* not listening yet, or gone */ }
    return !cluster.instance(inst.id).alive;
  }, { timeoutMs: EXIT_WAIT_MS, intervalMs: 50, what: `${inst.id} to give up and exit` }).catch(async (err) => {
    await cluster.stopInstance(inst.id, 'SIGKILL');
    throw new Error(`${err.message}; /readyz answers seen: ${[...readyzSeen].join(', ')}\n${cluster.logTail(inst.id, 30)}`);
  });
  // Already exited: stopInstance only reports how.
  const exit = await cluster.stopInstance(inst.id);
  return { id: inst.id, exit, readyzSeen, log: readLog(cluster, inst.id) };
}

async function joinAndSignal(url, room) {
  const a = await connect(url, { timeoutMs: T });
  const b = await connect(url, { timeoutMs: T });
  const ja = await a.request({ type: 'join', room }, T);
  assert.equal(ja.type, 'joined', JSON.stringify(ja));
  const jb = await b.request({ type: 'join', room }, T);
  assert.equal(jb.type, 'joined', JSON.stringify(jb));
  assert.deepEqual(jb.peers.map((p) => p.peer), [ja.peer]);
  const ack = await a.request({ type: 'signal', to: jb.peer, data: 'x' }, T);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  assert.equal((await b.next('signal', T)).from, ja.peer);
  // Explicit leaves, acknowledged once stored: the history is complete on return.
  for (const c of [a, b]) assert.equal((await c.request({ type: 'leave' }, T)).type, 'ack');
  await Promise.all([a.close(), b.close()]);
  return { ja, jb, ack };
}

test('the event log stream: created as configured, an existing one never clobbered, a misshaped one refused', async (t) => {
  // i1 runs with no stream settings at all: it creates SIGSTREAM with the defaults.
  const cluster = await startCluster({ instances: 1, redis: true, haproxy: false, t });

  await t.test('(a) an absent stream is created with file storage and the default retention (1d, 1 GiB, 2m)', async () => {
    const info = await streamInfo(cluster, 'SIGSTREAM');
    assert.ok(info, 'stream SIGSTREAM was not created');
    const c = info.config;
    assert.equal(c.storage, 'file');
    assert.equal(c.retention, 'limits');
    assert.equal(c.max_age, 24 * HOUR);
    assert.equal(c.max_bytes, 1024 ** 3);
    assert.equal(c.duplicate_window, 120 * NS);
    assert.deepEqual(c.subjects, ['sigstream.room.>']);
    assert.deepEqual(c.republish, { src: 'sigstream.room.>', dest: 'sigstream.live.>' });
    assert.match(readLog(cluster, 'i1'), /created stream SIGSTREAM on 'sigstream\.room\.>' \(file storage, 1 replica, max age 86400 s/);
    // It is the stream the instance uses: events land in it.
    const before = info.state.messages;
    await joinAndSignal(cluster.instance('i1').url, 'setup-a');
    assert.deepEqual((await history(cluster, 'setup-a')).map((e) => e.kind), ['join', 'join', 'signal', 'leave', 'leave']);
    assert.equal((await streamInfo(cluster, 'SIGSTREAM')).state.messages, before + 5);
  });

  await t.test('(a) an absent stream is created with the configured retention', async () => {
    const inst = await cluster.startInstance(undefined, {
      env: {
        SIGSTREAM_STREAM: 'CONF', SIGSTREAM_SUBJECT_PREFIX: 'conf',
        SIGSTREAM_RETENTION_MAX_AGE: '36h', SIGSTREAM_RETENTION_MAX_BYTES: '256MiB', SIGSTREAM_DUPLICATE_WINDOW: '90s',
      },
    });
    const info = await streamInfo(cluster, 'CONF');
    assert.ok(info, 'stream CONF was not created');
    const c = info.config;
    assert.equal(c.storage, 'file');
    assert.equal(c.retention, 'limits');
    assert.equal(c.max_age, 36 * HOUR);
    assert.equal(c.max_bytes, 256 * 1024 * 1024);
    assert.equal(c.duplicate_window, 90 * NS);
    assert.deepEqual(c.subjects, ['conf.room.>']);
    assert.deepEqual(c.republish, { src: 'conf.room.>', dest: 'conf.live.>' });
    assert.match(readLog(cluster, inst.id), /created stream CONF on 'conf\.room\.>' \(file storage, 1 replica, max age 129600 s/);
    await joinAndSignal(inst.url, 'setup-conf');
    assert.deepEqual((await history(cluster, 'setup-conf', ['--stream', 'CONF', '--subject-prefix', 'conf']))
      .map((e) => e.kind), ['join', 'join', 'signal', 'leave', 'leave']);
    // Nothing of it went to the default stream.
    assert.deepEqual(await history(cluster, 'setup-conf'), []);
    assert.equal((await cluster.stopInstance(inst.id)).code, 0);
  });

  await t.test('(b) an existing stream keeps its settings when instances with other settings start', async () => {
    const env1 = { SIGSTREAM_STREAM: 'OTHER', SIGSTREAM_SUBJECT_PREFIX: 'other', SIGSTREAM_RETENTION_MAX_AGE: '1h', SIGSTREAM_RETENTION_MAX_BYTES: '64MiB',
      SIGSTREAM_DUPLICATE_WINDOW: '30s' };
    const first = await cluster.startInstance(undefined, { env: env1 });
    const created = (await streamInfo(cluster, 'OTHER')).config;
    assert.equal(created.max_age, 1 * HOUR);
    assert.equal(created.max_bytes, 64 * 1024 * 1024);
    assert.equal(created.duplicate_window, 30 * NS);
    await joinAndSignal(first.url, 'setup-b');
    const exit = await cluster.stopInstance(first.id);
    assert.equal(exit.code, 0, JSON.stringify(exit));
    const stored = (await streamInfo(cluster, 'OTHER')).state.messages;
    assert.equal(stored, 5, `OTHER holds ${stored} messages`);

    // ... more replicas included: the existing stream keeps its one, with a warning.
    const env2 = { SIGSTREAM_STREAM: 'OTHER', SIGSTREAM_SUBJECT_PREFIX: 'other', SIGSTREAM_RETENTION_MAX_AGE: '2h', SIGSTREAM_RETENTION_MAX_BYTES: '128MiB',
      SIGSTREAM_DUPLICATE_WINDOW: '45s', SIGSTREAM_STREAM_REPLICAS: '3' };
    const second = await cluster.startInstance(undefined, { env: env2 });
    const after = await streamInfo(cluster, 'OTHER');
    assert.deepEqual(after.config, created, 'the stream config changed');
    assert.equal(after.state.messages, stored, 'start-up changed the stream contents');
    assert.match(readLog(cluster, second.id), /using existing stream OTHER/);
    assert.match(readLog(cluster, second.id), /stream OTHER keeps 1 replica and --stream-replicas asks for 3: sigstream does not change an existing stream/);
    assert.doesNotMatch(readLog(cluster, second.id), /created stream OTHER/);
    // And the second instance works on it, seeing the history the first one wrote.
    const c = await connect(second.url, { timeoutMs: T });
    const joined = await c.request({ type: 'join', room: 'setup-b' }, T);
    assert.equal(joined.type, 'joined', JSON.stringify(joined));
    assert.deepEqual(joined.peers, []);
    assert.ok(joined.seq > stored, `joined seq ${joined.seq} after the ${stored} stored messages`);
    assert.equal((await c.request({ type: 'leave' }, T)).type, 'ack');
    await c.close();
    const events = await history(cluster, 'setup-b', ['--stream', 'OTHER', '--subject-prefix', 'other']);
    assert.deepEqual(events.map((e) => [e.kind, e.instance]), [
      ['join', first.id], ['join', first.id], ['signal', first.id], ['leave', first.id], ['leave', first.id],
      ['join', second.id], ['leave', second.id],
    ]);
    assert.equal((await cluster.stopInstance(second.id)).code, 0);
  });

  await t.test('(b) a stream made by an operator with their own settings is used as it is', async () => {
    // Memory storage, 5 minutes, per-subject limit: none of it what sigstream would pick.
    const operatorConfig = {
      name: 'OPS',
      description: 'made by the operator',
      subjects: ['ops.room.>'],
      retention: 'limits',
      storage: 'memory',
      max_age: 300 * NS,
      max_bytes: 32 * 1024 * 1024,
      max_msgs_per_subject: 5000,
      duplicate_window: 10 * NS,
      num_replicas: 1,
      republish: { src: 'ops.room.>', dest: 'ops.live.>' },
    };
    await createStreamAsOperator(cluster, operatorConfig);
    const before = (await streamInfo(cluster, 'OPS')).config;
    const inst = await cluster.startInstance(undefined, {
      env: { SIGSTREAM_STREAM: 'OPS', SIGSTREAM_SUBJECT_PREFIX: 'ops', SIGSTREAM_RETENTION_MAX_AGE: '1d' },
    });
    await joinAndSignal(inst.url, 'setup-ops');
    const after = (await streamInfo(cluster, 'OPS')).config;
    assert.deepEqual(after, before);
    assert.equal(after.storage, 'memory');
    assert.equal(after.max_age, 300 * NS);
    assert.equal(after.max_msgs_per_subject, 5000);
    assert.equal(after.description, 'made by the operator');
    const events = await history(cluster, 'setup-ops', ['--stream', 'OPS', '--subject-prefix', 'ops']);
    assert.deepEqual(events.map((e) => e.kind), ['join', 'join', 'signal', 'leave', 'leave']);
    assert.equal((await cluster.stopInstance(inst.id)).code, 0);
  });

  await t.test('(c) a stream made for another subject prefix is refused: clear log line, exit 1, stream untouched', async () => {
    const maker = await cluster.startInstance(undefined, { env: { SIGSTREAM_STREAM: 'X', SIGSTREAM_SUBJECT_PREFIX: 'aaa' } });
    await joinAndSignal(maker.url, 'setup-c');
    assert.equal((await cluster.stopInstance(maker.id)).code, 0);
    const before = await streamInfo(cluster, 'X');
    assert.deepEqual(before.config.subjects, ['aaa.room.>']);

    const { id, exit, readyzSeen, log } = await startExpectingExit(cluster,
      { SIGSTREAM_STREAM: 'X', SIGSTREAM_SUBJECT_PREFIX: 'bbb' });
    assert.equal(exit.code, 1, `${id} exit: ${JSON.stringify(exit)}\n${log}`);
    assert.ok(!readyzSeen.has(200), `${id} reported ready on a stream it cannot use`);
    assert.match(log, /stream X exists but is not shaped for sigstream: it needs subject 'bbb\.room\.>'/);
    assert.match(log, /cannot use stream X; stopping/);
    const after = await streamInfo(cluster, 'X');
    assert.deepEqual(after.config, before.config, 'the refused stream was changed');
    assert.equal(after.state.messages, before.state.messages);
    // Its history is still readable with the prefix it was made for.
    assert.deepEqual((await history(cluster, 'setup-c', ['--stream', 'X', '--subject-prefix', 'aaa']))
      .map((e) => e.kind), ['join', 'join', 'signal', 'leave', 'leave']);
  });

  await t.test('(c) an operator stream on the right subjects but without the live RePublish is refused too', async () => {
    await createStreamAsOperator(cluster, {
      name: 'NOREPUB', subjects: ['norep.room.>'], storage: 'file', retention: 'limits', num_replicas: 1,
    });
    const before = await streamInfo(cluster, 'NOREPUB');
    const { id, exit, readyzSeen, log } = await startExpectingExit(cluster,
      { SIGSTREAM_STREAM: 'NOREPUB', SIGSTREAM_SUBJECT_PREFIX: 'norep' });
    assert.equal(exit.code, 1, `${id} exit: ${JSON.stringify(exit)}\n${log}`);
    assert.ok(!readyzSeen.has(200));
    assert.match(log, /stream NOREPUB exists but is not shaped for sigstream/);
    assert.match(log, /RePublish 'norep\.room\.>' -> 'norep\.live\.>'/);
    assert.deepEqual((await streamInfo(cluster, 'NOREPUB')).config, before.config);
  });

  await t.test('(c) a new stream whose subjects overlap an existing stream: says why, exits 1, creates nothing', async () => {
    // SIGSTREAM (made by i1) already owns sigstream.room.>; a second stream
    // name with the same subject prefix cannot be created. JetStream answers
    // error 10065, "subjects overlap with an existing stream".
    const sigstreamBefore = (await streamInfo(cluster, 'SIGSTREAM')).config;
    const { id, exit, readyzSeen, log } = await startExpectingExit(cluster, { SIGSTREAM_STREAM: 'SECOND' });
    assert.equal(exit.code, 1, `${id} exit: ${JSON.stringify(exit)}\n${log}`);
    assert.ok(!readyzSeen.has(200), `${id} reported ready without a stream`);
    assert.equal(await streamInfo(cluster, 'SECOND'), undefined);
    assert.deepEqual((await streamInfo(cluster, 'SIGSTREAM')).config, sigstreamBefore);
    assert.match(log, /cannot create stream SECOND/);
    // The reason, in words an operator can act on.
    assert.match(log, /overlap with an existing stream/i, `no log line says why SECOND cannot be created:\n${log}`);
  });

  await t.test('every log line of every instance, including the failures above, names its instance', async () => {
    // Issue 2: "Logs through spdlog with the instance id in every line".
    const offenders = [];
    for (const inst of cluster.instances) {
      const lines = readLog(cluster, inst.id).split('\n').filter((l) => l !== '' && !l.startsWith('--- '));
      for (const line of lines) if (!line.includes(`instance=${inst.id} `)) offenders.push(`${inst.id}: ${line}`);
    }
    assert.deepEqual(offenders.slice(0, 10), [], `${offenders.length} log lines without their instance id`);
  });

  await t.test('the first instance, on its own stream, never noticed any of it', async () => {
    const i1 = cluster.instance('i1');
    assert.ok(i1.alive);
    assert.equal((await httpGet(`${i1.httpUrl}/readyz`)).status, 200);
    await joinAndSignal(i1.url, 'setup-end');
    assert.deepEqual((await history(cluster, 'setup-end')).map((e) => e.kind),
      ['join', 'join', 'signal', 'leave', 'leave']);
  });
});
