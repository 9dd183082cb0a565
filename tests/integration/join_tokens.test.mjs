// Join tokens (issue 6): with SIGSTREAM_AUTH_KEYS set, `join` needs a compact
// JWT (HS256) naming the room (exact or prefix*), the peer's meta (the
// client's own is ignored), an expiry and optional rights. Every failure gets
// `unauthorized` (the reason is logged, never sent) and the connection carries
// on. Keys rotate: the first signs, every listed key verifies. Tokens made
// with `sigstream token` are accepted. Without keys the service runs open and
// says so at start-up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startCluster, REPO_ROOT } from '../lib/cluster.mjs';
import { snippets } from '../lib/doc_snippets.mjs';

const KEYS = 'new:secret-new-0123456789,old:secret-old-0123456789';
let cluster;
before(async () => { cluster = await startCluster({ instances: 2, env: { SIGSTREAM_AUTH_KEYS: KEYS } }); });
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

const b64 = (text) => Buffer.from(text).toString('base64url');
function jwt(payload, { secret = 'secret-new-0123456789', header = { alg: 'HS256', typ: 'JWT', kid: 'new' } } = {}) {
  const part = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  return `${part}.${crypto.createHmac('sha256', secret).update(part).digest('base64url')}`;
}
const soon = () => Math.floor(Date.now() / 1000) + 600;

const open = (id = 'i1') => cluster.connect(cluster.instance(id).url);

function cli(args, env = {}) {
  return new Promise((resolve, reject) => execFile(cluster.bin, args, { env: { PATH: process.env.PATH, ...env } },
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
}

test('every bad token is refused with unauthorized, the reason logged and not sent; the connection carries on', async () => {
  const c = await open();
  const room = 'tok-refused';
  const now = Math.floor(Date.now() / 1000);
  const cases = {
    missing: undefined,
    malformed: 'not-a-jwt',
    expired: jwt({ room, exp: now - 10 }),
    'wrong signature': jwt({ room, exp: soon() }, { secret: 'guessed' }),
    'unknown kid': jwt({ room, exp: soon() }, { header: { alg: 'HS256', kid: 'nope' } }),
    'wrong room': jwt({ room: 'another-room', exp: soon() }),
    'wrong prefix': jwt({ room: 'tok-other*', exp: soon() }),
    'alg none': `${b64(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64(JSON.stringify({ room, exp: soon() }))}.`,
    'alg none signed': jwt({ room, exp: soon() }, { header: { alg: 'none' } }),
    'no exp': jwt({ room }),
  };
  for (const [what, token] of Object.entries(cases)) {
    const msg = { type: 'join', room };
    if (token !== undefined) msg.token = token;
    const reply = await c.request(msg);
    assert.equal(reply.type, 'error', `${what}: ${JSON.stringify(reply)}`);
    assert.equal(reply.code, 'unauthorized', what);
    if (token) assert.ok(!reply.message.includes(token), `${what}: the token is not echoed`);
  }
  assert.ok(c.isOpen);
  const ok = await c.request({ type: 'join', room, token: jwt({ room, exp: soon() }) });
  assert.equal(ok.type, 'joined', 'a good token on the same connection');
  const log = await cluster.logTail('i1', 200);
  assert.match(log, /join refused: (expired|bad signature|algorithm is not HS256|unknown key id|malformed|token for another room)/);
  assert.doesNotMatch(log, /secret-new|secret-old/, 'secrets never logged');
  for (const token of Object.values(cases)) if (token && token.length > 20) assert.ok(!log.includes(token), 'tokens never logged');
});

test('the token decides the meta, the room (exact or prefix) and the rights', async () => {
  const a = await open('i1');
  const b = await open('i2');
  const ja = await a.request({ type: 'join', room: 'team-7/standup', meta: { name: 'forged' },
    token: jwt({ room: 'team-7/*', exp: soon(), meta: { name: 'ana', role: 'host' } }) });
  assert.equal(ja.type, 'joined');
  const jb = await b.request({ type: 'join', room: 'team-7/standup',
    token: jwt({ room: 'team-7/standup', exp: soon(), meta: { name: 'bo' }, rights: { broadcast: false } }) });
  assert.deepEqual(jb.peers.map((p) => p.meta), [{ name: 'ana', role: 'host' }], 'the token\'s meta, not the client\'s');
  const direct = await b.request({ type: 'signal', to: ja.peer, data: 'hello' });
  assert.equal(direct.type, 'ack');
  const broadcast = await b.request({ type: 'signal', data: 'everyone' });
  assert.equal(broadcast.code, 'unauthorized', 'no broadcast right');
  const c = await open('i1');
  const jc = await c.request({ type: 'join', room: 'team-7/standup',
    token: jwt({ room: 'team-7/standup', exp: soon(), rights: { signal: false, broadcast: false } }) });
  assert.equal(jc.type, 'joined');
  assert.equal((await c.request({ type: 'signal', to: ja.peer, data: 'x' })).code, 'unauthorized', 'receive-only');
  const toC = await a.request({ type: 'signal', to: jc.peer, data: 'for the listener' });
  assert.equal(toC.type, 'ack');
  await c.next({ type: 'signal', seq: toC.seq });
});

test('keys rotate: a token signed with the second key is accepted; `sigstream token` mints accepted tokens', async () => {
  const c = await open('i2');
  const old = await c.request({ type: 'join', room: 'tok-rotate',
    token: jwt({ room: 'tok-rotate', exp: soon() }, { secret: 'secret-old-0123456789', header: { alg: 'HS256', kid: 'old' } }) });
  assert.equal(old.type, 'joined');
  const out = await cli(['token', '--room', 'tok-cli', '--ttl', '10m', '--meta', '{"name":"cy"}'], { SIGSTREAM_AUTH_KEYS: KEYS });
  const token = out.trim().split('\n').at(-1);
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the token alone on the last line');
  const d = await open('i1');
  const joined = await d.request({ type: 'join', room: 'tok-cli', token });
  assert.equal(joined.type, 'joined', JSON.stringify(joined));
  const other = await open('i2');
  const seen = await other.request({ type: 'join', room: 'tok-cli', token });
  assert.deepEqual(seen.peers.map((p) => p.meta), [{ name: 'cy' }]);
});

// The minting examples of docs/security.md, as shipped in examples/tokens/:
// a backend in Node or Python mints a token the service accepts, and its
// meta is what the other peers see.
test('the backend examples (examples/tokens: Node, Python standard library) mint tokens the service accepts', async () => {
  const mint = (command, file, room, meta) => new Promise((resolve, reject) => execFile(command,
    [path.join(REPO_ROOT, 'examples', 'tokens', file), room, JSON.stringify(meta)],
    { env: { PATH: process.env.PATH, SIGSTREAM_KEY: 'old:secret-old-0123456789' } },
    (err, out, stderr) => (err ? reject(new Error(`${file}: ${stderr}`)) : resolve(out.trim()))));
  const first = await open('i1');
  const tokenNode = await mint(process.execPath, 'mint_token.mjs', 'tok-examples', { name: 'ana, from Node' });
  assert.equal((await first.request({ type: 'join', room: 'tok-examples', token: tokenNode })).type, 'joined');
  const second = await open('i2');
  const tokenPython = await mint('python3', 'mint_token.py', 'tok-examples', { name: 'bo, from Python ü' });
  const joined = await second.request({ type: 'join', room: 'tok-examples', token: tokenPython });
  assert.equal(joined.type, 'joined', JSON.stringify(joined));
  assert.deepEqual(joined.peers.map((p) => p.meta), [{ name: 'ana, from Node' }]);
  assert.deepEqual((await first.next({ type: 'peer-joined' })).meta, { name: 'bo, from Python ü' });
  // Signed with a key the service does not have: refused.
  const forged = await new Promise((resolve) => execFile('python3', [path.join(REPO_ROOT, 'examples', 'tokens', 'mint_token.py'), 'tok-examples'],
    { env: { PATH: process.env.PATH, SIGSTREAM_KEY: 'old:not-the-secret' } }, (_e, out) => resolve(out.trim())));
  const third = await open('i1');
  assert.equal((await third.request({ type: 'join', room: 'tok-examples', token: forged })).code, 'unauthorized');
});

// docs/security.md shows the examples' minting functions: every line it
// shows is in the example file that the test above runs.
test('docs/security.md shows the minting code of the tested examples, line for line', () => {
  for (const [kind, file] of [['token-node', 'mint_token.mjs'], ['token-python', 'mint_token.py']]) {
    const [code] = snippets(path.join(REPO_ROOT, 'docs', 'security.md'), kind);
    assert.ok(code, `docs/security.md has the ${kind} snippet`);
    const example = fs.readFileSync(path.join(REPO_ROOT, 'examples', 'tokens', file), 'utf8').split('\n').map((l) => l.trimEnd());
    for (const line of code.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== ''))
      assert.ok(example.includes(line), `${file} has the line shown in docs/security.md: ${line}`);
  }
});

test('bad key lists and bad token requests are refused at the command line (exit 2)', async () => {
  const code = (args, env) => new Promise((resolve) => execFile(cluster.bin, args, { env: { PATH: process.env.PATH, ...env } },
    (err, _out, stderr) => resolve({ code: err ? err.code : 0, stderr })));
  for (const keys of ['nokey', 'k1:', ':secret', 'k1:a,k1:b']) {
    const r = await code(['serve', '--listen', '127.0.0.1:0', '--auth-keys', keys]);
    assert.equal(r.code, 2, `serve --auth-keys '${keys}'`);
    assert.match(r.stderr, /--auth-keys/);
    assert.ok(!r.stderr.includes(keys), 'the key list (secrets) is not echoed');
  }
  assert.equal((await code(['token', '--room', 'r'])).code, 2, 'no keys');
  assert.equal((await code(['token', '--room', '', '--auth-keys', KEYS])).code, 2, 'empty room');
  assert.equal((await code(['token', '--room', 'r', '--meta', '[1]', '--auth-keys', KEYS])).code, 2, 'meta not an object');
  assert.equal((await code(['token', '--room', 'r', '--rights', 'yes', '--auth-keys', KEYS])).code, 2, 'rights not an object');
  assert.equal((await code(['token', '--room', 'r', '--ttl', '0s', '--auth-keys', KEYS])).code, 2, 'ttl too short');
});

test('without keys the service runs open and says so loudly', async (t) => {
  const open2 = await startCluster({ instances: 1, t });
  const log = await open2.logTail('i1', 100);
  assert.match(log, /warn.*no join keys \(SIGSTREAM_AUTH_KEYS\): anyone can join any room/);
});
