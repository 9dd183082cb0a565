// Static files on the WebSocket port: the right bytes and media types,
// revalidation with ETag, 404 for what is not there, and nothing outside the
// web root, however the path is spelled.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../lib/cluster.mjs';

let cluster;
let base;
const files = {
  'index.html': '<!doctype html><title>sigstream</title>',
  'sigstream.js': 'export const version = 1;\n',
  'lib/sigstream.d.ts': 'export declare const version: number;\n',
  'style.css': 'body { margin: 0 }\n',
};

before(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-web-'));
  const root = path.join(base, 'web');
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), body);
  }
  fs.writeFileSync(path.join(base, 'secret.txt'), 'outside the web root');
  fs.symlinkSync(path.join(base, 'secret.txt'), path.join(root, 'link.txt'));
  cluster = await startCluster({ instances: 1, redis: false, env: { SIGSTREAM_WEB_ROOT: root } });
});
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
  fs.rmSync(base, { recursive: true, force: true });
});

// One raw HTTP/1.1 request, so that the path goes out exactly as written.
function rawGet(port, target, headers = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const [statusLine, ...lines] = head.split('\r\n');
      const h = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers: h, body: rest.join('\r\n\r\n') });
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`);
    setTimeout(() => { socket.destroy(); reject(new Error(`no answer to GET ${target}`)); }, 5000).unref();
  });
}

test('files are served with their media type, from the instance and through HAProxy', async () => {
  const port = cluster.instance('i1').port;
  const expected = {
    '/': ['index.html', 'text/html; charset=utf-8'],
    '/sigstream.js': ['sigstream.js', 'text/javascript; charset=utf-8'],
    '/lib/sigstream.d.ts': ['lib/sigstream.d.ts', 'text/plain; charset=utf-8'],
    '/style.css?v=2': ['style.css', 'text/css; charset=utf-8'],
  };
  for (const p of [port, Number(new URL(cluster.httpUrl).port)]) {
    for (const [target, [name, type]] of Object.entries(expected)) {
      const res = await rawGet(p, target);
      assert.equal(res.status, 200, target);
      assert.equal(res.headers['content-type'], type, target);
      assert.equal(res.body, files[name], target);
      assert.equal(res.headers['cache-control'], 'no-cache');
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(res.headers.etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    }
  }
});

test('a current copy is revalidated with 304, a stale one gets the file', async () => {
  const port = cluster.instance('i1').port;
  const first = await rawGet(port, '/sigstream.js');
  const again = await rawGet(port, '/sigstream.js', { 'If-None-Match': first.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body, '');
  const stale = await rawGet(port, '/sigstream.js', { 'If-None-Match': '"0-0"' });
  assert.equal(stale.status, 200);
  assert.equal(stale.body, files['sigstream.js']);
});

test('missing files are 404, and nothing outside the web root is ever served', async () => {
  const port = cluster.instance('i1').port;
  for (const target of ['/nope.js', '/lib/', '/lib', '/link.txt', '/../secret.txt', '/%2e%2e/secret.txt',
    '/lib/../../secret.txt', '/%2E%2E%2Fsecret.txt', '/..%5csecret.txt', '//secret.txt', '/index.html%00.js']) {
    const res = await rawGet(port, target);
    assert.ok([400, 404].includes(res.status), `${target}: ${res.status}`);
    assert.ok(!res.body.includes('outside the web root'), `${target} leaked a file outside the web root`);
  }
  // The instance and the WebSocket path are unaffected.
  assert.equal((await rawGet(port, '/healthz')).status, 200);
});
