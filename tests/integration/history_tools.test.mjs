// The history tools against a real cluster: a scripted call (joins, a full
// offer/answer/candidate exchange, a broadcast, a leave, a disconnect), then
// `sigstream history` in every format and with every filter, `state --at`,
// `--as` for each peer, `rooms`, and the admin API must all agree with what
// the clients saw. Bad input: no history, bad values, NATS unreachable, an
// undecodable stored event, and the admin API's 401/404/400 answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { startCluster, connect, httpGet, waitFor, sleep, freePort } from '../lib/cluster.mjs';

const TOKEN = `admin-${process.pid}-${Date.now()}`;
const ROOM = 'debug/ü call.*>';     // '/', '.', '*', '>', a space and UTF-8: all legal
const QUIET = 'quiet room';         // joined and left: history, no members
const GARBAGE = 'garbage-room';     // holds one undecodable stored event

const OFFER_SDP = [
  'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9', 'c=IN IP4 127.0.0.1', 'a=mid:0',
  'a=rtpmap:111 opus/48000/2', 'a=rtpmap:63 red/48000/2', 'a=rtpmap:9 G722/8000',
  'a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'c=IN IP4 127.0.0.1', 'a=mid:1',
  'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 rtx/90000',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 127.0.0.1', 'a=mid:2', '',
].join('\r\n');
const ANSWER_SDP = OFFER_SDP.replace('o=- 4611731400430051336', 'o=- 99').replace('m=video 9', 'm=video 0');

let cluster, i1, i2;
const clients = {};
const acked = {};  // name -> seq of what it did, from joined/ack

const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGSTREAM_')));

// `sigstream ARGS...` -> {code, stdout, stderr}; never rejects.
function run(args, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve) => {
    execFile(cluster.bin, args, { timeout: timeoutMs, env: cleanEnv(), maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}
const nats = () => ['--nats-url', cluster.natsUrl];
// The events as stored (addresses shown), unless `extra` asks for --redact.
async function jsonl(room, extra = []) {
  const redaction = extra.some((a) => a.startsWith('--redact')) ? [] : ['--no-redact'];
  const r = await run(['history', room, ...nats(), '--format', 'jsonl', ...redaction, ...extra]);
  assert.equal(r.code, 0, `history ${extra.join(' ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const admin = (path, token = TOKEN, instance = i1) =>
  httpGet(`${instance.httpUrl}${path}`, { timeoutMs: 10_000, headers: token ? { Authorization: `Bearer ${token}` } : {} });
const roomPath = (room) => `/admin/rooms/${encodeURIComponent(room)}`;

// Publishes raw bytes on a subject with the NATS text protocol (a corrupt
// event, as a newer or broken writer might leave in the stream).
function publishRaw(subject, payload) {
  return new Promise((resolve, reject) => {
    const url = new URL(cluster.natsUrl);
    const sock = net.connect(Number(url.port), url.hostname);
    let seen = '';
    sock.on('data', (d) => {
      seen += d.toString();
      if (seen.includes('PONG')) { sock.end(); resolve(); }
      if (seen.includes('-ERR')) { sock.destroy(); reject(new Error(seen)); }
    });
    sock.on('error', reject);
    sock.write(`CONNECT {"verbose":false}\r\nPUB ${subject} ${Buffer.byteLength(payload)}\r\n${payload}\r\nPING\r\n`);
  });
}

async function joinAs(name, instance, room = ROOM) {
  const c = await connect(instance.url);
  clients[name] = c;
  const joined = await c.request({ type: 'join', room, meta: { name } });
  assert.equal(joined.type, 'joined', JSON.stringify(joined));
  c.peer = joined.peer;
  acked[`join ${name}`] = joined.seq;
  return joined;
}
async function signal(from, to, data, label) {
  const ack = await clients[from].request({ type: 'signal', ...(to ? { to: clients[to].peer } : {}), data });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  acked[label] = ack.seq;
}

before(async () => {
  cluster = await startCluster({ instances: 2, env: { SIGSTREAM_ADMIN_TOKEN: TOKEN } });
  [i1, i2] = cluster.instances;

  // The quiet room first: its activity is older than the call's.
  const q = await connect(i2.url);
  assert.equal((await q.request({ type: 'join', room: QUIET })).type, 'joined');
  assert.equal((await q.request({ type: 'leave' })).type, 'ack');
  await q.close();

  await joinAs('ana', i1);
  await joinAs('bo', i2);
  await clients.ana.next('peer-joined');  // ana's instance knows bo before ana signals it
  await signal('ana', 'bo', { description: { type: 'offer', sdp: OFFER_SDP } }, 'offer');
  await signal('bo', 'ana', { description: { type: 'answer', sdp: ANSWER_SDP } }, 'answer');
  await signal('ana', 'bo', { candidate: { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0' } }, 'host');
  await signal('bo', 'ana', { candidate: { candidate: 'candidate:2 1 udp 1686052607 127.0.0.2 50001 typ srflx raddr 127.0.0.1 rport 50000', sdpMid: '0' } }, 'srflx');
  await signal('ana', 'bo', { candidate: { candidate: 'candidate:3 1 tcp 41885439 127.0.0.3 3478 typ relay raddr 127.0.0.1 rport 50000', sdpMid: '0' } }, 'relay');
  await signal('ana', 'bo', { candidate: { candidate: '', sdpMid: '0' } }, 'eoc');
  await signal('ana', null, { chat: 'hello everyone' }, 'broadcast');
  await joinAs('cy', i1);
  await clients.bo.next((m) => m.type === 'peer-joined' && m.peer === clients.cy.peer);
  const left = await clients.bo.request({ type: 'leave' });
  acked['leave bo'] = left.seq;
  await clients.cy.next((m) => m.type === 'peer-left' && m.peer === clients.bo.peer);  // cy saw it before going
  clients.cy.ws.close(1001);  // its tab closes
  // ana sees cy go: the disconnect is in the history.
  const gone = await clients.ana.next((m) => m.type === 'peer-left' && m.peer === clients.cy.peer, 10_000);
  acked['leave cy'] = gone.seq;
});

after(async () => {
  for (const c of Object.values(clients)) c.ws?.terminate();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

test('jsonl: every event in order, with the seqs the clients were given and one-line payload summaries', async () => {
  const events = await jsonl(ROOM);
  assert.deepEqual(events.map((e) => e.seq), Object.values(acked));
  assert.deepEqual(events.map((e) => `${e.kind} ${e.peer ?? e.from}`), [
    `join ${clients.ana.peer}`, `join ${clients.bo.peer}`, `signal ${clients.ana.peer}`, `signal ${clients.bo.peer}`,
    `signal ${clients.ana.peer}`, `signal ${clients.bo.peer}`, `signal ${clients.ana.peer}`, `signal ${clients.ana.peer}`,
    `signal ${clients.ana.peer}`, `join ${clients.cy.peer}`, `leave ${clients.bo.peer}`, `leave ${clients.cy.peer}`,
  ]);
  const byLabel = Object.fromEntries(Object.keys(acked).map((label, i) => [label, events[i]]));
  assert.equal(byLabel.offer.summary, 'offer: audio(opus,red,G722) video(VP8,rtx) application(webrtc-datachannel)');
  assert.equal(byLabel.answer.summary, 'answer: audio(opus,red,G722) video(rejected) application(webrtc-datachannel)');
  assert.equal(byLabel.host.summary, 'candidate: host udp');
  assert.equal(byLabel.srflx.summary, 'candidate: srflx udp');
  assert.equal(byLabel.relay.summary, 'candidate: relay tcp');
  assert.equal(byLabel.eoc.summary, 'end-of-candidates');
  assert.match(byLabel.broadcast.summary, /^\d+ bytes$/);
  assert.equal(byLabel.broadcast.to, undefined);
  assert.equal(byLabel.offer.to, clients.bo.peer);
  assert.deepEqual(byLabel['join ana'].meta, { name: 'ana' });
  assert.equal(byLabel['join ana'].instance, i1.id);
  assert.equal(byLabel['join bo'].instance, i2.id);
  assert.equal(byLabel['leave bo'].reason, 'leave');
  assert.equal(byLabel['leave cy'].reason, 'disconnect');
  assert.equal(byLabel.offer.data.description.sdp, OFFER_SDP);
  for (const e of events) assert.equal(e.room, ROOM);
});

test('table: a header and one row per event, with summaries', async () => {
  const r = await run(['history', ROOM, ...nats()]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /SEQ\s+TIME \(UTC\)\s+KIND\s+PEER\s+TARGET\s+DETAILS/);
  assert.equal(lines.length, 1 + Object.keys(acked).length);
  // Peers by the name in their join's meta and the start of their id.
  const offerRow = lines.find((l) => l.trim().startsWith(`${acked.offer} `));
  const short = (name) => `${name} \\(${clients[name].peer.slice(0, 6)}\\)`;
  assert.match(offerRow, new RegExp(`^\\s*\\d+  \\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}  signal\\s+${short('ana')}\\s+${short('bo')}\\s+offer: audio\\(opus`));
  // Narrow enough for a terminal up to the details.
  assert.ok(offerRow.indexOf('offer: audio') <= 90, `details start at column ${offerRow.indexOf('offer: audio')}`);
  assert.match(r.stderr, /12 of 12 events shown/);
});

test('--as PEER prints exactly the frames each peer received, in order', async () => {
  for (const name of ['ana', 'bo', 'cy']) {
    const sent = await jsonl(ROOM, ['--as', clients[name].peer]);
    const received = clients[name].messages.filter((m) => ['joined', 'peer-joined', 'peer-left', 'signal'].includes(m.type));
    const strip = (m) => { const { id, resume, ...rest } = m; return rest; };
    assert.deepEqual(sent.map(strip), received.map(strip), `what ${name} was sent`);
    assert.ok(sent.length >= 2, `${name} was sent something`);
  }
});

test('--peer, --kind, --limit, --since and --until select the right events', async () => {
  const all = await jsonl(ROOM);
  const bo = clients.bo.peer;
  const boMember = (e) => e.seq > acked['join bo'] && e.seq < acked['leave bo'];
  const ofBo = all.filter((e) => e.peer === bo || e.from === bo || e.to === bo
    || (e.kind === 'signal' && !e.to && e.from !== bo && boMember(e)));
  assert.deepEqual((await jsonl(ROOM, ['--peer', bo])).map((e) => e.seq), ofBo.map((e) => e.seq));
  assert.deepEqual((await jsonl(ROOM, ['--kind', 'signal'])).map((e) => e.seq), all.filter((e) => e.kind === 'signal').map((e) => e.seq));
  assert.deepEqual((await jsonl(ROOM, ['--kind', 'leave,join'])).map((e) => e.kind), ['join', 'join', 'join', 'leave', 'leave']);
  assert.deepEqual(await jsonl(ROOM, ['--limit', '3']), all.slice(0, 3));
  const [from, to] = [all[3].seq, all[7].seq];
  assert.deepEqual(await jsonl(ROOM, ['--since', String(from), '--until', String(to)]), all.slice(3, 8));
  const [t0, t1] = [all[2].time, all[6].time];
  assert.deepEqual(await jsonl(ROOM, ['--since', t0, '--until', t1]),
    all.filter((e) => e.time >= t0 && e.time <= t1));
  assert.deepEqual(await jsonl(ROOM, ['--since', '10m']), all);
  assert.deepEqual(await jsonl(ROOM, ['--since', '2h', '--until', '1h']), []);
  assert.deepEqual(await jsonl(ROOM, ['--peer', bo, '--kind', 'join', '--limit', '1']), [all[1]]);
});

test('state --at: membership at several points, by sequence and by time', async () => {
  const state = async (at) => {
    const r = await run(['state', ROOM, ...nats(), '--format', 'json', ...(at ? ['--at', String(at)] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const members = (s) => s.members.map((m) => `${m.peer}@${m.instance}`);
  const p = (n, inst) => `${clients[n].peer}@${inst.id}`;
  assert.deepEqual(members(await state(acked['join ana'] - 1)), []);
  assert.deepEqual(members(await state(acked['join bo'])), [p('ana', i1), p('bo', i2)]);
  assert.deepEqual(members(await state(acked['join cy'])), [p('ana', i1), p('bo', i2), p('cy', i1)]);
  assert.deepEqual(members(await state(acked['leave bo'])), [p('ana', i1), p('cy', i1)]);
  const now = await state();
  assert.deepEqual(members(now), [p('ana', i1)]);
  assert.equal(now.seq, acked['leave cy']);
  const all = await jsonl(ROOM);
  assert.deepEqual(members(await state(all.find((e) => e.seq === acked['join cy']).time)).slice(0, 1), [p('ana', i1)]);
  const table = await run(['state', ROOM, ...nats(), '--at', String(acked['join bo'])]);
  assert.match(table.stdout, /2 members/);
  assert.match(table.stdout, new RegExp(clients.bo.peer));
});

test('rooms lists rooms with history by activity; --active only those with members', async () => {
  const r = await run(['rooms', ...nats(), '--format', 'jsonl']);
  assert.equal(r.code, 0, r.stderr);
  const rooms = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const call = rooms.find((x) => x.room === ROOM);
  const quiet = rooms.find((x) => x.room === QUIET);
  assert.deepEqual([call.members, call.events, call.last_seq], [1, 12, acked['leave cy']]);
  assert.deepEqual([quiet.members, quiet.events], [0, 2]);
  assert.ok(rooms.indexOf(call) < rooms.indexOf(quiet), 'newest activity first');
  const active = await run(['rooms', ...nats(), '--active', '--format', 'jsonl']);
  const names = active.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).room);
  assert.ok(names.includes(ROOM) && !names.includes(QUIET), names.join(','));
  const table = await run(['rooms', ...nats()]);
  assert.match(table.stdout, /MEMBERS\s+EVENTS\s+LAST SEQ\s+LAST ACTIVITY\s+ROOM/);
});

test('mermaid: a sequence diagram with a lane per peer, an arrow per delivered signal, notes for joins and leaves', async () => {
  const r = await run(['history', ROOM, ...nats(), '--format', 'mermaid']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], 'sequenceDiagram');
  const participants = lines.filter((l) => /^\s+participant P\d+ as /.test(l));
  assert.deepEqual(participants.map((l) => l.split(' as ')[1].split(' · ')[0]), ['ana', 'bo', 'cy']);
  const arrows = lines.filter((l) => /^\s+P\d+-?->>P\d+: seq \d+ /.test(l));
  assert.equal(arrows.length, 7);  // 6 targeted signals, and the broadcast to bo (ana's only other member then)
  assert.ok(arrows.some((l) => /^\s+P1->>P2: seq \d+ offer: audio\(opus/.test(l)));
  assert.ok(arrows.some((l) => /^\s+P2-->>P1: seq \d+ candidate: srflx udp/.test(l)));
  assert.ok(arrows.some((l) => /^\s+P1-->>P2: seq \d+ to all: \d+ bytes/.test(l)));
  assert.equal(lines.filter((l) => /Note over P\d+: seq \d+ join/.test(l)).length, 3);
  assert.equal(lines.filter((l) => /Note over P\d+: seq \d+ leave \((leave|disconnect)\)/.test(l)).length, 2);
});

test('html: one self-contained page holding every event', async () => {
  const r = await run(['history', ROOM, ...nats(), '--format', 'html']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^<!doctype html>/i);
  assert.doesNotMatch(r.stdout, /(src|href)=["']https?:/i, 'no external resources');
  const data = r.stdout.match(/<script type="application\/json" id="sigstream-events">([\s\S]*?)<\/script>/);
  assert.ok(data, 'events embedded');
  // Redacted by default, as the jsonl of --redact.
  assert.deepEqual(JSON.parse(data[1]), await jsonl(ROOM, ['--redact']));
});

test('addresses in payloads are masked by default (--redact), shown with --no-redact or --redact=false', async () => {
  const plain = JSON.stringify(await jsonl(ROOM));
  assert.equal(JSON.stringify(await jsonl(ROOM, ['--redact=false'])), plain);
  const byDefault = await run(['history', ROOM, ...nats(), '--format', 'jsonl']);
  const masked = JSON.stringify(byDefault.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)));
  assert.equal(JSON.stringify(await jsonl(ROOM, ['--redact'])), masked);
  // The files made to be shared too.
  for (const format of ['html', 'mermaid', 'table']) {
    const out = (await run(['history', ROOM, ...nats(), '--format', format])).stdout;
    // (127.0.0.1 is also the NATS URL the page header names: the clients' are .2 and .3.)
    assert.doesNotMatch(out, /127\.0\.0\.[23]/, `${format} masks addresses by default`);
  }
  assert.match((await run(['history', ROOM, ...nats(), '--format', 'html', '--no-redact'])).stdout, /127\.0\.0\.2/);
  assert.match(plain, /127\.0\.0\.2/);
  assert.doesNotMatch(masked, /127\.0\.0\.\d/);
  assert.match(masked, /x\.x\.x\.x/);
  assert.match(masked, /AB:CD:EF:01/, 'a DTLS fingerprint is not an address');
});

test('--follow prints new events as they happen, and ends cleanly on SIGINT', async () => {
  const child = spawn(cluster.bin, ['history', ROOM, ...nats(), '--format', 'jsonl', '--follow',
    '--since', String(acked['leave cy'] + 1)], { env: cleanEnv() });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  try {
    await sleep(500);
    const ack = await clients.ana.request({ type: 'signal', data: { note: 'while followed' } });
    await waitFor(() => out.includes(`"seq":${ack.seq},`), { timeoutMs: 5000, what: 'the followed signal printed' });
    assert.equal(JSON.parse(out.trim().split('\n').pop()).data.note, 'while followed');
  } finally {
    child.kill('SIGINT');
  }
  assert.deepEqual(await exited, { code: 0, sig: null });
  delete acked.followed;
});

test('bad input: no history, bad values, NATS unreachable, each with a clear message and exit code', async () => {
  let r = await run(['history', 'never-used-room', ...nats()]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /room "never-used-room" has no history in stream SIGSTREAM/);
  r = await run(['state', 'never-used-room', ...nats()]);
  assert.equal(r.code, 2);
  for (const [args, pattern] of [
    [['--since', 'yesterday'], /--since: "yesterday" is not/],
    [['--until', '2026-13-01T00:00:00Z'], /--until: "2026-13-01T00:00:00Z" is not/],
    [['--format', 'pdf'], /--format: "pdf" is not a format/],
    [['--kind', 'join,wave'], /--kind: "wave" is not a kind/],
    [['--limit', '-1'], /--limit/],
    [['--limit', 'ten'], /--limit 'ten'/],
  ]) {
    r = await run(['history', ROOM, ...nats(), ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stdout, '');
  }
  r = await run(['state', ROOM, ...nats(), '--at', '12 parsecs']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--at: "12 parsecs" is not/);
  r = await run(['history', '', ...nats()]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not a room name/);
  const closed = `nats://127.0.0.1:${await freePort()}`;
  for (const cmd of [['history', ROOM], ['state', ROOM], ['rooms']]) {
    r = await run([...cmd, '--nats-url', closed]);
    assert.equal(r.code, 1, `${cmd[0]}: ${r.stderr}`);
    assert.ok(r.stderr.includes(closed), `names the URL: ${r.stderr}`);
  }
  r = await run(['history', ROOM, '--nats', cluster.natsUrl, '--limit', '1', '--format', 'jsonl']);
  assert.equal(r.code, 0, `--nats is --nats-url: ${r.stderr}`);
});

test('an undecodable stored event is shown with its sequence and skipped; the room and its instance carry on', async () => {
  const a = await connect(i2.url);
  const joined = await a.request({ type: 'join', room: GARBAGE });
  const token = Buffer.from(GARBAGE).toString('base64url');
  await publishRaw(`sigstream.room.${token}.e`, 'not a protobuf \u00ff');
  const b = await connect(i2.url);
  assert.equal((await b.request({ type: 'join', room: GARBAGE })).type, 'joined');
  await a.next((m) => m.type === 'peer-joined', 10_000);  // the live feed carried on past the bad event
  const events = await jsonl(GARBAGE);
  assert.deepEqual(events.map((e) => e.kind), ['join', 'unreadable', 'join']);
  assert.ok(events[1].seq > joined.seq && events[1].seq < events[2].seq);
  const r = await run(['history', GARBAGE, ...nats()]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, new RegExp(`${events[1].seq}\\s+unreadable\\s+.*cannot decode`));
  assert.match(r.stderr, /1 stored events could not be decoded/);
  assert.equal((await httpGet(`${i2.httpUrl}/readyz`)).status, 200);
  await a.close(); await b.close();
});

test('admin API: rooms, one room with its members and instances, history as jsonl equal to the CLI (redacted)', async () => {
  const rooms = await admin('/admin/rooms');
  assert.equal(rooms.status, 200, rooms.body);
  assert.match(rooms.headers['content-type'], /application\/json/);
  const call = JSON.parse(rooms.body).rooms.find((r) => r.room === ROOM);
  assert.equal(call.members, 1);
  const active = JSON.parse((await admin('/admin/rooms?active=1')).body).rooms.map((r) => r.room);
  assert.ok(active.includes(ROOM) && !active.includes(QUIET));

  const one = await admin(roomPath(ROOM), TOKEN, i2);
  assert.equal(one.status, 200, one.body);
  const detail = JSON.parse(one.body);
  assert.equal(detail.room, ROOM);
  assert.deepEqual(detail.members.map((m) => [m.peer, m.instance, m.meta.name]), [[clients.ana.peer, i1.id, 'ana']]);
  assert.equal(detail.members[0].joined_seq, acked['join ana']);

  const hist = await admin(`${roomPath(ROOM)}/history?format=jsonl`);
  assert.equal(hist.status, 200, hist.body);
  assert.match(hist.headers['content-type'], /application\/x-ndjson/);
  assert.equal(hist.headers['transfer-encoding'], 'chunked');
  const cli = (await run(['history', ROOM, ...nats(), '--format', 'jsonl', '--redact'])).stdout;
  assert.equal(hist.body, cli);
  const some = await admin(`${roomPath(ROOM)}/history?since=${acked.offer}&until=${acked.eoc}&limit=2`);
  assert.deepEqual(some.body.trim().split('\n').map((l) => JSON.parse(l).seq), [acked.offer, acked.answer]);
});

test('admin API: /admin/cluster lists every instance with its heartbeat, and where NATS keeps the stream', async () => {
  const r = await admin('/admin/cluster');
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body);
  const ids = body.instances.map((i) => i.instance).sort();
  assert.deepEqual(ids, cluster.instances.map((i) => i.id).sort());
  for (const i of body.instances) {
    assert.ok(i.heartbeat_age_ms >= 0 && i.heartbeat_age_ms < 5000, `a fresh heartbeat: ${JSON.stringify(i)}`);
    assert.equal(i.heartbeat.instance, i.instance);
    assert.equal(typeof i.heartbeat.peers, 'number');
    assert.equal(typeof i.heartbeat.connections, 'number');
    assert.equal(typeof i.heartbeat.rooms, 'number');
    assert.ok(i.heartbeat.started <= Date.now());
  }
  assert.equal(body.stream.name, 'SIGSTREAM');
  assert.equal(body.stream.replicas, 1);
  assert.equal(body.stream.cluster, '', 'one NATS server, no cluster');
  assert.equal((await admin('/admin/cluster', null)).status, 401);
});

test('admin API: missing or wrong token 401 (logged), unknown room 404, bad parameters 400, off without a token', async () => {
  for (const token of [null, 'wrong-token']) {
    const r = await admin('/admin/rooms', token);
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).error, 'unauthorized');
    assert.match(r.headers['www-authenticate'], /^Bearer/);
  }
  await waitFor(async () => /admin: refused GET \/admin\/rooms from 127\.0\.0\.1: no token/.test(await cluster.logTail(i1.id, 200))
    && /admin: refused GET \/admin\/rooms from 127\.0\.0\.1: wrong token/.test(await cluster.logTail(i1.id, 200)),
  { what: 'refusals logged' });
  assert.ok(!(await cluster.logTail(i1.id, 500)).includes('wrong-token'), 'the token itself is never logged');
  assert.equal((await admin(roomPath('no such room'))).status, 404);
  assert.equal((await admin(`${roomPath('no such room')}/history`)).status, 404);
  for (const [query, pattern] of [
    ['since=yesterday', /since: "yesterday" is not/], ['limit=-3', /limit/], ['format=html', /format/],
    ['bogus=1', /unknown query parameter "bogus"/], ['kind=wave', /kind/], ['since=%zz', /percent-encoding/],
  ]) {
    const r = await admin(`${roomPath(ROOM)}/history?${query}`);
    assert.equal(r.status, 400, query);
    assert.match(JSON.parse(r.body).message, pattern);
  }
  assert.equal((await admin('/admin/rooms/%zz')).status, 400);
  assert.equal((await admin('/admin/rooms/')).status, 400, 'an empty room name');
  const head = await new Promise((resolve, reject) => {
    const req = http.request(`${i1.httpUrl}/admin/rooms`, { method: 'HEAD', headers: { Authorization: `Bearer ${TOKEN}` } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end();
  });
  assert.equal(head, 405);
  assert.equal((await admin(`/admin/rooms/${'x'.repeat(201)}`)).status, 400);
  assert.equal((await admin(`${roomPath(ROOM)}/elsewhere`)).status, 404);
  // An instance with no token configured: the API is off, and says so.
  const off = await cluster.startInstance(undefined, { env: { SIGSTREAM_ADMIN_TOKEN: '' } });
  const r = await admin('/admin/rooms', TOKEN, cluster.instance(off.id));
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.body).error, 'admin-off');
  assert.match(await cluster.logTail(off.id, 100), /admin API off/);
  assert.equal((await cluster.stopInstance(off.id)).code, 0);
});

test('admin API: a followed history streams new events as they happen; the client leaving frees the request', async () => {
  const lines = [];
  const controller = new AbortController();
  const req = http.get(`${i2.httpUrl}${roomPath(ROOM)}/history?follow=1&since=${acked['leave cy']}`,
    { headers: { Authorization: `Bearer ${TOKEN}` }, signal: controller.signal }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        const parts = buf.split('\n');
        buf = parts.pop();
        lines.push(...parts.filter(Boolean).map((l) => JSON.parse(l)));
      });
      res.on('error', () => {});
    });
  req.on('error', () => {});
  await waitFor(() => lines.length >= 1, { what: 'the first line' });
  const ack = await clients.ana.request({ type: 'signal', data: { note: 'admin follow' } });
  await waitFor(() => lines.some((e) => e.seq === ack.seq), { timeoutMs: 5000, what: 'the live event streamed' });
  controller.abort();
  // Every admin worker free again: more requests at once than workers all get answers.
  const answers = await Promise.all(Array.from({ length: 6 }, () => admin('/admin/rooms', TOKEN, i2)));
  assert.ok(answers.every((a) => a.status === 200 || a.status === 503), answers.map((a) => a.status).join());
  await waitFor(async () => (await admin('/admin/rooms', TOKEN, i2)).status === 200, { what: 'admin answering' });
});

// Last: it leaves a foreign entry in the heartbeat bucket. Anyone who can
// write the bucket can put anything there; /admin/cluster still answers
// valid JSON, with such a value as a string.
test('admin API: /admin/cluster stays valid JSON when a heartbeat entry is not JSON', async () => {
  await publishRaw('$KV.SIGSTREAM_INSTANCES.not-json', 'not {json');
  let body;
  await waitFor(async () => {
    const r = await admin('/admin/cluster');
    assert.equal(r.status, 200, r.body);
    body = JSON.parse(r.body);
    return body.instances.some((i) => i.instance === 'not-json');
  }, { what: 'the foreign entry listed' });
  assert.equal(body.instances.find((i) => i.instance === 'not-json').heartbeat, 'not {json');
  for (const id of cluster.instances.filter((i) => i.alive).map((i) => i.id)) assert.ok(body.instances.some((i) => i.instance === id), id);
});
