// End-to-end, in Chromium: the admin timeline page (/admin/ on an instance,
// through HAProxy) and the offline report of `sigstream history --format
// html`, both drawing a scripted room's history as a sequence diagram.
// Screenshots go to tests/artifacts/; SIGSTREAM_DOC_SCREENSHOT=1 refreshes
// docs/debugging-admin.png and docs/debugging-history.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startCluster, connect, waitFor } from '../lib/cluster.mjs';
import { ROOT, WEB_ROOT, launch, watch, screenshot } from './lib.mjs';

const TOKEN = `admin-${process.pid}-${Date.now()}`;
const ROOM = 'design review / ü';
const SDP = (type) => ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 127.0.0.1', 'a=rtpmap:111 opus/48000/2',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=rtpmap:96 VP8/90000',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', ''].join('\r\n') + `a=x-${type}\r\n`;
const candidate = (n, typ, proto = 'udp') => ({ candidate: { candidate: `candidate:${n} 1 ${proto} 2122 127.0.0.${n} 5000${n} typ ${typ}`, sdpMid: '0' } });

let cluster, context, dispose;
const peers = {};
let events = 0;
const laterArrows = [];  // arrows of signals sent by the tests themselves

const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGSTREAM_')));
function sigstream(args) {
  return new Promise((resolve, reject) => execFile(cluster.bin, args, { env: cleanEnv(), maxBuffer: 64 << 20 },
    (err, stdout, stderr) => (err ? reject(new Error(`${args.join(' ')}: ${stderr}`)) : resolve(stdout))));
}

async function join(name, instance) {
  const c = await connect(instance.url);
  const joined = await c.request({ type: 'join', room: ROOM, meta: { name } });
  c.peer = joined.peer;
  peers[name] = c;
  events += 1;
}
async function signal(from, to, data) {
  assert.equal((await peers[from].request({ type: 'signal', ...(to ? { to: peers[to].peer } : {}), data })).type, 'ack');
  events += 1;
}

before(async () => {
  ({ context, dispose } = await launch());
  cluster = await startCluster({ instances: 2, env: { SIGSTREAM_WEB_ROOT: WEB_ROOT, SIGSTREAM_ADMIN_TOKEN: TOKEN } });
  const [i1, i2] = cluster.instances;
  await join('ana', i1);
  await join('bo', i2);
  await signal('bo', 'ana', { description: { type: 'offer', sdp: SDP('offer') } });
  await signal('bo', 'ana', candidate(1, 'host'));
  await signal('ana', 'bo', { description: { type: 'answer', sdp: SDP('answer') } });
  await signal('ana', 'bo', candidate(2, 'srflx'));
  await signal('ana', 'bo', candidate(3, 'relay', 'tcp'));
  await signal('ana', null, { chat: 'hello, everyone' });
  await join('cy', i1);
  assert.equal((await peers.bo.request({ type: 'leave' })).type, 'ack');
  events += 1;
});

after(async () => {
  for (const c of Object.values(peers)) c.ws.terminate();
  await dispose?.();
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

// The diagram's structure, as the page drew it.
const drawn = (page) => page.evaluate(() => ({
  rows: document.querySelectorAll('.tl-row[data-seq]').length,
  lanes: [...document.querySelectorAll('.tl-lane-head[data-peer]')].map((e) => e.dataset.peer),
  arrows: [...document.querySelectorAll('.tl-arrow')].map((e) => `${e.dataset.from}>${e.dataset.to}`),
}));

function checkDiagram(d) {
  assert.equal(d.rows, events);
  assert.deepEqual(d.lanes, [peers.ana.peer, peers.bo.peer, peers.cy.peer]);
  const { ana, bo } = { ana: peers.ana.peer, bo: peers.bo.peer };
  // 5 targeted signals, and the broadcast to bo, ana's only other member then.
  assert.deepEqual(d.arrows.sort(),
    [`${bo}>${ana}`, `${bo}>${ana}`, `${ana}>${bo}`, `${ana}>${bo}`, `${ana}>${bo}`, `${ana}>${bo}`, ...laterArrows].sort());
}

test('the admin page: token, rooms, members, the timeline, event details and live updates', { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  watch(page, 'admin');
  try {
    await page.goto(`${cluster.instance('i1').httpUrl}/admin/`);  // HAProxy keeps /admin off the public side
    // A wrong token is refused and said so.
    await page.fill('#token', 'not-the-token');
    await page.click('#token-use');
    await page.waitForFunction(() => document.querySelector('#status').textContent.includes('wrong token'), null, { timeout: 10_000 });
    await page.fill('#token', TOKEN);
    await page.click('#token-use');
    const item = page.locator(`.room-item[data-room="${ROOM}"]`);
    await item.waitFor({ timeout: 10_000 });
    // The cluster view: both instances with their heartbeats, and the stream.
    await page.waitForFunction(() => document.querySelectorAll('#instances tr[data-instance]').length === 2, null, { timeout: 10_000 });
    assert.deepEqual(await page.$$eval('#instances tr[data-instance]', (trs) => trs.map((tr) => tr.dataset.instance).sort()),
      cluster.instances.map((i) => i.id).sort());
    assert.match(await page.textContent('#stream-where'), /stream SIGSTREAM: one NATS server/);
    await item.click();
    await page.waitForFunction((n) => document.querySelectorAll('.tl-row[data-seq]').length === n, events, { timeout: 10_000 });
    checkDiagram(await drawn(page));
    await page.waitForFunction(() => document.querySelectorAll('#members tr[data-peer]').length === 2, null, { timeout: 10_000 });
    const members = await page.$$eval('#members tr[data-peer]', (trs) => trs.map((tr) => tr.dataset.peer));
    assert.deepEqual(members, [peers.ana.peer, peers.cy.peer]);

    // Clicking the offer shows its payload.
    await page.click('.tl-row[data-category="offer"]');
    const details = await page.textContent('#details');
    assert.match(details, /"type": "offer"/);
    assert.match(details, /x\.x\.x\.x/, 'addresses are redacted by the admin API');
    // Names with the ids, in the details and on the arrow.
    assert.match(details, /^seq \d+ · bo → ana · offer/, 'names in the heading of the details');
    assert.match(details, /from\s*bo \(p\S+\)\s*to\s*ana \(p/, 'names with their ids in the fields');
    assert.match(await page.$eval('.tl-row[data-category="offer"] .tl-label', (t) => t.textContent), /bo → ana · offer/, 'names on the arrow');
    // At 1280 px and below, the details float in view (below the timeline a
    // click would seem to do nothing); Close puts them away.
    const box = await page.locator('.details-panel').boundingBox();
    const view = page.viewportSize();
    assert.ok(box && box.width > 200 && box.x + box.width <= view.width && box.y >= 0 && box.y + box.height <= view.height,
      `details in view: ${JSON.stringify(box)} in ${JSON.stringify(view)}`);
    await page.click('#details-close');
    assert.equal(await page.locator('.details-panel').isVisible(), false);

    // Live: a new signal appears without a reload.
    const ack = await peers.cy.request({ type: 'signal', to: peers.ana.peer, data: { note: 'live' } });
    events += 1;
    laterArrows.push(`${peers.cy.peer}>${peers.ana.peer}`);
    await page.waitForSelector(`.tl-row[data-seq="${ack.seq}"]`, { timeout: 10_000 });
    assert.match(await page.textContent('#status'), /live/);
    checkDiagram(await drawn(page));
    if (process.env.SIGSTREAM_DOC_SCREENSHOT) await page.screenshot({ path: path.join(ROOT, 'docs', 'debugging-admin.png') });
    // The one expected failure: the wrong token's 401.
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  } finally {
    await screenshot(page, 'admin-page');
    await page.close();
  }
});

test('the offline html report opens from a file and draws the same diagram', { timeout: 60_000 }, async () => {
  const html = await sigstream(['history', ROOM, '--nats-url', cluster.natsUrl, '--format', 'html']);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-report-')), 'report.html');
  fs.writeFileSync(file, html);
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
  try {
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction((n) => document.querySelectorAll('.tl-row[data-seq]').length === n, events, { timeout: 10_000 });
    checkDiagram(await drawn(page));
    assert.match(await page.title(), /design review/);
    await page.click('.tl-arrow[data-from][data-to]');
    await waitFor(async () => /"seq":|"seq": /.test(await page.textContent('#details')), { what: 'details of the clicked event' });
    if (process.env.SIGSTREAM_DOC_SCREENSHOT) await page.screenshot({ path: path.join(ROOT, 'docs', 'debugging-history.png') });
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [], 'the report loads nothing from the network');
  } finally {
    await screenshot(page, 'history-report');
    await page.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});
