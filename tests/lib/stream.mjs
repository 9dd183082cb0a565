// What the stream holds, read with `sigstream history --format jsonl`, and
// what each peer should therefore have received.
import { execFile } from 'node:child_process';
import net from 'node:net';

// The caller's SIGSTREAM_* settings (a stream name, say) must not change
// which stream the tool reads.
function envWithoutSigstream() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIGSTREAM_')) env[k] = v;
  return env;
}

/**
 * `sigstream history ROOM --format jsonl --no-redact [extraArgs]` against the
 * cluster's NATS, parsed: the events as stored (addresses included). A room
 * with no history (the tool exits 2 saying so) is [].
 */
export function roomHistory(cluster, room, extraArgs = []) {
  return new Promise((resolve, reject) => {
    execFile(cluster.bin, ['history', room, '--nats-url', cluster.natsUrl, '--format', 'jsonl', '--no-redact', ...extraArgs],
      { timeout: 30_000, env: envWithoutSigstream(), maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err && err.code === 2 && /has no history in stream/.test(stderr)) resolve([]);
        else if (err) reject(new Error(`sigstream history ${room} ${extraArgs.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line)));
      });
  });
}

// The seqs of the events a peer must have received after its `joined`, in
// order: others' joins and leaves, and signals addressed to it or broadcast
// by others, up to its own leave.
export function expectedSeqs(events, joined) {
  const myLeave = events.find((e) => e.kind === 'leave' && e.peer === joined.peer);
  return events
    .filter((e) => e.seq > joined.seq && (!myLeave || e.seq < myLeave.seq))
    .filter((e) => {
      if (e.kind === 'join' || e.kind === 'leave') return e.peer !== joined.peer;
      return e.from !== joined.peer && (e.to === undefined || e.to === joined.peer);
    })
    .map((e) => e.seq);
}

export function receivedSeqs(client) {
  return client.messages.filter((m) => ['peer-joined', 'peer-left', 'signal'].includes(m.type)).map((m) => m.seq);
}

// A peer that sent `leave` stops receiving when its request is handled, which
// may be before events ordered ahead of its leave event come back: for it,
// what it received must be its share's beginning, in order, nothing else.
export function assertReceivedShare(assert, client, events, joined, { leftByRequest = false, label = '' } = {}) {
  const want = expectedSeqs(events, joined);
  const got = receivedSeqs(client);
  if (leftByRequest) assert.deepEqual(got, want.slice(0, got.length), `${label}: received a prefix of its share, in order`);
  else assert.deepEqual(got, want, `${label}: received exactly its share, in order`);
}

/**
 * One request over NATS's text protocol (no client library needed): used to
 * create streams the way an operator would, through the JetStream API.
 */
export function natsRequest(port, subject, body, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(port, '127.0.0.1');
    const inbox = `_INBOX.sigstream-test.${process.pid}.${Date.now()}`;
    let buf = Buffer.alloc(0);
    let sent = false;
    const finish = (err, value) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err); else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`NATS request ${subject}: no reply within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => finish(err));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString();
        if (line.startsWith('MSG ')) {
          const len = Number(line.split(' ').at(-1));
          if (buf.length < nl + 2 + len + 2) return;
          const payload = buf.subarray(nl + 2, nl + 2 + len).toString();
          finish(null, JSON.parse(payload));
          return;
        }
        buf = buf.subarray(nl + 2);
        if (line.startsWith('INFO') && !sent) {
          sent = true;
          const payload = Buffer.from(JSON.stringify(body));
          sock.write(`CONNECT {"verbose":false,"pedantic":false,"name":"sigstream-test-operator"}\r\n`
            + `SUB ${inbox} 1\r\nPUB ${subject} ${inbox} ${payload.length}\r\n`);
          sock.write(Buffer.concat([payload, Buffer.from('\r\n')]));
        } else if (line.startsWith('PING')) {
          sock.write('PONG\r\n');
        } else if (line.startsWith('-ERR')) {
          finish(new Error(`NATS: ${line}`));
          return;
        }
      }
    });
  });
}
