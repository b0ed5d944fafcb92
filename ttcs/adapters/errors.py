"""The boundary where library exceptions become the hub's own (see :mod:`ttcs.core.errors`).

Every adapter wraps its library calls in one of these context managers, so no caller above
``ttcs.adapters`` ever has to catch an MQTT, aiohttp, pymodbus or pysnmp exception.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ..core.errors import AuthFailed, DeviceError, DeviceTimeout, DeviceUnreachable, ProtocolError
from .mqtt_wire import MqttCodeError, MqttError, MqttTimeout

T = TypeVar("T")

#: MQTT CONNACK codes (3.1.1) and reason codes (5) that mean "your credentials are refused"
_MQTT_AUTH_CODES = {4, 5, 134, 135}


def mqtt_error(exc: MqttError, what: str) -> DeviceError:
    """The hub's error for an MQTT failure while doing ``what`` (for hot paths that catch
    :class:`MqttError` themselves rather than enter :func:`map_mqtt_errors` every time)."""
    if isinstance(exc, MqttCodeError) and exc.rc in _MQTT_AUTH_CODES:
        return AuthFailed(f"{what}: broker refused the credentials ({exc})")
    if isinstance(exc, MqttTimeout):
        return DeviceTimeout(f"{what}: {exc}")
    return DeviceUnreachable(f"{what}: {exc}")


@contextmanager
def map_mqtt_errors(what: str) -> Iterator[None]:
    """Translate MQTT/socket errors raised while doing ``what``."""
    try:
        yield
    except MqttError as exc:
        raise mqtt_error(exc, what) from exc
    except ssl.SSLError as exc:
        raise DeviceUnreachable(f"{what}: TLS failed ({exc.reason or exc})") from exc
    except TimeoutError as exc:
        raise DeviceTimeout(f"{what}: timed out") from exc
    except OSError as exc:
        raise DeviceUnreachable(f"{what}: {exc.strerror or exc}") from exc


@contextmanager
def map_decode_errors(what: str) -> Iterator[None]:
    """Translate payload decoding/validation errors into :class:`ProtocolError`."""
    try:
        yield
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        # pydantic.ValidationError and json.JSONDecodeError are ValueErrors
        raise ProtocolError(f"{what}: {str(exc).splitlines()[0][:300]}") from exc


async def with_timeout(seconds: float, what: str, awaitable: Awaitable[T]) -> T:
    """Await for at most ``seconds``; on expiry raise :class:`DeviceTimeout`."""
    try:
        # in this task (asyncio.wait_for would wrap a coroutine in a task of its own: one
        # per command in a fan-out)
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError as exc:
        raise DeviceTimeout(f"{what}: no answer within {seconds:g} s") from exc
