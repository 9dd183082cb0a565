"""Mints a sigstream join token in a Python backend, standard library only
(docs/security.md, "Join tokens"). Run as a script to try it:
    SIGSTREAM_KEY=kid1:secret python3 mint_token.py ROOM '{"name":"ana"}'
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def join_token(kid: str, secret: str, room: str, meta: dict, ttl_seconds: int = 3600) -> str:
    """A compact JWT (HS256) for `room`, carrying the peer's `meta`, valid `ttl_seconds`."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
    claims = _b64(json.dumps({"room": room, "meta": meta, "exp": int(time.time()) + ttl_seconds},
                             separators=(",", ":"), ensure_ascii=False).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode("ascii"), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


if __name__ == "__main__":
    kid, _, secret = os.environ.get("SIGSTREAM_KEY", "").partition(":")
    if not kid or not secret or len(sys.argv) < 2:
        print("usage: SIGSTREAM_KEY=KID:SECRET python3 mint_token.py ROOM [META_JSON]", file=sys.stderr)
        sys.exit(2)
    print(join_token(kid, secret, sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")))
