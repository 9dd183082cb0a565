// End-to-end: the demo call page (web/index.html) in real Chromium (Debian's
// /usr/bin/chromium driven by playwright-core, fake camera and microphone),
// against a cluster of 2 instances behind HAProxy started by the harness.
// Two pages join the same room (through HAProxy, then each page opened on its
// own instance), land on different instances, their RTCPeerConnections reach
// `connected`, a data-channel message goes each way and the remote <video> of
// each page plays frames. Screenshots of every page go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startCluster, waitFor, sleep } from '../lib/cluster.mjs';
import { roomHistory } from '../lib/stream.mjs';
import { ROOT, WEB_ROOT, launch, watch, joinedPeers, join, dumpPage, screenshot } from './lib.mjs';

const PHONE = { width: 390, height: 844 };

// On a phone-sized window nothing is wider than the window: no sideways
// scrolling, and every tile, the chat input and the log fit across.
async function assertFitsPhone(page) {
  const layout = await page.evaluate(() => {
    const right = (sel) => [...document.querySelectorAll(sel)].map((e) => Math.ceil(e.getBoundingClientRect().right));
    return { width: window.innerWidth, scroll: document.documentElement.scrollWidth,
      rights: [...right('#status'), ...right('.tile'), ...right('#chat-input'), ...right('#chat-send'), ...right('#log'), ...right('#participants')] };
  });
  assert.equal(layout.width, PHONE.width);
  assert.ok(layout.scroll <= layout.width, `no sideways scrolling on a phone: ${JSON.stringify(layout)}`);
  assert.ok(layout.rights.length >= 6 && layout.rights.every((r) => r <= layout.width), `everything fits across: ${JSON.stringify(layout)}`);
}

// currentTime of the remote <video>, and its size.
const remoteVideo = (page) => page.evaluate(() => {
  const v = document.querySelector('.tile.remote video');
  return v && { width: v.videoWidth, height: v.videoHeight, time: v.currentTime, ready: v.readyState };
});

let cluster, context, dispose;
before(async () => {
  ({ context, dispose } = await launch()); // first: closed before the cluster stops
  cluster = await startCluster({ instances: 2, env: { SIGSTREAM_WEB_ROOT: WEB_ROOT } });
});
after(async () => {
  await dispose?.();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// Two pages in one room: their RTCPeerConnections connect, a chat message
// goes each way, each remote <video> plays. `placed(a, b, peerA, peerB)` runs once
// both have joined, to check where they landed. With `phoneB`, page b has a
// phone-sized window and its layout is checked. Returns the two pages.
async function call(name, urlA, urlB, placed, { phoneB = false } = {}) {
  const room = `${name}-${Date.now()}`;
  const a = await context.newPage();
  const b = await context.newPage();
  if (phoneB) await b.setViewportSize(PHONE);
  watch(a, 'a'); watch(b, 'b');
  try {
    const peerA = await join(a, `${urlA}/?room=${room}&name=ana&ice=loopback`);
    // Page a counted before b connects, so that HAProxy (leastconn) sees it.
    await waitFor(async () => (await joinedPeers(cluster.instances[0])) + (await joinedPeers(cluster.instances[1])) === 1,
      { what: 'page a counted in sigstream_joined_peers' });
    const peerB = await join(b, `${urlB}/?room=${room}&name=bo&ice=loopback`);
    assert.notEqual(peerA, peerB);
    for (const [page, other] of [[a, peerB], [b, peerA]]) {
      await page.waitForSelector(`#participants tr[data-peer="${other}"]`, { timeout: 10_000 });
    }
    await placed(a, b, peerA, peerB);

    // RTCPeerConnections connected, both ways, and shown so.
    for (const [page, other] of [[a, peerB], [b, peerA]]) {
      await page.waitForFunction((o) => window.sigstreamDemo.mesh?.peers.get(o)?.pc.connectionState === 'connected',
        other, { timeout: 30_000 });
      await page.waitForSelector(`.tile.remote[data-peer="${other}"][data-state="connected"]`, { timeout: 5000 });
    }

    // A data-channel chat message each way.
    for (const [from, to, text] of [[a, b, 'hello from ana'], [b, a, 'hello from bo']]) {
      await from.waitForSelector('#chat-input:not([disabled])', { timeout: 10_000 });
      await from.fill('#chat-input', text);
      await from.click('#chat-send');
      await to.waitForFunction((t) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes(t)),
        text, { timeout: 10_000 });
    }

    // The remote video plays frames: a size, and currentTime advancing.
    for (const page of [a, b]) {
      await page.waitForFunction(() => {
        const v = document.querySelector('.tile.remote video');
        return v && v.videoWidth > 0 && v.currentTime > 0;
      }, null, { timeout: 20_000 });
      const first = await remoteVideo(page);
      await sleep(1500);
      const second = await remoteVideo(page);
      assert.ok(second.width > 0 && second.height > 0, `remote video has a size: ${JSON.stringify(second)}`);
      assert.ok(second.time > first.time + 0.5, `remote video advances: ${first.time} -> ${second.time}`);
    }

    // Every ICE candidate the pages exchanged (as the stream holds them) is a
    // loopback address: the media never targeted another interface.
    const candidates = (await roomHistory(cluster, room))
      .filter((e) => e.kind === 'signal' && e.data?.candidate?.candidate)
      .map((e) => e.data.candidate.candidate.split(' ')[4]);
    assert.ok(candidates.length > 0, 'candidates were exchanged');
    for (const address of candidates) assert.ok(address.startsWith('127.') || address === '::1', `candidate ${address}`);
    if (phoneB) await assertFitsPhone(b);
    return [a, b];
  } catch (err) {
    for (const [n, page] of [['a', a], ['b', b]]) await dumpPage(page, n);
    throw err;
  } finally {
    await screenshot(a, `${name}-page-a`);
    await screenshot(b, `${name}-page-b${phoneB ? '-phone' : ''}`);
  }
}

async function closeAll(pages) {
  for (const page of pages) await page.close();
  await waitFor(async () => (await joinedPeers(cluster.instances[0])) + (await joinedPeers(cluster.instances[1])) === 0,
    { what: 'no joined peer left' });
}

// The instance column of a page's participant row.
const shownInstance = (page, peer) => page.$eval(`#participants tr[data-peer="${peer}"] td.instance`, (td) => td.textContent);

test('two pages through HAProxy (one phone-sized) land on different instances and call each other', { timeout: 120_000 }, async () => {
  const pages = await call('haproxy', cluster.httpUrl, cluster.httpUrl, async () => {
    // Browsers cannot read the upgrade's X-Sigstream-Instance, so the
    // placement is checked on the instances: one joined peer on each.
    await waitFor(async () => (await joinedPeers(cluster.instances[0])) === 1 && (await joinedPeers(cluster.instances[1])) === 1,
      { timeoutMs: 5000, what: 'one joined peer on each instance (sigstream_joined_peers)' });
  }, { phoneB: true });
  await closeAll(pages);
});

test('two pages opened on different instances show them, and call each other', { timeout: 120_000 }, async () => {
  const [i1, i2] = cluster.instances;
  const pages = await call('direct', i1.httpUrl, i2.httpUrl, async (a, b, peerA, peerB) => {
    // Loaded from an instance directly, a page's HTTP probe names the
    // instance of its WebSocket; each page shows both.
    for (const page of [a, b]) {
      assert.equal(await shownInstance(page, peerA), i1.id);
      assert.equal(await shownInstance(page, peerB), i2.id);
    }
  });
  // SIGSTREAM_DOC_SCREENSHOT=1 refreshes the picture in docs/.
  if (process.env.SIGSTREAM_DOC_SCREENSHOT) await pages[0].screenshot({ path: path.join(ROOT, 'docs', 'demo-call.png') });
  await closeAll(pages);
});
