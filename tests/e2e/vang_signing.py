"""VangTech request signing written from ``docs/plugins/vang.md`` alone, for tests that talk
to the simulated speaker without the hub's adapter: if the adapter, this and the simulator
agree, all three follow the document."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote


def vang_headers(secret: str, method: str, path: str, *, query: dict[str, str] | None = None,
                 body: bytes = b"", target: str = "", key_id: str = "hub",
                 timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The ``X-Vang-*`` headers of one request."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(12)
    pairs = sorted((query or {}).items())
    lines = ["VANG1-HMAC-SHA256", method, quote(path, safe="/-_.~"),
             "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs),
             target, stamp, nonce, hashlib.sha256(body).hexdigest()]
    signature = hmac.new(secret.encode(), "\n".join(lines).encode(), hashlib.sha256)
    headers = {"X-Vang-Key": key_id, "X-Vang-Timestamp": stamp, "X-Vang-Nonce": nonce,
               "X-Vang-Signature": signature.hexdigest()}
    if target:
        headers["X-Vang-Device"] = target
    return headers
