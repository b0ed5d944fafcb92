"""Secrets of accounts: password hashes (scrypt, memory-hard) and API token strings.

A token reads ``ttcs_<id>_<secret>``: the id finds the row, the secret (256 random bits) is
checked against its SHA-256, the only thing stored. A fast hash is right for a random secret
(nothing to guess); passwords, which people choose, get scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# scrypt with N=2^14, r=8 (16 MiB per hash): slow to brute-force, ~50 ms to check
_N, _R, _P, _LEN = 2**14, 8, 1, 32
_TOKEN = re.compile(r"^ttcs_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN,
                            maxmem=64 * 1024 * 1024)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; with no hash stored the work is still done,
    so a missing account cannot be told apart by timing."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        params = int(n), int(r), int(p)
        salt_bytes, expected = _unb64(salt), _unb64(digest)
    except ValueError:
        params, salt_bytes, expected = (_N, _R, _P), b"\0" * 16, b""
    got = hashlib.scrypt(password.encode(), salt=salt_bytes, n=params[0], r=params[1],
                         p=params[2], dklen=_LEN, maxmem=64 * 1024 * 1024)
    return bool(expected) and hmac.compare_digest(got, expected)


def new_token() -> tuple[str, str, str]:
    """A fresh token: (token id, full token to hand out once, hash of the secret to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, f"ttcs_{token_id}_{secret}", secret_hash(secret)


def parse_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    match = _TOKEN.match(token.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)
