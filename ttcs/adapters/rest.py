"""A device's REST API as the hub calls it: base URL, credentials (a bearer token, an
API-key header or a request signer), one request at a time.

:class:`RestDevice` serialises requests to one device (an :class:`asyncio.Lock` per base URL,
shared by every driver of the process through :class:`EndpointLocks`), applies a per-device
timeout, and maps every failure to the hub's errors (see :mod:`ttcs.adapters.http`). It sends
JSON or raw bytes (asset uploads) and can return raw bytes (screenshots). Given a
:class:`~ttcs.adapters.signing.RequestSigner` it signs each request inside the device's lock,
just before sending, over the exact bytes sent.

:func:`fetch_verified` downloads approved media and refuses it unless its SHA-256 and size
match the reference: a driver never forwards altered content to a device.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from pydantic import SecretStr

from ..core.errors import CommandRejected, ProtocolError
from ..schemas.content import MediaRef
from .http import map_http_errors, raise_for_status
from .pool import Transports
from .signing import RequestSigner

LOCKS_KEY = "rest.locks"


class EndpointLocks:
    """One lock per device endpoint, for the whole process (requests to a device are serial)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, endpoint: str) -> asyncio.Lock:
        return self._locks.setdefault(endpoint, asyncio.Lock())

    async def close(self) -> None:
        self._locks.clear()


async def _make_locks() -> EndpointLocks:
    return EndpointLocks()


@dataclass(frozen=True)
class RestResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, what: str) -> Any:
        """The body as JSON, or :class:`ProtocolError` (garbage from the device)."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ProtocolError(f"{what}: answer is not JSON: {self.body[:80]!r}") from exc


class RestDevice:
    """One device's REST API. Create per driver; requests to one base URL never overlap."""

    def __init__(self, transports: Transports, base_url: str, *, token: SecretStr | None = None,
                 signer: RequestSigner | None = None, timeout: float,
                 ca_file: str | None = None, verify_tls: bool = True,
                 api_key: tuple[str, SecretStr] | None = None) -> None:
        """``token`` is sent as ``Authorization: Bearer``; ``api_key`` as ``(header, key)``,
        e.g. ``("X-API-Key", key)``, for devices that authenticate that way; ``signer`` signs
        each request (HMAC-signed APIs)."""
        self.transports = transports
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._token = token
        self.signer = signer
        self._api_key = api_key
        self.timeout = timeout
        self._ssl: ssl.SSLContext | bool | None = None
        if self.base_url.startswith("https") and (ca_file or not verify_tls):
            context = ssl.create_default_context(cafile=ca_file)
            if not verify_tls:  # a board with a self-signed certificate and no CA
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl = context

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        if self._api_key is not None:
            headers[self._api_key[0]] = self._api_key[1].get_secret_value()
        headers.update(extra or {})
        return headers

    async def request(self, method: str, path: str, *, what: str, json_body: Any = None,
                      data: bytes | None = None, headers: Mapping[str, str] | None = None,
                      query: Mapping[str, str] | None = None,
                      ok_statuses: tuple[int, ...] = ()) -> RestResponse:
        """Send one request; non-2xx statuses (except ``ok_statuses``) raise hub errors."""
        session = await self.transports.http()
        locks = await self.transports.shared(LOCKS_KEY, _make_locks)
        body = data
        hdrs = self._headers(headers)
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, default=str).encode()
            hdrs.setdefault("Content-Type", "application/json")
        url = f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")
        async with locks.get(self.base_url):
            if self.signer is not None:  # signed now: the timestamp is fresh when it is sent
                hdrs.update(self.signer.headers(method, self._base_path + path, query or {},
                                                body or b""))
            with map_http_errors(what):
                async with session.request(
                        method, url, data=body, headers=hdrs,
                        ssl=self._ssl if self._ssl is not None else True,
                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                    raw = await response.read()
                    result = RestResponse(response.status, dict(response.headers), raw)
        if result.status not in ok_statuses:
            raise_for_status(what, result.status, raw.decode("utf-8", errors="replace"))
        return result

    async def json(self, method: str, path: str, *, what: str, json_body: Any = None,
                   headers: Mapping[str, str] | None = None,
                   query: Mapping[str, str] | None = None) -> Any:
        """Send a request and return its decoded JSON body."""
        response = await self.request(method, path, what=what, json_body=json_body,
                                      headers=headers, query=query)
        return response.json(what)


async def fetch_verified(transports: Transports, media: MediaRef, *, timeout: float) -> bytes:
    """Download ``media`` and return its bytes if they match its SHA-256 and size.

    Raises :class:`CommandRejected` with code ``media_unavailable`` or ``checksum_mismatch``:
    the command cannot be carried out with this media, and retrying will not change that.
    """
    session = await transports.http()
    what = f"fetching media {media.url}"
    try:
        with map_http_errors(what):
            async with session.get(str(media.url),
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status != 200:
                    raise CommandRejected(f"{what}: answered {response.status}",
                                          code="media_unavailable")
                body = await response.read()
    except CommandRejected:
        raise
    except Exception as exc:
        raise CommandRejected(f"{what}: {exc}", code="media_unavailable") from exc
    digest = hashlib.sha256(body).hexdigest()
    if digest != media.sha256 or len(body) != media.size:
        raise CommandRejected(f"media {media.url} has sha256 {digest[:12]}… and {len(body)} "
                              "bytes, not what was approved; refusing altered content",
                              code="checksum_mismatch")
    return body


__all__ = ["EndpointLocks", "RestDevice", "RestResponse", "fetch_verified"]
