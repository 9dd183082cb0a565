// Mints a sigstream join token in a Node.js backend, with no dependency
// (docs/security.md, "Join tokens"). Run as a script to try it:
//   SIGSTREAM_KEY=kid1:secret node mint_token.mjs ROOM '{"name":"ana"}'
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const b64 = (text) => Buffer.from(text).toString('base64url');

/** A compact JWT (HS256) for `room`, carrying the peer's `meta`, valid `ttlSeconds`. */
export function joinToken({ kid, secret }, room, meta = {}, ttlSeconds = 3600) {
  const header = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid }));
  const claims = b64(JSON.stringify({ room, meta, exp: Math.floor(Date.now() / 1000) + ttlSeconds }));
  const signature = crypto.createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [kid, ...rest] = (process.env.SIGSTREAM_KEY ?? '').split(':');
  const [room, meta = '{}'] = process.argv.slice(2);
  if (!kid || rest.length === 0 || !room) {
    console.error('usage: SIGSTREAM_KEY=KID:SECRET node mint_token.mjs ROOM [META_JSON]');
    process.exit(2);
  }
  console.log(joinToken({ kid, secret: rest.join(':') }, room, JSON.parse(meta)));
}
