// The baseline sigstream-bench compares sigstream with: one instance of the
// classic Socket.IO scaling setup that teams run today. Socket.IO 4.8 with
// @socket.io/redis-adapter 8.3 (versions pinned by the repository's
// package-lock.json), several of these behind HAProxy in `mode tcp`, and
// Redis for both the adapter's pub/sub and the room member lists.
//
//   node server.mjs --port PORT --instance-id b1 --redis-url redis://127.0.0.1:6379
//
// sigstream-bench starts it (tools/bench/baseline_cluster.cpp); it is not a
// product and not meant to be deployed. Events, all with an acknowledgement:
//
//   join {room, meta}  -> ack {peer, peers: [{peer}]} or {error}
//                         (others in the room get peer-joined {peer, meta})
//   signal {to, data}  -> ack {ok: true} or {error}
//                         (`to` gets signal {from, data} through the adapter)
//   leave              -> ack {ok: true} or {error}
//                         (others get peer-left {peer, reason: 'leave'})
//   on disconnect, others get peer-left {peer, reason: 'disconnect'}
//
// The member list is a Redis set per room: SADD on join, SMEMBERS for the
// answer, SREM on leave and disconnect. That is how such deployments keep
// presence, and it races, which is why sigstream exists: two peers joining
// at once on two instances can each miss the other (each one's SMEMBERS may
// run before the other's SADD, and a peer-joined broadcast reaches only
// sockets already in the room), and an instance that dies leaves its members
// in the set for ever. The bench measures speed; it does not hide this.
//
// A signal's `to` is a socket id, delivered with io.to(id).emit(): Socket.IO
// puts every socket in a room named by its own id, and the adapter publishes
// to the other instances through Redis. No check that `to` is in the
// sender's room (sigstream checks it): the classic handler does not either.
//
// GET /healthz answers 200, "ok <instance id>", once the Redis clients are
// connected (HAProxy's check, and the bench's readiness wait, which also
// learns through HAProxy that every instance is reachable). The response to every Engine.IO
// request, the WebSocket upgrade included, names this instance in
// X-Baseline-Instance, so the bench can place peers by instance as it does
// with sigstream's X-Sigstream-Instance.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'instance-id': { type: 'string' },
    'redis-url': { type: 'string' },
  },
});
if (!args.port || !args['instance-id'] || !args['redis-url']) {
  console.error('usage: node server.mjs --port PORT --instance-id ID --redis-url redis://127.0.0.1:PORT [--host 127.0.0.1]');
  process.exit(2);
}
const instanceId = args['instance-id'];
const MAX_ROOM_BYTES = 200;  // as sigstream's invalid-room limit
const membersKey = (room) => `baseline:room:${room}:members`;

// One client publishes, one subscribes (a subscribed connection can do
// nothing else), one keeps the member sets.
const pubClient = createClient({ url: args['redis-url'] });
const subClient = pubClient.duplicate();
const store = pubClient.duplicate();
for (const [name, client] of [['pub', pubClient], ['sub', subClient], ['store', store]]) {
  client.on('error', (err) => console.error(`${instanceId}: redis ${name}: ${err.message}`));
}
await Promise.all([pubClient.connect(), subClient.connect(), store.connect()]);

let ready = false;
const httpServer = http.createServer((req, res) => {
  // Socket.IO answers its own path; everything else lands here.
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain', 'X-Baseline-Instance': instanceId });
    res.end(ready ? `ok ${instanceId}\n` : 'starting\n');
    return;
  }
  res.writeHead(404).end();
});

// WebSocket only: behind HAProxy in `mode tcp` without stickiness, the
// long-polling transport's requests could land on different instances.
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });
io.adapter(createAdapter(pubClient, subClient));
io.engine.on('headers', (headers) => { headers['X-Baseline-Instance'] = instanceId; });

const answer = (ack, value) => { if (typeof ack === 'function') ack(value); };

async function leaveRoom(socket, reason) {
  const room = socket.data.room;
  if (room === undefined) return false;
  socket.data.room = undefined;
  socket.leave(room);
  await store.sRem(membersKey(room), socket.id);
  socket.to(room).emit('peer-left', { peer: socket.id, reason });
  return true;
}

io.on('connection', (socket) => {
  socket.on('join', async (request, ack) => {
    const room = request?.room;
    if (typeof room !== 'string' || room.length === 0 || Buffer.byteLength(room) > MAX_ROOM_BYTES) {
      return answer(ack, { error: 'invalid-room' });
    }
    if (socket.data.room !== undefined || socket.data.joining) return answer(ack, { error: 'already-in-room' });
    socket.data.joining = true;
    try {
      socket.join(room);
      await store.sAdd(membersKey(room), socket.id);
      const members = await store.sMembers(membersKey(room));
      socket.data.room = room;
      socket.to(room).emit('peer-joined', { peer: socket.id, meta: request.meta ?? {} });
      answer(ack, { peer: socket.id, peers: members.filter((m) => m !== socket.id).map((peer) => ({ peer })) });
    } catch (err) {
      socket.leave(room);
      answer(ack, { error: 'unavailable' });
      console.error(`${instanceId}: join: ${err.message}`);
    } finally {
      socket.data.joining = false;
    }
  });

  socket.on('signal', (request, ack) => {
    if (socket.data.room === undefined) return answer(ack, { error: 'not-in-room' });
    if (typeof request?.to !== 'string' || request.to === '' || request.data === undefined) {
      return answer(ack, { error: 'bad-request' });
    }
    io.to(request.to).emit('signal', { from: socket.id, data: request.data });
    answer(ack, { ok: true });
  });

  socket.on('leave', async (_request, ack) => {
    try {
      answer(ack, (await leaveRoom(socket, 'leave')) ? { ok: true } : { error: 'not-in-room' });
    } catch (err) {
      answer(ack, { error: 'unavailable' });
      console.error(`${instanceId}: leave: ${err.message}`);
    }
  });

  socket.on('disconnect', () => {
    leaveRoom(socket, 'disconnect').catch((err) => console.error(`${instanceId}: disconnect: ${err.message}`));
  });
});

httpServer.listen(Number(args.port), args.host, () => {
  ready = true;
  console.error(`${instanceId}: listening on ${args.host}:${args.port}`);
});

// SIGTERM (the bench stops its children by pid): close the sockets and the
// Redis clients, and give up after 5 s.
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 5000).unref();
  io.close(() => {
    Promise.allSettled([pubClient.quit(), subClient.quit(), store.quit()]).then(() => process.exit(0));
  });
});
