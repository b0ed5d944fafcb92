"""Expiring signed media URLs: ``{media_base}/media/{sha256}?exp=UNIX&sig=HMAC``.

``sig`` is the hex HMAC-SHA256, under the hub's media key, of ``"{sha256}:{exp}"``. Devices need
no credentials to fetch media, yet a URL works only for the file it names and only until
``exp``. The key comes from ``TTCS_MEDIA_KEY`` (or ``TTCS_MEDIA_KEY_FILE``) — every hub worker
serving media must share it — or, on a single machine, from ``<home>/media.key`` (created with
mode 0600 on first use).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from ..errors import ConfigError
from .media import check_sha256


class UrlRefused(Exception):
    """A media URL is expired, tampered with or incomplete (the reason is the message)."""


class MediaUrlSigner:
    def __init__(self, key: bytes, base: str) -> None:
        if len(key) < 16:
            raise ConfigError("the media URL key must have at least 16 bytes")
        self._key = key
        self.base = base.rstrip("/")

    @classmethod
    def for_home(cls, home: Path, base: str, env: dict[str, str] | None = None
                 ) -> MediaUrlSigner:
        env = dict(os.environ) if env is None else env
        if env.get("TTCS_MEDIA_KEY"):
            return cls(env["TTCS_MEDIA_KEY"].encode(), base)
        path = Path(env["TTCS_MEDIA_KEY_FILE"]) if env.get("TTCS_MEDIA_KEY_FILE") else (
            home / "media.key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
        try:
            return cls(path.read_text(encoding="ascii").strip().encode(), base)
        except OSError as exc:
            raise ConfigError(f"cannot read the media URL key {path}: {exc}") from exc

    def _mac(self, sha256: str, exp: int) -> str:
        return hmac.new(self._key, f"{sha256}:{exp}".encode(), hashlib.sha256).hexdigest()

    def sign(self, sha256: str, ttl: float, *, now: float | None = None) -> str:
        """A URL for ``sha256`` valid ``ttl`` seconds from ``now``."""
        exp = int((time.time() if now is None else now) + ttl)
        return f"{self.base}/media/{check_sha256(sha256)}?exp={exp}&sig={self._mac(sha256, exp)}"

    def check(self, sha256: str, exp: str | None, sig: str | None, *,
              now: float | None = None) -> int:
        """Seconds the URL stays valid; raises :class:`UrlRefused` if it must not be served."""
        if not exp or not sig:
            raise UrlRefused("media URLs need 'exp' and 'sig' (ask the hub for a signed URL)")
        try:
            expires = int(exp)
        except ValueError:
            raise UrlRefused("'exp' must be a UNIX time") from None
        if not sig.isascii() or not hmac.compare_digest(self._mac(sha256, expires),
                                                        sig.lower()):
            raise UrlRefused("bad signature")
        remaining = expires - int(time.time() if now is None else now)
        if remaining <= 0:
            raise UrlRefused("the URL has expired")
        return remaining
