// The client as an npm package (clients/js): `npm pack` makes a tarball of
// exactly the modules the instances serve (byte for byte web/'s), with the
// declarations and the README; installed into a scratch project it imports
// by name, and the README's Node example runs as written against a cluster
// (its address aside) and reaches another peer; so do the Node snippets of
// README.md and docs/client.md. tests/browser/client_package loads the same
// install, and the browser snippets, in a page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startCluster, connect, REPO_ROOT } from '../lib/cluster.mjs';
import { PACKAGE_DIR, PACKAGE_FILES, packAndInstall } from '../lib/client_package.mjs';
import { snippets } from '../lib/doc_snippets.mjs';

let cluster;
let install;
before(async () => {
  cluster = await startCluster({ instances: 2 });
  install = packAndInstall();
});
after(async () => {
  install?.remove();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

test('npm pack: the modules the instances serve, their declarations, the README and package.json, nothing else', () => {
  assert.deepEqual(install.packed, [...PACKAGE_FILES, 'README.md', 'package.json'].sort());
  const installed = path.join(install.appDir, 'node_modules', 'sigstream-client');
  for (const file of PACKAGE_FILES) {
    assert.ok(fs.readFileSync(path.join(installed, file)).equals(fs.readFileSync(path.join(PACKAGE_DIR, '../../web', file))),
      `${file} is web/${file}`);
  }
});

test('installed, it imports by name (both entry points) from Node', () => {
  const out = execFileSync('node', ['--input-type=module', '-e', `
    import { SigstreamClient, SigstreamError, backoffDelay } from 'sigstream-client';
    import { PeerMesh } from 'sigstream-client/negotiation';
    console.log([typeof SigstreamClient, typeof SigstreamError, typeof backoffDelay, typeof PeerMesh].join(' '));
  `], { cwd: install.appDir, encoding: 'utf8' });
  assert.equal(out.trim(), 'function function function function');
});

// The snippet, with the local cluster's address put in for scripts/dev's.
function writeSnippet(code, name) {
  const file = path.join(install.appDir, name);
  fs.writeFileSync(file, code.replaceAll('ws://127.0.0.1:8080/ws', cluster.url));
  return file;
}

for (const doc of [path.join(PACKAGE_DIR, 'README.md'), path.join(REPO_ROOT, 'docs', 'client.md')]) {
  const where = path.relative(REPO_ROOT, doc);
  test(`${where}: the Node example runs as written and signals the peer already in the room`, async () => {
    const [code] = snippets(doc, 'node');
    assert.ok(code?.includes("from 'sigstream-client'"), `${where} has a Node example`);
    // Someone is in the room first: the example should see them and signal them.
    const other = await connect(cluster.url);
    await other.request({ type: 'join', room: 'demo', meta: { name: 'waiting' } });
    const file = writeSnippet(code, 'example.mjs');
    const out = execFileSync('node', [file], { cwd: install.appDir, encoding: 'utf8', timeout: 20_000 });
    assert.match(out, /^I am \S+ and 1 other peers are here$/m);
    const signal = await other.next('signal');
    assert.deepEqual(signal.data, { hello: 'offer goes here' });
    other.close();
  });
}

test("README.md: the raw WebSocket example runs on Node 20 as written and signals the peer already in the room", async () => {
  const [code] = snippets(path.join(REPO_ROOT, 'README.md'), 'node-forever');
  assert.ok(code?.includes("new WebSocket('ws://127.0.0.1:8080/ws')"), 'README has the raw WebSocket example');
  const other = await connect(cluster.url);
  await other.request({ type: 'join', room: 'demo', meta: { name: 'waiting' } });
  // It stays connected, as a client would: stopped once it has signalled.
  const child = spawn('node', [writeSnippet(code, 'raw.mjs')], { cwd: install.appDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  try {
    const signal = await Promise.race([
      other.next('signal'),
      new Promise((_, reject) => child.on('exit', (code) => reject(new Error(`the example exited (${code}): ${stderr}`)))),
    ]);
    assert.deepEqual(signal.data, { hello: 'offer goes here' });
  } finally {
    child.kill();
    other.close();
  }
});
