// What the stream holds, read with `sigstream history --format jsonl`, and
// what each peer should therefore have received.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function roomHistory(cluster, room) {
  const { stdout } = await run(cluster.bin ?? process.env.SIGSTREAM_BIN ?? 'build/sigstream',
    ['history', room, '--nats-url', cluster.natsUrl, '--format', 'jsonl'], { maxBuffer: 64 << 20 });
  return stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
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
