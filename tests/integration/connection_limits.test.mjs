// Connection policies: a client that stops answering pings is closed and
// leaves its room; a client that stops reading is closed as a slow consumer,
// and nobody else in its room is slowed down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster, connect, httpGet, sleep } from '../lib/cluster.mjs';
import { instanceMetric } from '../lib/metrics.mjs';

let cluster;
before(async () => {
  cluster = await startCluster({
    instances: 2,
    haproxy: false,
    // A closed connection's peer is kept 1 s for a resume, then leaves (expired).
    env: { SIGSTREAM_RESUME_GRACE: '1s', SIGSTREAM_IDLE_TIMEOUT: '2s', SIGSTREAM_WRITE_QUEUE_FRAMES: '64', SIGSTREAM_WRITE_QUEUE_BYTES: '1MiB' },
  });
});
after(async () => { await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 }); });

async function metric(id, name) {
  return instanceMetric(cluster.instance(id).httpUrl, name);
}

test('a client that answers pings stays; one that does not is closed and, after the resume grace, leaves its room', async () => {
  const watcher = await connect(cluster.instance('i1').url);
  await watcher.request({ type: 'join', room: 'pings' });
  // ws answers pings by itself; this one is told not to.
  const silent = new WebSocket(cluster.instance('i2').url, { autoPong: false });
  const silentMessages = [];
  silent.on('message', (d) => silentMessages.push(JSON.parse(d)));
  const closed = new Promise((resolve) => silent.on('close', (code) => resolve(code)));
  await new Promise((resolve) => silent.on('open', resolve));
  silent.send(JSON.stringify({ type: 'join', room: 'pings' }));
  const joined = await watcher.next('peer-joined');
  const started = Date.now();
  await closed;
  const after = Date.now() - started;
  assert.ok(after >= 1000, `closed after ${after} ms: not before the idle timeout`);
  const left = await watcher.next('peer-left', 10_000);
  assert.deepEqual([left.peer, left.reason], [joined.peer, 'expired']);
  // The watcher answered every ping and is still here, past the timeout.
  await sleep(2500);
  assert.ok(watcher.isOpen, 'a client that answers pings is not closed');
  const ack = await watcher.request({ type: 'signal', data: 'still here' });
  assert.equal(ack.type, 'ack');
  assert.ok(silentMessages.some((m) => m.type === 'joined'));
  watcher.close();
});

test('a client that stops reading is closed as a slow consumer; its room carries on', async () => {
  const sender = await connect(cluster.instance('i1').url);
  const reader = await connect(cluster.instance('i1').url);
  const slow = await connect(cluster.instance('i2').url);
  await sender.request({ type: 'join', room: 'slow' });
  await reader.request({ type: 'join', room: 'slow' });
  const js = await slow.request({ type: 'join', room: 'slow' });
  slow.ws._socket.pause();  // stop reading: the kernel buffers fill, then the server's queue
  const before2 = await metric('i2', 'slow_consumers_total');
  const blob = 'x'.repeat(60_000);
  let acked = 0;
  for (let k = 0; k < 300; k++) {
    const ack = await sender.request({ type: 'signal', data: { k, blob } }, 10_000);
    assert.equal(ack.type, 'ack');
    acked++;
    if (k % 50 === 49 && await metric('i2', 'slow_consumers_total') > before2) break;
  }
  const left = await sender.next({ type: 'peer-left', peer: js.peer }, 10_000);
  assert.equal(left.reason, 'expired', 'it could have resumed (and been sent what it missed) within the grace');
  assert.equal(await metric('i2', 'slow_consumers_total'), before2 + 1);
  // The reading peer got every signal, in order.
  for (let k = 0; k < acked; k++) assert.equal((await reader.next('signal', 10_000)).data.k, k);
  sender.close(); reader.close(); slow.terminate();
});
