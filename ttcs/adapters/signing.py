"""HMAC request signing for device APIs that authenticate every request with a shared secret.

Instead of a token that travels with each request (and can be copied and replayed), the hub
signs each request: a timestamp and a fresh nonce stop replays, the body's SHA-256 stops
tampering, and the serial of the device the request is meant for stops a request captured
on its way to one device from being replayed to another device of the same fleet.

The canonical request is these lines, joined by ``\\n``::

    SCHEME            the vendor's scheme name, e.g. VANG1-HMAC-SHA256
    METHOD            upper case
    PATH              the URL path, percent-encoded (RFC 3986 unreserved characters and '/' kept)
    QUERY             key=value pairs sorted by key then value, each percent-encoded, joined by '&'
    TARGET            serial of the device the request is for ('' when not known yet)
    TIMESTAMP         Unix seconds, an integer
    NONCE             16-64 characters of [A-Za-z0-9_-], never used twice
    BODY-SHA256       lower-case hex SHA-256 of the body (of no bytes when there is none)

and the signature is the lower-case hex HMAC-SHA256 of it under the shared secret. The
scheme's headers carry the key id, timestamp, nonce, target and signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from pydantic import SecretStr


class RequestSigner(Protocol):
    """Adds authentication headers to one request, given exactly what will be sent."""

    def headers(self, method: str, path: str, query: Mapping[str, str], body: bytes
                ) -> dict[str, str]: ...


@dataclass(frozen=True)
class HmacScheme:
    """A vendor's name for the scheme and the prefix of its headers (``X-Vang-``)."""

    name: str
    header_prefix: str

    @property
    def key_header(self) -> str:
        return f"{self.header_prefix}Key"

    @property
    def timestamp_header(self) -> str:
        return f"{self.header_prefix}Timestamp"

    @property
    def nonce_header(self) -> str:
        return f"{self.header_prefix}Nonce"

    @property
    def target_header(self) -> str:
        return f"{self.header_prefix}Device"

    @property
    def signature_header(self) -> str:
        return f"{self.header_prefix}Signature"


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """``k=v&…`` sorted by key then value, each side percent-encoded."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def canonical_request(scheme: HmacScheme, method: str, path: str,
                      query: Iterable[tuple[str, str]], target: str, timestamp: int,
                      nonce: str, body: bytes) -> str:
    """The text that is signed (see the module docstring)."""
    return "\n".join([scheme.name, method.upper(), quote(path, safe="/-_.~"),
                      canonical_query(query), target, str(timestamp), nonce,
                      hashlib.sha256(body).hexdigest()])


def hmac_signature(secret: SecretStr, canonical: str) -> str:
    return hmac.new(secret.get_secret_value().encode(), canonical.encode(),
                    hashlib.sha256).hexdigest()


class HmacSigner:
    """Signs requests for one device: its key id, shared secret and (once known) serial."""

    def __init__(self, scheme: HmacScheme, key_id: str, secret: SecretStr, *,
                 target: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.scheme = scheme
        self.key_id = key_id
        self._secret = secret
        self.target = target
        self._clock = clock

    def headers(self, method: str, path: str, query: Mapping[str, str], body: bytes
                ) -> dict[str, str]:
        timestamp = int(self._clock())
        nonce = secrets.token_urlsafe(18)  # 24 characters, 144 random bits
        target = self.target or ""
        canonical = canonical_request(self.scheme, method, path, query.items(), target,
                                      timestamp, nonce, body)
        s = self.scheme
        headers = {s.key_header: self.key_id, s.timestamp_header: str(timestamp),
                   s.nonce_header: nonce,
                   s.signature_header: hmac_signature(self._secret, canonical)}
        if target:
            headers[s.target_header] = target
        return headers


__all__ = ["HmacScheme", "HmacSigner", "RequestSigner", "canonical_query",
           "canonical_request", "hmac_signature"]
