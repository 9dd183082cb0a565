// End-to-end: the demo call page (web/index.html) in real Chromium against a
// cluster of 2 instances behind HAProxy (issue 3, browser tests 2 to 4):
//  - a three-page mesh; one page closes, the others see it leave and drop
//    its tile; a fourth page joins and connects to both;
//  - bad input from a page (an oversized frame, invalid rooms) gets the
//    protocol's answer, is shown in the page, and breaks no call;
//  - the instance serving a page is killed; the page reconnects through
//    HAProxy by itself, resumes as the same peer, and the call carries on
//    (runs last: it kills an instance).
// Every page joins with ?ice=loopback (media stays on 127.0.0.1). Screenshots
// of every page go to tests/artifacts/mesh-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, httpGet, waitFor } from '../lib/cluster.mjs';
import { WEB_ROOT, launch, watch, joinedPeers, join, dumpPage, screenshot } from './lib.mjs';

let cluster, context, dispose;
before(async () => {
  ({ context, dispose } = await launch()); // first: closed before the cluster stops
  cluster = await startCluster({ instances: 2, env: { SIGSTREAM_WEB_ROOT: WEB_ROOT } });
});
after(async () => {
  await dispose?.();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// Joined peers over the given instances (default: all of them).
const totalJoined = async (instances = cluster.instances) => {
  let n = 0;
  for (const instance of instances) n += await joinedPeers(instance);
  return n;
};

// Opens a page (not yet joined), with its console in the test output.
async function open(name) {
  const page = await context.newPage();
  watch(page, name);
  return page;
}

const url = (base, room, name) => `${base}/?room=${encodeURIComponent(room)}&name=${name}&ice=loopback`;

// `page`'s RTCPeerConnection to `peer` is connected, and its tile shows it.
async function connected(page, peer, timeout = 30_000) {
  await page.waitForFunction((o) => window.sigstreamDemo.mesh?.peers.get(o)?.pc.connectionState === 'connected',
    peer, { timeout });
  await page.waitForSelector(`.tile.remote[data-peer="${peer}"][data-state="connected"]`, { timeout: 5000 });
}

// A chat message typed in `from` shows up in every page of `to`.
async function chat(from, to, text) {
  await from.waitForSelector('#chat-input:not([disabled])', { timeout: 10_000 });
  await from.fill('#chat-input', text);
  await from.click('#chat-send');
  for (const page of to) {
    await page.waitForFunction((t) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes(t)),
      text, { timeout: 10_000 });
  }
}

const logLines = (page) => page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));

// Runs `body()`; on failure prints every page's log and peer connections;
// always screenshots every page (mesh-<test>-<page>.png), then closes them
// (so that a failed test leaves no joined peer to the next one).
async function withPages(test, pages, body) {
  try {
    await body();
  } catch (err) {
    for (const [n, page] of Object.entries(pages)) if (!page.isClosed()) await dumpPage(page, n);
    throw err;
  } finally {
    for (const [n, page] of Object.entries(pages)) if (!page.isClosed()) await screenshot(page, `mesh-${test}-${n}`);
    for (const page of Object.values(pages)) await page.close().catch(() => {});
  }
}

// After withPages (which closed the pages): every peer gone from the instances.
async function allGone(instances) {
  await waitFor(async () => (await totalJoined(instances)) === 0, { what: 'no joined peer left' });
}

test('three pages form a mesh; one leaves; a fourth joins and connects to both', { timeout: 180_000 }, async () => {
  const [i1, i2] = cluster.instances;
  const room = `mesh-${Date.now()}`;
  const pages = { a: await open('a'), b: await open('b'), c: await open('c') };
  const { a, b, c } = pages;
  await withPages('leave-join', pages, async () => {
    // Pages opened on the instances directly: a and c on i1, b on i2, so
    // that the mesh spans both instances.
    const peerA = await join(a, url(i1.httpUrl, room, 'ana'));
    const peerB = await join(b, url(i2.httpUrl, room, 'bo'));
    const peerC = await join(c, url(i1.httpUrl, room, 'cy'));
    const ids = { [peerA]: a, [peerB]: b, [peerC]: c };
    assert.equal(Object.keys(ids).length, 3, 'three distinct peer ids');
    await waitFor(async () => (await joinedPeers(i1)) === 2 && (await joinedPeers(i2)) === 1,
      { timeoutMs: 5000, what: 'a and c on i1, b on i2' });

    // Every pair connected, seen from both sides.
    for (const [me, page] of Object.entries(ids)) {
      for (const other of Object.keys(ids)) if (other !== me) await connected(page, other);
    }
    await chat(a, [b, c], 'hello mesh from ana');

    // c closes its tab: a and b get peer-left and drop its tile and row.
    await c.close({ runBeforeUnload: true });  // pagehide: the client closes its WebSocket
    for (const page of [a, b]) {
      await page.waitForFunction((p) => !window.sigstreamDemo.participants.has(p)
        && !window.sigstreamDemo.mesh.peers.has(p), peerC, { timeout: 15_000 });
      assert.equal(await page.$(`.tile.remote[data-peer="${peerC}"]`), null, 'the closed page has no tile');
      assert.equal(await page.$(`#participants tr[data-peer="${peerC}"]`), null, 'the closed page has no row');
      assert.ok((await logLines(page)).some((l) => l.includes('peer-left') && l.includes(peerC)), 'peer-left in the signaling log');
      assert.equal(await page.locator('.tile.remote').count(), 1, 'one remote tile left');
    }

    // A fourth page (on i2) joins and connects to both remaining pages.
    const d = pages.d = await open('d');
    const peerD = await join(d, url(i2.httpUrl, room, 'dee'));
    assert.ok(![peerA, peerB, peerC].includes(peerD));
    for (const other of [peerA, peerB]) await connected(d, other);
    for (const page of [a, b]) await connected(page, peerD);
    assert.equal(await d.locator('.tile.remote').count(), 2, 'd shows two remote tiles');
    await chat(d, [a, b], 'hello from dee');
  });
  await allGone();
});

test('bad input from a page gets the protocol error, is shown, and breaks nothing', { timeout: 120_000 }, async (t) => {
  const [i1, i2] = cluster.instances;
  const room = `bad-${Date.now()}`;
  const pages = { a: await open('a'), b: await open('b') };
  const { a, b } = pages;
  await withPages('bad-input', pages, async () => {
    const peerA = await join(a, url(i1.httpUrl, room, 'ana'));
    const peerB = await join(b, url(i2.httpUrl, room, 'bo'));
    await connected(a, peerB);
    await connected(b, peerA);

    // From a's JavaScript: raw WebSockets to the same /ws as its client.
    const result = await a.evaluate(async () => {
      const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
      const openWs = () => new Promise((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        const closed = new Promise((r) => { ws.onclose = (e) => r({ code: e.code, reason: e.reason }); });
        ws.onopen = () => resolve({ ws, closed });
        ws.onerror = () => reject(new Error('raw WebSocket failed to open'));
      });
      const reply = (ws, id) => new Promise((resolve) => {
        ws.addEventListener('message', (e) => { const m = JSON.parse(e.data); if (m.id === id) resolve(m); });
      });
      // 1. One 96 KiB frame (the limit is 80 KiB): closed with 1009.
      const big = await openWs();
      big.ws.send(JSON.stringify({ type: 'signal', id: 1, data: 'x'.repeat(96 * 1024) }));
      const bigClose = await Promise.race([big.closed, new Promise((r) => setTimeout(() => r('no close in 10 s'), 10_000))]);
      // 2. A join with an empty room: error invalid-room, connection still open,
      //    and a valid join on it afterwards works.
      const bad = await openWs();
      const badReply = reply(bad.ws, 1);
      bad.ws.send(JSON.stringify({ type: 'join', id: 1, room: '' }));
      const error = await badReply;
      const openAfterError = bad.ws.readyState === WebSocket.OPEN;
      const goodReply = reply(bad.ws, 2);
      bad.ws.send(JSON.stringify({ type: 'join', id: 2, room: `${new URLSearchParams(location.search).get('room')}-other` }));
      const good = await goodReply;
      bad.ws.close(1000);
      await bad.closed;
      // 3. The page's own client, through its API: rejected with the code.
      const own = await window.sigstreamDemo.client.signal(null, 'x'.repeat(70 * 1024)).then(() => 'resolved', (e) => e.code);
      return { bigClose, error, openAfterError, goodType: good.type, own, ownConnected: window.sigstreamDemo.client.connected };
    });
    // The instance reads the whole frame and closes with a handshake, so the
    // browser sees 1009 itself (before, the socket was torn down with the
    // frame unread, and a TCP reset turned most closes into 1006).
    assert.equal(result.bigClose?.code, 1009, `oversized frame: ${JSON.stringify(result.bigClose)}`);
    await waitFor(async () => /frame of \d+ bytes over \d+ \(1009\)/.test(await cluster.logTail(i1.id, 200)),
      { timeoutMs: 5000, what: `${i1.id} logs the 1009 close` });
    assert.equal(result.error.type, 'error');
    assert.equal(result.error.code, 'invalid-room');
    assert.ok(result.openAfterError, 'an error does not close the connection');
    assert.equal(result.goodType, 'joined', 'a valid join after the error works');
    assert.equal(result.own, 'too-large', 'the page client gets too-large for 70 KiB of data');
    assert.ok(result.ownConnected, 'the page client stays connected');

    // The protocol's error shown in a page: the join form does not submit an
    // empty room (the input is `required`), so the room is 150 × "é": 150
    // characters (the input allows 200) but 300 bytes, over the protocol's 200.
    const c = pages.c = await open('c');
    await c.goto(url(cluster.httpUrl, 'placeholder', 'cy'));
    await c.fill('#room', 'é'.repeat(150));
    await c.click('#join');
    await c.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
    const shown = await c.textContent('#error');
    assert.match(shown, /invalid-room/, `error shown in the page: ${shown}`);
    assert.ok((await logLines(c)).some((l) => l.includes('invalid-room')), 'error in the signaling log');
    assert.equal(await c.evaluate(() => window.sigstreamDemo.me), null, 'not in a room');
    await screenshot(c, 'mesh-bad-input-c-error');
    // ... and the same page then joins the call with a valid room name.
    await c.fill('#room', room);
    await c.click('#join');
    await c.waitForFunction(() => window.sigstreamDemo?.me, null, { timeout: 15_000 });
    assert.equal(await c.isHidden('#error'), true, 'error cleared after a good join');
    const peerC = await c.evaluate(() => window.sigstreamDemo.me);
    for (const page of [a, b]) await page.waitForSelector(`#participants tr[data-peer="${peerC}"]`, { timeout: 10_000 });

    // a's own call kept working: still connected to b, chat both ways, and
    // neither instance went away.
    assert.equal(await a.evaluate(() => window.sigstreamDemo.me), peerA, 'a kept its peer id (no reconnect)');
    await connected(a, peerB, 5000);
    await chat(a, [b], 'still here after bad input');
    await chat(b, [a], 'so am i');
    for (const instance of [i1, i2]) assert.equal((await httpGet(`${instance.httpUrl}/readyz`)).status, 200);
    const servers = await cluster.lbServers();
    for (const instance of [i1, i2]) assert.equal(servers[instance.id]?.status, 'UP', `HAProxy: ${JSON.stringify(servers)}`);
  });
  await allGone();
});

// Last: it kills an instance of the shared cluster.
test('the instance of a page is killed; the page resumes through HAProxy as the same peer and signals', { timeout: 120_000 }, async () => {
  const room = `kill-${Date.now()}`;
  let survivorId;
  const pages = { a: await open('a'), b: await open('b') };
  const { a, b } = pages;
  await withPages('kill', pages, async () => {
    // a is loaded through HAProxy (its WebSocket too); where did it land?
    const peerA = await join(a, url(cluster.httpUrl, room, 'ana'));
    let served;
    await waitFor(async () => {
      const counts = await Promise.all(cluster.instances.map((i) => joinedPeers(i)));
      served = counts[0] === 1 && counts[1] === 0 ? 0 : counts[0] === 0 && counts[1] === 1 ? 1 : undefined;
      return served !== undefined;
    }, { timeoutMs: 5000, what: 'a counted on one instance' });
    const victim = cluster.instances[served];
    const survivor = cluster.instances[1 - served];
    // b on the other instance directly, so that it survives.
    const peerB = await join(b, url(survivor.httpUrl, room, 'bo'));
    await connected(a, peerB);
    await connected(b, peerA);

    const received = () => b.evaluate(() => window.testSignals);
    await b.evaluate(() => {
      window.testSignals = [];
      window.sigstreamDemo.client.addEventListener('signal', ({ detail }) => {
        if (detail.data?.test) window.testSignals.push({ from: detail.from, data: detail.data });
      });
    });

    await cluster.stopInstance(victim.id, 'SIGKILL');

    // a reconnects by itself (SigstreamClient's backoff), through HAProxy,
    // to the survivor, and resumes: the same peer id, counted there.
    await a.waitForFunction((old) => {
      const { client } = window.sigstreamDemo;
      return client.connected && client.joined?.resumed === true && client.peer === old;
    }, peerA, { timeout: 45_000 });
    assert.equal(await a.evaluate(() => window.sigstreamDemo.me), peerA, 'the page keeps its peer id');
    await waitFor(async () => (await joinedPeers(survivor)) === 2, { timeoutMs: 5000, what: `a and b both on ${survivor.id}` });
    const lines = await logLines(a);
    assert.ok(lines.some((l) => l.includes('reconnecting')), 'reconnecting in the log');
    assert.ok(lines.some((l) => l.includes('reconnected')), 'reconnected in the log');

    // b never saw a leave: a is still a participant, and a signal from it arrives.
    assert.equal(await b.evaluate((p) => window.sigstreamDemo.participants.has(p), peerA), true);
    const seq = await a.evaluate((to) => window.sigstreamDemo.client.signal(to, { test: 'after the kill' }), peerB);
    assert.ok(Number.isInteger(seq), `signal acknowledged with seq ${seq}`);
    await waitFor(async () => (await received()).length > 0, { timeoutMs: 10_000, what: 'b receives the signal' });
    assert.deepEqual(await received(), [{ from: peerA, data: { test: 'after the kill' } }]);

    // The media path never depended on the instance: the call and its chat
    // carry on without renegotiating under a new id.
    await connected(a, peerB);
    await connected(b, peerA);
    await chat(a, [b], 'back after the kill');
    await chat(b, [a], 'welcome back');
    survivorId = survivor.id;
  });
  await allGone([cluster.instance(survivorId)]);
});
