// The WebSocket layer (RFC 6455, sigstream's own framing in
// src/server/websocket_codec) seen from a raw TCP client, byte by
// byte: the opening handshake and its refusals, a message cut into one-byte
// writes, fragments with a ping between them, many messages in one TCP
// write, the close handshake from the client's side, and protocol
// violations (1002). One instance, no HAProxy; loopback only, every wait
// bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startCluster, sleep } from '../lib/cluster.mjs';

const T = 5000;
let cluster;
let port;
before(async () => {
  cluster = await startCluster({ instances: 1, haproxy: false });
  port = cluster.instance('i1').port;
});
after(async () => {
  await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 });
});

const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };

// A client frame: masked unless told otherwise.
function frame(opcode, payload = '', { fin = true, masked = true } = {}) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  let header;
  if (body.length < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | body.length]);
  } else if (body.length <= 0xffff) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | 126, body.length >> 8, body.length & 0xff]);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = (masked ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(BigInt(body.length), 2);
  }
  if (!masked) return Buffer.concat([header, body]);
  const mask = crypto.randomBytes(4);
  const out = Buffer.from(body);
  for (let i = 0; i < out.length; i++) out[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, out]);
}

const closePayload = (code, reason = '') => Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);

// A raw connection: the upgrade response, then server frames as they come.
class RawClient {
  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.head = null;
    this.frames = [];
    this.waiters = [];
    this.ended = false;
    socket.on('data', (data) => { this.buffer = Buffer.concat([this.buffer, data]); this.#parse(); });
    socket.on('close', () => { this.ended = true; this.#wake(); });
    socket.on('error', () => {});
  }

  #parse() {
    if (this.head === null) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = this.buffer.subarray(0, end).toString();
      this.buffer = this.buffer.subarray(end + 4);
      if (!/^HTTP\/1\.1 101 /.test(this.head)) {
        // A refusal: the rest is its body, not frames.
        this.body = this.buffer;
        this.buffer = Buffer.alloc(0);
        this.#wake();
        return;
      }
    }
    if (this.body !== undefined) {
      this.body = Buffer.concat([this.body, this.buffer]);
      this.buffer = Buffer.alloc(0);
      return;
    }
    for (;;) {
      if (this.buffer.length < 2) break;
      const b0 = this.buffer[0], b1 = this.buffer[1];
      assert.equal(b1 & 0x80, 0, 'server frames are never masked');
      let length = b1 & 0x7f, at = 2;
      if (length === 126) { if (this.buffer.length < 4) break; length = this.buffer.readUInt16BE(2); at = 4; }
      else if (length === 127) { if (this.buffer.length < 10) break; length = Number(this.buffer.readBigUInt64BE(2)); at = 10; }
      if (this.buffer.length < at + length) break;
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: this.buffer.subarray(at, at + length) });
      this.buffer = this.buffer.subarray(at + length);
    }
    this.#wake();
  }

  #wake() { for (const w of this.waiters.splice(0)) w(); }

  async until(check, what, timeoutMs = T) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = check();
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${this.frames.map((f) => `${f.opcode}:${f.payload.toString().slice(0, 60)}`).join(' | ')}`);
      await new Promise((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 50); });
    }
  }

  // The next server frame (in order), or null once the connection has ended.
  async next(timeoutMs = T) {
    await this.until(() => this.frames.length > 0 || this.ended, 'a frame', timeoutMs);
    return this.frames.shift() ?? null;
  }

  // The next text message, parsed; control frames before it are kept in `skipped`.
  async message(timeoutMs = T) {
    for (;;) {
      const f = await this.next(timeoutMs);
      assert.ok(f, 'connection ended while a message was expected');
      if (f.opcode === OP.text) return JSON.parse(f.payload.toString());
      (this.skipped ??= []).push(f);
    }
  }

  write(bytes) { this.socket.write(bytes); }
  async ended_(timeoutMs = T) { await this.until(() => this.ended, 'the server to close the TCP connection', timeoutMs); }
}

function rawConnect(headers = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      const key = headers['Sec-WebSocket-Key'] ?? crypto.randomBytes(16).toString('base64');
      const all = {
        Host: `127.0.0.1:${port}`, Upgrade: 'websocket', Connection: 'Upgrade',
        'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key, ...headers,
      };
      const lines = Object.entries(all).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`);
      socket.write(`GET /ws HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
      const client = new RawClient(socket);
      client.key = key;
      resolve(client);
    });
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

async function upgraded(headers) {
  const client = await rawConnect(headers);
  await client.until(() => client.head, 'the upgrade response');
  assert.match(client.head, /^HTTP\/1\.1 101 /, client.head);
  return client;
}

// A refusal's body is exactly as long as its Content-Length says.
function assertWholeBody(client) {
  const declared = Number(/\r\nContent-Length: (\d+)/i.exec(client.head)?.[1]);
  assert.ok(declared > 0, `a Content-Length in ${JSON.stringify(client.head)}`);
  assert.equal(client.body.length, declared, `body ${JSON.stringify(client.body.toString())}`);
}

const send = (client, obj, options) => client.write(frame(OP.text, JSON.stringify(obj), options));

// Alice and Bob in `room`, each told of the other; Alice's peer id.
async function pair(room) {
  const alice = await upgraded();
  const bob = await upgraded();
  send(alice, { type: 'join', room, id: 1 });
  const aliceJoined = await alice.message();
  assert.equal(aliceJoined.type, 'joined');
  send(bob, { type: 'join', room, id: 1 });
  assert.equal((await bob.message()).type, 'joined');
  assert.equal((await alice.message()).type, 'peer-joined');
  return { alice, bob, alicePeer: aliceJoined.peer };
}

test('the opening handshake: the accept key, no extension taken, and the refusals', async () => {
  const client = await rawConnect({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
  await client.until(() => client.head, 'the upgrade response');
  const expected = crypto.createHash('sha1').update(`${client.key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  assert.match(client.head, /^HTTP\/1\.1 101 /);
  assert.match(client.head, new RegExp(`\r\nSec-WebSocket-Accept: ${expected.replace(/[+/]/g, '\\$&')}\r?(\n|$)`, 'i'));
  assert.match(client.head, /\r\nUpgrade: websocket/i);
  assert.match(client.head, /\r\nX-Sigstream-Instance: i1/);
  assert.doesNotMatch(client.head, /Sec-WebSocket-Extensions/i, 'no compression is agreed');
  client.socket.destroy();

  const oldVersion = await rawConnect({ 'Sec-WebSocket-Version': '8' });
  await oldVersion.until(() => oldVersion.head, 'a response');
  assert.match(oldVersion.head, /^HTTP\/1\.1 426 /);
  assert.match(oldVersion.head, /\r\nSec-WebSocket-Version: 13/);
  await oldVersion.ended_();
  assertWholeBody(oldVersion);

  for (const key of [null, 'too-short', 'dGhlIHNhbXBsZSBub25jZQ']) {
    const bad = await rawConnect({ 'Sec-WebSocket-Key': key });
    await bad.until(() => bad.head, 'a response');
    assert.match(bad.head, /^HTTP\/1\.1 400 /, `key ${key}`);
    await bad.ended_();
    assertWholeBody(bad);
  }
});

test('a message written one byte at a time is read as one message', async () => {
  const client = await upgraded();
  const bytes = frame(OP.text, JSON.stringify({ type: 'join', room: 'bytewise', id: 1 }));
  for (const byte of bytes) {
    client.write(Buffer.from([byte]));
    await sleep(2);
  }
  const joined = await client.message();
  assert.equal(joined.type, 'joined');
  assert.equal(joined.id, 1);
  client.socket.destroy();
});

test('fragments with a ping between them: a pong with the same payload, then the whole message delivered', async () => {
  const { alice, bob, alicePeer } = await pair('fragments');

  const data = `candidate:${'é'.repeat(300)}`;  // two-byte characters, split across fragments below
  const text = Buffer.from(JSON.stringify({ type: 'signal', to: alicePeer, data, id: 2 }));
  const cut1 = 20, cut2 = 201;  // 201 falls inside a two-byte character
  bob.write(Buffer.concat([
    frame(OP.text, text.subarray(0, cut1), { fin: false }),
    frame(OP.ping, 'are you there'),
    frame(OP.continuation, text.subarray(cut1, cut2), { fin: false }),
    frame(OP.continuation, text.subarray(cut2), { fin: true }),
  ]));
  const ack = await bob.message();
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  assert.equal(ack.id, 2);
  const pong = bob.skipped?.find((f) => f.opcode === OP.pong);
  assert.ok(pong, 'a pong came back');
  assert.equal(pong.payload.toString(), 'are you there');
  const delivered = await alice.message();
  assert.equal(delivered.type, 'signal');
  assert.equal(delivered.data, data);
  alice.socket.destroy();
  bob.socket.destroy();
});

test('a hundred signals in one TCP write: a hundred acks in order, a hundred deliveries', async () => {
  const { alice, bob, alicePeer } = await pair('pipelined');
  const N = 100;
  const burst = [];
  for (let i = 0; i < N; i++) burst.push(frame(OP.text, JSON.stringify({ type: 'signal', to: alicePeer, data: { n: i }, id: 100 + i })));
  bob.write(Buffer.concat(burst));
  const acks = [];
  while (acks.length < N) acks.push(await bob.message());
  assert.deepEqual(acks.map((a) => [a.type, a.id]), Array.from({ length: N }, (_, i) => ['ack', 100 + i]));
  const got = [];
  while (got.length < N) got.push(await alice.message());
  assert.deepEqual(got.map((m) => m.data.n), Array.from({ length: N }, (_, i) => i));
  alice.socket.destroy();
  bob.socket.destroy();
});

test('the client closes: its close code comes back, then the server closes the TCP connection', async () => {
  const client = await upgraded();
  send(client, { type: 'join', room: 'closing', id: 1 });
  assert.equal((await client.message()).type, 'joined');
  client.write(frame(OP.close, closePayload(1000, 'bye')));
  const reply = await client.next();
  assert.equal(reply?.opcode, OP.close);
  assert.equal(reply.payload.readUInt16BE(0), 1000);
  await client.ended_();

  // A close frame without a code is answered with one without a code.
  const bare = await upgraded();
  bare.write(frame(OP.close));
  const bareReply = await bare.next();
  assert.equal(bareReply?.opcode, OP.close);
  assert.equal(bareReply.payload.length, 0);
  await bare.ended_();
});

test('protocol violations: an unmasked frame, a reserved bit, a fragmented ping: close 1002, then the server ends the TCP connection', async () => {
  const cases = [
    ['unmasked frame', frame(OP.text, '{"type":"leave"}', { masked: false })],
    ['reserved bit', (() => { const f = frame(OP.text, '{}'); f[0] |= 0x40; return f; })()],
    ['fragmented ping', frame(OP.ping, 'x', { fin: false })],
    ['continuation with nothing to continue', frame(OP.continuation, 'x')],
  ];
  for (const [what, bytes] of cases) {
    const client = await upgraded();
    client.write(bytes);
    const reply = await client.next();
    assert.equal(reply?.opcode, OP.close, what);
    assert.equal(reply.payload.readUInt16BE(0), 1002, what);
    // A broken client's close frame is not waited for.
    await client.ended_();
  }
});

test('a binary message is refused with bad-request and the connection stays', async () => {
  const client = await upgraded();
  client.write(frame(OP.binary, Buffer.from([1, 2, 3])));
  const error = await client.message();
  assert.equal(error.type, 'error');
  assert.equal(error.code, 'bad-request');
  send(client, { type: 'join', room: 'after-binary', id: 7 });
  assert.equal((await client.message()).type, 'joined');
  client.socket.destroy();
});
