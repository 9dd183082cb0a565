// The demo call's controls, in Chromium (fake camera and microphone): the
// preview and device lists before joining, the invite link (a phone-sized
// page opened from it joins the same room), names on the status chip and
// the tiles, the mic and camera toggles (the other pages see them, and a
// page that joins later too), the stage (one remote large, yourself small)
// and labels that keep to a line on a phone. Screenshots to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/cluster.mjs';
import { WEB_ROOT, launch, watch, dumpPage, screenshot } from './lib.mjs';

const PHONE = { width: 390, height: 844 };

let cluster, context, dispose;
before(async () => {
  ({ context, dispose } = await launch());
  cluster = await startCluster({ instances: 2, env: { SIGSTREAM_WEB_ROOT: WEB_ROOT } });
});
after(async () => {
  await dispose?.();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

const tileOf = (page, peer) => `.tile[data-peer="${peer}"]`;
async function joinPage(page) {
  await page.click('#join');
  await page.waitForFunction(() => window.sigstreamDemo.me, null, { timeout: 15_000 });
  return page.evaluate(() => window.sigstreamDemo.me);
}
const connectedTo = (page, other) => page.waitForFunction(
  (o) => window.sigstreamDemo.mesh?.peers.get(o)?.pc.connectionState === 'connected', other, { timeout: 30_000 });

test('preview, invite link, names, mic and camera toggles seen by the others, the stage and the phone layout', { timeout: 150_000 }, async () => {
  const [i1, i2] = cluster.instances;
  const room = `controls-${Date.now()}`;
  const a = await context.newPage();
  const b = await context.newPage();
  const c = await context.newPage();
  await b.setViewportSize(PHONE);
  watch(a, 'a'); watch(b, 'b'); watch(c, 'c');
  try {
    // Before joining: the camera shows in the preview, the devices are listed.
    await a.goto(`${i1.httpUrl}/?room=${room}&name=ana&ice=loopback`);
    await a.waitForFunction(() => document.querySelector('#preview').videoWidth > 0, null, { timeout: 15_000 });
    assert.ok(await a.$eval('#camera-select', (s) => s.options.length) >= 1, 'cameras listed');
    assert.ok(await a.$eval('#mic-select', (s) => s.options.length) >= 1, 'microphones listed');
    const link = await a.$eval('#invite-link', (i) => i.value);
    assert.equal(link, `${i1.httpUrl}/?room=${room}`);
    const peerA = await joinPage(a);
    assert.equal(await a.$eval('#preview', (v) => v.hidden), true, 'the preview gives way to the call');
    await a.click('#invite');  // the clipboard may be refused headless: the box keeps the link either way
    assert.equal(await a.$eval('#invite-link', (i) => i.value), link);
    assert.match(await a.$eval('#status', (s) => s.textContent), /as ana$/, 'the status chip names me');

    // A phone opens the invite link (on the other instance) and joins the same room.
    await b.goto(link.replace(i1.httpUrl, i2.httpUrl) + '&name=bo&ice=loopback');
    assert.equal(await b.$eval('#room', (i) => i.value), room);
    const peerB = await joinPage(b);
    await connectedTo(a, peerB);
    await connectedTo(b, peerA);
    assert.match(await a.$eval(`${tileOf(a, peerB)} .label .name`, (s) => s.textContent), /^bo$/, 'tiles show names');
    assert.match(await b.$eval(`${tileOf(b, peerA)} .label .name`, (s) => s.textContent), /^ana$/);

    // The stage with two: the remote fills it, yourself small in a corner.
    const sizes = await a.evaluate(([me, other]) => ({
      mine: document.querySelector(`.tile[data-peer="${me}"]`).getBoundingClientRect().width,
      theirs: document.querySelector(`.tile[data-peer="${other}"]`).getBoundingClientRect().width,
    }), [peerA, peerB]);
    assert.ok(sizes.mine < sizes.theirs * 0.5, `remote large, local small: ${JSON.stringify(sizes)}`);

    // The mic toggle: the track is disabled, and the other page shows it.
    await a.click('#mic');
    assert.equal(await a.$eval('#mic', (b) => b.getAttribute('aria-pressed')), 'false');
    assert.equal(await a.evaluate(() => window.sigstreamDemo.stream.getAudioTracks().every((t) => !t.enabled)), true);
    await b.waitForSelector(`${tileOf(b, peerA)}[data-audio="off"]`, { timeout: 10_000 });
    assert.ok((await b.$$eval(`${tileOf(b, peerA)} .label .muted`, (s) => s.map((x) => x.textContent))).includes('mic off'));
    await a.click('#camera');
    assert.equal(await a.evaluate(() => window.sigstreamDemo.stream.getVideoTracks().every((t) => !t.enabled)), true);
    await b.waitForSelector(`${tileOf(b, peerA)}[data-video="off"]`, { timeout: 10_000 });
    await a.click('#mic');
    await b.waitForSelector(`${tileOf(b, peerA)}[data-audio="on"][data-video="off"]`, { timeout: 10_000 });

    // Someone joining later learns that ana's camera is off.
    await c.goto(`${i1.httpUrl}/?room=${room}&name=cy&ice=loopback`);
    const peerC = await joinPage(c);
    await c.waitForSelector(`${tileOf(c, peerA)}[data-video="off"][data-audio="on"]`, { timeout: 10_000 });
    await connectedTo(c, peerB);
    // Three: a grid, every tile the same size.
    await a.waitForSelector(`${tileOf(a, peerC)}`, { timeout: 10_000 });
    const widths = await a.$$eval('.tile', (ts) => ts.map((t) => Math.round(t.getBoundingClientRect().width)));
    assert.equal(widths.length, 3);
    assert.ok(Math.max(...widths) - Math.min(...widths) <= 2, `a grid of equal tiles: ${widths}`);

    // On the phone, labels keep to one line: a fifth of a tile at most, nothing wider than the screen.
    const labels = await b.$$eval('.tile', (ts) => ts.map((t) => ({
      tile: t.getBoundingClientRect().height, label: t.querySelector('.label').getBoundingClientRect().height,
      right: t.getBoundingClientRect().right })));
    assert.equal(labels.length, 3);
    for (const l of labels) {
      assert.ok(l.label <= l.tile * 0.2, `label ${l.label}px of a ${l.tile}px tile`);
      assert.ok(l.right <= PHONE.width, `tile within the screen: ${l.right}`);
    }
    assert.ok(await b.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling');
  } catch (err) {
    for (const [n, page] of [['a', a], ['b', b], ['c', c]]) await dumpPage(page, n);
    throw err;
  } finally {
    await screenshot(a, 'demo-controls-desktop');
    await screenshot(b, 'demo-controls-phone');
    await screenshot(c, 'demo-controls-third');
    for (const page of [a, b, c]) await page.close();
  }
});
