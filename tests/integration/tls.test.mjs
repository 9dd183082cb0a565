// TLS termination (wss) in HAProxy, rendered from haproxy/haproxy.cfg with
// SIGSTREAM_LB_TLS_CERT set, as `scripts/dev up --tls` does: clients that
// trust the (self-signed, pinned) certificate join and signal across two
// instances through the TLS bind; clients that do not trust it, plain ws://
// on the TLS port and weak TLS settings are refused; HSTS only on TLS
// answers; and, through a second HAProxy from the same template in front of
// an echo server, the X-Forwarded-Proto the instances receive and the
// optional plain-to-https redirect. Loopback only; every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { startCluster, connect, httpGet, freePort, waitFor, HAPROXY_TEMPLATE } from '../lib/cluster.mjs';

const HSTS_MAX_AGE = '600';
let cluster;
before(async () => {
  cluster = await startCluster({ instances: 2, tls: true, lbEnv: { SIGSTREAM_LB_HSTS: HSTS_MAX_AGE } });
});
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// A TLS handshake with the given client options; resolves {ok, protocol, cipher} or {ok: false, error}.
function handshake(port, options, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ca: cluster.tlsCa, ...options });
    const timer = setTimeout(() => { sock.destroy(); resolve({ ok: false, error: new Error('handshake timeout') }); }, timeoutMs);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      const result = { ok: true, protocol: sock.getProtocol(), cipher: sock.getCipher().name };
      sock.end();
      resolve(result);
    });
    sock.once('error', (error) => { clearTimeout(timer); resolve({ ok: false, error }); });
  });
}

test('wss through HAProxy: pinned certificate, join and signal across two instances; plain ws:// still works', { timeout: 30_000 }, async () => {
  const pin = { ca: cluster.tlsCa };
  const a = await cluster.connect(cluster.tlsUrl, pin);
  let b;
  for (let k = 0; k < 10 && !b; k++) {
    const c = await cluster.connect(cluster.tlsUrl, pin);
    if (c.instance !== a.instance) b = c;
  }
  assert.ok(b, `HAProxy put every wss client on ${a.instance}`);
  assert.ok(a.instance && b.instance && a.instance !== b.instance);

  // The connection really is TLS, with the cluster's certificate.
  const sock = a.ws._socket;
  assert.equal(sock.encrypted, true);
  assert.match(sock.getProtocol(), /^TLSv1\.[23]$/);
  assert.equal(sock.getPeerCertificate().fingerprint256, new X509Certificate(cluster.tlsCa).fingerprint256);

  const ja = await a.request({ type: 'join', room: 'tls-room' });
  assert.equal(ja.type, 'joined');
  const jb = await b.request({ type: 'join', room: 'tls-room' });
  assert.deepEqual(jb.peers.map((p) => p.peer), [ja.peer]);
  assert.equal((await a.next('peer-joined')).peer, jb.peer);
  assert.equal((await b.request({ type: 'signal', to: ja.peer, data: { sdp: 'offer over wss' } })).type, 'ack');
  const got = await a.next('signal');
  assert.equal(got.from, jb.peer);
  assert.deepEqual(got.data, { sdp: 'offer over wss' });
  a.send({ type: 'signal', to: jb.peer, data: { sdp: 'answer over wss' } });
  assert.deepEqual((await b.next('signal')).data, { sdp: 'answer over wss' });

  // Decision: plain http stays available next to TLS (local tools, tests);
  // a plain peer is in the same room as the wss ones.
  const plain = await cluster.connect(cluster.url);
  assert.equal(plain.ws._socket.encrypted, undefined);
  const jp = await plain.request({ type: 'join', room: 'tls-room' });
  assert.deepEqual(jp.peers.map((p) => p.peer).sort(), [ja.peer, jb.peer].sort());
  plain.send({ type: 'signal', to: ja.peer, data: 'from plain' });
  assert.equal((await a.next({ type: 'signal', from: jp.peer })).data, 'from plain');
});

test('a client that does not trust the certificate, or checks another name, is refused', { timeout: 30_000 }, async () => {
  await assert.rejects(connect(cluster.tlsUrl), (err) => {
    assert.match(String(err.code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/, `${err.code}: ${err.message}`);
    return true;
  });
  await assert.rejects(connect(cluster.tlsUrl, { ca: cluster.tlsCa, servername: 'sig.example.com' }), (err) => {
    assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID', err.message);
    return true;
  });
  // https:// too (the demo page), and the same with the certificate trusted.
  await assert.rejects(httpGet(`${cluster.httpsUrl}/healthz`), /self[- ]signed|verify/i);
  assert.equal((await httpGet(`${cluster.httpsUrl}/healthz`, { ca: cluster.tlsCa })).status, 200);
});

test('plain ws:// and http:// to the TLS port fail', { timeout: 30_000 }, async () => {
  const port = cluster.tlsPort;
  await assert.rejects(connect(`ws://127.0.0.1:${port}/ws`, { timeoutMs: 3000 }));
  let status = null;
  try {
    status = (await httpGet(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 3000 })).status;
  } catch { /* refused: the expected outcome */ }
  assert.notEqual(status, 200, 'the TLS port answered plain http');
});

test('TLS settings: 1.2 and 1.3 with AEAD ciphers; a TLS 1.2 client offering only CBC ciphers is refused', { timeout: 30_000 }, async () => {
  const port = cluster.tlsPort;
  const v13 = await handshake(port, {});
  assert.ok(v13.ok, v13.error?.message);
  assert.equal(v13.protocol, 'TLSv1.3');
  const v12 = await handshake(port, { maxVersion: 'TLSv1.2' });
  assert.ok(v12.ok, v12.error?.message);
  assert.equal(v12.protocol, 'TLSv1.2');
  assert.match(v12.cipher, /^ECDHE-.*(GCM|CHACHA20)/);
  // OpenSSL's defaults would accept this one; the configured list does not.
  const cbc = await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA' });
  assert.equal(cbc.ok, false, `a CBC-only TLS 1.2 client got ${cbc.cipher}`);
});

test('HSTS (SIGSTREAM_LB_HSTS) is sent on TLS answers only', { timeout: 30_000 }, async () => {
  const secure = await httpGet(`${cluster.httpsUrl}/healthz`, { ca: cluster.tlsCa });
  assert.equal(secure.status, 200);
  assert.equal(secure.headers['strict-transport-security'], `max-age=${HSTS_MAX_AGE}`);
  const plain = await httpGet(`${cluster.httpUrl}/healthz`);
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['strict-transport-security'], undefined);
});

// ---------------------------------------------------------------------------
// The same template in front of an echo server: what the instances receive
// ---------------------------------------------------------------------------

async function startEcho(t) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return server.address().port;
}

// HAProxy from haproxy/haproxy.cfg with one server, the echo, and the
// cluster's certificate. Resolves {plainUrl, tlsUrl}.
async function startLbInFrontOf(t, echoPort, name, env = {}) {
  const [plainPort, tlsPort] = [await freePort(), await freePort()];
  const cfg = path.join(cluster.dir, `${name}.cfg`);
  const template = fs.readFileSync(HAPROXY_TEMPLATE, 'utf8');
  fs.writeFileSync(cfg, template.replace(/^[ \t]*# @SIGSTREAM_SERVERS@[ \t]*$/m, `    server echo 127.0.0.1:${echoPort} check`));
  const logFile = path.join(cluster.dir, 'logs', `${name}.log`);
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cluster.haproxyBin, ['-db', '-f', cfg], {
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      SIGSTREAM_LB_BIND: `127.0.0.1:${plainPort}`,
      SIGSTREAM_LB_SOCKET: path.join(cluster.dir, `${name}.sock`),
      SIGSTREAM_LB_MAXCONN: '256',
      SIGSTREAM_LB_CHECK_INTER: '500ms',
      SIGSTREAM_LB_TLS_CERT: path.join(cluster.dir, 'tls', 'sigstream.pem'),
      SIGSTREAM_LB_TLS_BIND: `127.0.0.1:${tlsPort}`,
      SIGSTREAM_LB_TLS_REDIRECT: undefined,
      SIGSTREAM_LB_HSTS: undefined,
      ...env,
    },
  });
  fs.closeSync(log);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.once('exit', kill);
  t.after(async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(kill, 5000);
    await exited;
    clearTimeout(timer);
  });
  const tlsUrl = `https://127.0.0.1:${tlsPort}`;
  try {
    await waitFor(async () => child.exitCode === null
      && (await httpGet(`${tlsUrl}/probe`, { ca: cluster.tlsCa })).status === 200,
    { timeoutMs: 15_000, what: `${name}: HAProxy in front of the echo server` });
  } catch (err) {
    err.message += `\n${fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n')}`;
    throw err;
  }
  return { plainUrl: `http://127.0.0.1:${plainPort}`, tlsUrl };
}

test('upstream requests carry X-Forwarded-Proto: https over TLS, http otherwise (a client\'s own value is replaced)', { timeout: 30_000 }, async (t) => {
  const echo = await startEcho(t);
  const lb = await startLbInFrontOf(t, echo, 'haproxy-echo');
  const secure = JSON.parse((await httpGet(`${lb.tlsUrl}/a`, { ca: cluster.tlsCa })).body);
  assert.equal(secure.headers['x-forwarded-proto'], 'https');
  assert.equal(secure.headers['x-forwarded-for'], '127.0.0.1');
  const plain = JSON.parse((await httpGet(`${lb.plainUrl}/b`)).body);
  assert.equal(plain.headers['x-forwarded-proto'], 'http');
  const spoofed = JSON.parse((await httpGet(`${lb.plainUrl}/c`, { headers: { 'X-Forwarded-Proto': 'https' } })).body);
  assert.equal(spoofed.headers['x-forwarded-proto'], 'http');
});

test('SIGSTREAM_LB_TLS_REDIRECT: plain http gets a 308 to the https origin, path and query kept', { timeout: 30_000 }, async (t) => {
  const echo = await startEcho(t);
  const origin = 'https://sig.example.com';
  const lb = await startLbInFrontOf(t, echo, 'haproxy-redirect', { SIGSTREAM_LB_TLS_REDIRECT: origin });
  const plain = await httpGet(`${lb.plainUrl}/ws?x=1`);
  assert.equal(plain.status, 308);
  assert.equal(plain.headers.location, `${origin}/ws?x=1`);
  const secure = await httpGet(`${lb.tlsUrl}/ws?x=1`, { ca: cluster.tlsCa });
  assert.equal(secure.status, 200);
  assert.equal(JSON.parse(secure.body).url, '/ws?x=1');
});
