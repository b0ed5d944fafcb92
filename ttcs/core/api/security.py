"""Transport security of the hub's HTTP server: TLS from settings, and headers on every answer.

The certificate and key come from ``tls_cert``/``tls_key`` (paths) or, through
``TTCS_TLS_CERT_FILE``/``TTCS_TLS_KEY_FILE``, as the PEM text itself; the latter is written to
a private temporary file for the moment :mod:`ssl` needs a path, then removed.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from ..config import Settings
from ..errors import ConfigError

#: the API page loads only its own script and style; nothing may frame any page
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: no server banner, no sniffing, no framing, HSTS on TLS."""
    headers = response.headers
    headers.popall("Server", None)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Content-Security-Policy", CSP)
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


@contextlib.contextmanager
def _pem_file(value: str, home: Path) -> Iterator[str]:
    if "-----BEGIN" not in value:
        if not Path(value).is_file():
            raise ConfigError(f"TLS file not found: {value}")
        yield value
        return
    home.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=home, prefix=".tls-", suffix=".pem")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
        yield name
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def server_tls(settings: Settings) -> ssl.SSLContext | None:
    """The API's TLS context, or None when no certificate is configured."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError("TLS needs both tls_cert and tls_key (TTCS_TLS_CERT, TTCS_TLS_KEY)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with _pem_file(settings.tls_cert, settings.home) as cert, \
            _pem_file(settings.tls_key, settings.home) as key:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load the TLS certificate and key: {exc}") from exc
    return context
