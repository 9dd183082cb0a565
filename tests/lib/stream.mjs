// What the stream holds, read with `sigstream history --format jsonl`, and
// what each peer should therefore have received.
import { execFile } from 'node:child_process';

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
