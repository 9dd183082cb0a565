// The client's npm package (clients/js) in a page, in Chromium: packed and
// installed into a scratch project, the README's browser example (an import
// map to node_modules, no bundler) is served as the project's index.html
// and joins a room next to a peer already there. The browser examples of
// README.md and docs/client.md (importing /sigstream.js from an instance)
// run in a page of that instance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startCluster, connect, REPO_ROOT } from '../lib/cluster.mjs';
import { PACKAGE_DIR, packAndInstall } from '../lib/client_package.mjs';
import { snippets } from '../lib/doc_snippets.mjs';
import { WEB_ROOT, launch, watch } from './lib.mjs';

let context;
let dispose;
let cluster;
let install;
let server;
let webRoot;
// docs/client.md's whole-page examples, written into a copy of web/ that the
// instance serves (a page must come from the instance: Chromium keeps pages
// from elsewhere off local addresses).
const pageExamples = snippets(path.join(REPO_ROOT, 'docs', 'client.md'), 'page');
before(async () => {
  ({ context, dispose } = await launch());
  webRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-web-'));
  fs.cpSync(WEB_ROOT, webRoot, { recursive: true });
  pageExamples.forEach((html, n) => fs.writeFileSync(path.join(webRoot, `page-example-${n + 1}.html`), `<!doctype html>\n${html}\n`));
  cluster = await startCluster({ instances: 1, haproxy: false, env: { SIGSTREAM_WEB_ROOT: webRoot } });
  install = packAndInstall();
  // The scratch project's files, as any static server would serve them.
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };
  server = http.createServer((req, res) => {
    const file = path.join(install.appDir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (!file.startsWith(install.appDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
});
after(async () => {
  await dispose?.();
  server?.close();
  install?.remove();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
  if (webRoot) fs.rmSync(webRoot, { recursive: true, force: true });
});

test("the README's browser example joins a room from a page, with the package installed by npm", { timeout: 60_000 }, async () => {
  const [html] = snippets(path.join(PACKAGE_DIR, 'README.md'), 'browser');
  assert.ok(html?.includes('sigstream-client'), 'the README has a browser example');
  const other = await connect(cluster.instance('i1').url);
  await other.request({ type: 'join', room: 'demo', meta: { name: 'waiting' } });
  fs.writeFileSync(path.join(install.appDir, 'index.html'),
    `<!doctype html>\n${html.replaceAll('ws://127.0.0.1:8080/ws', cluster.instance('i1').url)}\n`);
  const page = await context.newPage();
  watch(page, 'package-page');
  await page.goto(`http://127.0.0.1:${server.address().port}/index.html`);
  await page.waitForFunction(() => /: 1 other peers$/.test(document.title), null, { timeout: 15_000 });
  const joined = await other.next('peer-joined');
  assert.equal(joined.meta.name, 'ana');
  await page.close();
  other.close();
});

for (const doc of ['README.md', path.join('docs', 'client.md')]) {
  test(`${doc}: the browser example runs as written in a page and signals the peer already in the room`, { timeout: 60_000 }, async () => {
    const [code] = snippets(path.join(REPO_ROOT, doc), 'browser-module');
    assert.ok(code?.includes("from 'http://127.0.0.1:8080/sigstream.js'"), `${doc} has a browser example`);
    const instance = cluster.instance('i1');
    const other = await connect(instance.url);
    await other.request({ type: 'join', room: 'demo', meta: { name: 'waiting' } });
    const page = await context.newPage();
    watch(page, 'snippet-page');
    await page.goto(`${instance.httpUrl}/`);
    await page.addScriptTag({
      type: 'module',
      content: code.replaceAll('http://127.0.0.1:8080/sigstream.js', `${instance.httpUrl}/sigstream.js`)
        .replaceAll('ws://127.0.0.1:8080/ws', instance.url),
    });
    const signal = await other.next('signal');
    assert.deepEqual(signal.data, { hello: 'offer goes here' });
    await page.close();
    other.close();
  });
}

// docs/client.md's two whole-page examples (a call written against the
// client alone, and one with PeerMesh), each opened twice from the
// instance: the two pages see each other's video. Both join room 'demo',
// one example after the other. Remote candidates other than loopback are
// dropped (an init script), so the media stays on this machine.
pageExamples.forEach((html, n) => {
  test(`docs/client.md: whole-page example ${n + 1} calls another page as written`, { timeout: 90_000 }, async () => {
    const instance = cluster.instance('i1');
    const pages = [];
    try {
      for (let k = 0; k < 2; k++) {
        const page = await context.newPage();
        pages.push(page);
        watch(page, `example-${n + 1}-${k}`);
        await page.addInitScript(() => {
          const add = RTCPeerConnection.prototype.addIceCandidate;
          RTCPeerConnection.prototype.addIceCandidate = function (candidate, ...rest) {
            const text = candidate?.candidate ?? '';
            const address = text.split(' ')[4] ?? '';
            if (text && !(address.startsWith('127.') || address === '::1')) return Promise.resolve();
            return add.call(this, candidate, ...rest);
          };
        });
        await page.goto(`${instance.httpUrl}/page-example-${n + 1}.html`);
      }
      for (const page of pages) {
        await page.waitForFunction(() => [...document.querySelectorAll('video')].some((v) => v.id.startsWith('v-') && v.videoWidth > 0),
          null, { timeout: 30_000 });
      }
    } finally {
      for (const page of pages) await page.close();
    }
  });
});
