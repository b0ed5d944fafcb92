"""HTTP client side shared by the HTTP-speaking plugins (speakers, decoders, boards).

:func:`request_json` sends one request with a per-device timeout and turns every aiohttp or
socket error — and every answer that is not the JSON the caller expects — into the hub's own
errors. Status codes map by meaning: 401/403 → :class:`AuthFailed`, 409/422/400 →
:class:`CommandRejected`, 503/429 → :class:`DeviceNotReady`, other 5xx → :class:`ProtocolError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp

from ..core.errors import (
    AuthFailed,
    CommandRejected,
    DeviceNotReady,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)


@contextmanager
def map_http_errors(what: str) -> Iterator[None]:
    """Translate aiohttp/socket errors raised while doing ``what``."""
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise DeviceTimeout(f"{what}: timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise DeviceUnreachable(f"{what}: cannot connect ({exc.os_error or exc})") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise DeviceUnreachable(f"{what}: connection lost ({exc})") from exc
    except aiohttp.ClientPayloadError as exc:
        raise ProtocolError(f"{what}: broken response body ({exc})") from exc
    except aiohttp.ClientResponseError as exc:
        raise ProtocolError(f"{what}: bad response ({exc.status} {exc.message})") from exc
    except aiohttp.ClientError as exc:
        raise DeviceUnreachable(f"{what}: {exc!r}") from exc


def raise_for_status(what: str, status: int, body: str) -> None:
    """Raise the hub error that an HTTP status means; return for 2xx."""
    if 200 <= status < 300:
        return
    detail = body.strip()[:300] or "(empty body)"
    if status in (401, 403):
        raise AuthFailed(f"{what}: refused credentials ({status}): {detail}")
    if status in (400, 404, 409, 422):
        raise CommandRejected(f"{what}: device refused ({status}): {detail}", code=f"http_{status}")
    if status in (429, 503):
        raise DeviceNotReady(f"{what}: device busy ({status}): {detail}")
    raise ProtocolError(f"{what}: unexpected status {status}: {detail}")


async def request_json(session: aiohttp.ClientSession, method: str, url: str, *,
                       what: str, timeout: float, json_body: Any = None,
                       headers: Mapping[str, str] | None = None,
                       data: bytes | None = None) -> Any:
    """Send a request and return the decoded JSON body (``None`` for an empty body)."""
    with map_http_errors(what):
        async with session.request(method, url, json=json_body, data=data, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            text = await response.text(errors="replace")
            raise_for_status(what, response.status, text)
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"{what}: answer is not JSON: {text[:120]!r}") from exc
