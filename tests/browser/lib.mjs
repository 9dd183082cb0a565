// Shared helpers of the browser end-to-end tests (tests/browser/*.test.mjs):
// launching Debian's Chromium through playwright-core (fake camera and
// microphone, no sandbox, no background networking), joining the demo page,
// and reading an instance's metrics. Not a test file itself (*.mjs only).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { httpGet } from '../lib/cluster.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB_ROOT = path.join(ROOT, 'web');
export const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const ARGS = [
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

// One browser with a fresh profile; `dispose()` closes it and removes the profile.
export async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 800 },
  });
  const dispose = async () => {
    await context.close().catch(() => {});
    try {
      fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch (err) { console.log(`could not remove ${userDataDir}: ${err.message}`); }
  };
  return { context, dispose };
}

// Page console and errors go to the test output, to explain a failure.
export function watch(page, name) {
  page.on('console', (msg) => { if (msg.type() === 'error') console.log(`[${name} console] ${msg.text()}`); });
  page.on('pageerror', (err) => console.log(`[${name} pageerror] ${err.message}`));
}

// sigstream_joined_peers of one instance (NaN when absent).
export async function joinedPeers(instance) {
  const res = await httpGet(`${instance.httpUrl}/metrics`);
  const line = res.body.split('\n').find((l) => /^sigstream_joined_peers(\{[^}]*\})?\s/.test(l));
  return line ? Number(line.trim().split(/\s+/).pop()) : NaN;
}

// Loads the demo page at `url`, clicks Join, resolves the own peer id.
export async function join(page, url) {
  await page.goto(url);
  await page.click('#join');
  await page.waitForFunction(() => window.sigstreamDemo?.me, null, { timeout: 15_000 });
  return page.evaluate(() => window.sigstreamDemo.me);
}

// Prints a page's signaling log and RTCPeerConnection states (after a failure).
export async function dumpPage(page, name) {
  const log = await page.$$eval('#log li', (lis) => lis.map((li) => li.textContent)).catch(() => []);
  console.log(`--- page ${name} signaling log ---\n${log.join('\n')}`);
  const pcs = await page.evaluate(() => [...(window.sigstreamDemo.mesh?.peers.values() ?? [])].map(({ peer, pc, polite }) => ({
    peer, polite, signaling: pc.signalingState, ice: pc.iceConnectionState, gathering: pc.iceGatheringState,
    connection: pc.connectionState, local: pc.localDescription?.type, remote: pc.remoteDescription?.type,
  }))).catch((e) => String(e));
  console.log(`--- page ${name} peer connections: ${JSON.stringify(pcs)}`);
}

// Saves a full-page screenshot to tests/artifacts/<file>.png (never throws).
export async function screenshot(page, file) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${file}.png`), fullPage: true }).catch(() => {});
}
