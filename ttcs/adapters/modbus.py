"""Modbus TCP as the hub speaks it: one connection per endpoint, one request at a time.

A wired station's zone controller (and often a Modbus gateway with several unit ids behind
it) is one TCP endpoint ``(host, port)``. Every driver that talks to it gets the same
:class:`ModbusEndpoint` from ``transports.modbus(host, port)``:

- one TCP connection per endpoint, shared by every unit id (``device_id``) behind it; the
  requests of all drivers are serialised on it, because most field devices answer one
  request at a time and some drop a second connection;
- a timeout per request that covers waiting for the endpoint as well, so a caller is never
  held longer than it asked for, even behind a hung request of another driver;
- after a failure the connection is dropped (a late answer can never be taken for the next
  request's) and reconnected on the next request, with a backoff between attempts to a dead
  endpoint so a fleet of polls does not hammer it;
- every pymodbus and socket error becomes a hub error *here*: refused/reset/closed →
  :class:`DeviceUnreachable`, no answer → :class:`DeviceTimeout`, a Modbus exception
  response or a frame that is not Modbus → :class:`ProtocolError` (illegal function, address
  or value → :class:`CommandRejected` for writes: the device understood and refused).

Endpoints of different addresses share nothing, so one hung controller never delays another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from ..aio import cancel_and_wait, wait_for
from ..core.errors import CommandRejected, DeviceTimeout, DeviceUnreachable, ProtocolError

log = structlog.get_logger("ttcs.modbus")
# pymodbus logs every packet at debug and every unanswered request at error; this module
# reports each failure once, as a hub error, so its own log would only repeat it.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

DEFAULT_PORT = 502

#: Modbus exception codes, by name (Modbus Application Protocol v1.1b3, section 7)
EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "server device failure", 5: "acknowledge", 6: "server device busy",
                   8: "memory parity error", 10: "gateway path unavailable",
                   11: "gateway target failed to respond"}
#: codes that mean "understood and refused" rather than "broken"
_REFUSALS = {1, 2, 3}


class ModbusRefused(CommandRejected):
    """The device answered with a Modbus exception meaning the request itself is wrong."""

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message, code=f"modbus_exception_{exception_code}")
        self.exception_code = exception_code


@dataclass
class EndpointStats:
    requests: int = 0
    failures: int = 0
    connects: int = 0
    #: requests that waited for another request to the same endpoint, and the longest wait
    queued: int = 0
    max_wait: float = 0.0


@contextmanager
def map_modbus_errors(what: str) -> Iterator[None]:
    """Translate pymodbus/socket errors raised while doing ``what``."""
    try:
        yield
    except ConnectionException as exc:
        raise DeviceUnreachable(f"{what}: {_short(exc)}") from exc
    except ModbusIOException as exc:
        text = str(exc)
        if "device id" in text or "transaction id" in text:
            raise ProtocolError(f"{what}: answer does not match the request ({_short(exc)})"
                                ) from exc
        if "No response" in text:
            raise DeviceTimeout(f"{what}: no answer") from exc
        raise DeviceUnreachable(f"{what}: {_short(exc)}") from exc
    except ModbusException as exc:
        raise ProtocolError(f"{what}: {_short(exc)}") from exc
    except TimeoutError as exc:
        raise DeviceTimeout(f"{what}: timed out") from exc
    except OSError as exc:
        raise DeviceUnreachable(f"{what}: {exc.strerror or exc}") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).replace("Modbus Error: ", "").replace("[Connection] ", "")
    text = text.replace(" (automatic retry continuing) !!", "")
    return text.strip()[:200] or type(exc).__name__


class ModbusEndpoint:
    """One Modbus TCP endpoint: a lazily opened connection and the lock that serialises it."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, backoff_min: float = 0.2,
                 backoff_max: float = 5.0) -> None:
        self.host, self.port = host, port
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.stats = EndpointStats()
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._users = 0  # requests waiting for the lock
        self._backoff = 0.0
        self._retry_at = 0.0  # monotonic time before which we do not try to connect again
        self._garbled = False  # the last bytes received were not a Modbus frame
        self._lost = asyncio.Event()  # set when the current connection goes away
        self._down_logged = False
        self._closed = False
        self.log = log.bind(endpoint=f"{host}:{port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- reads ---------------------------------------------------------------------------------

    async def read_coils(self, unit: int, address: int, count: int, *, timeout: float
                         ) -> list[bool]:
        pdu = await self._call(f"reading {count} coils at {address}", unit, timeout,
                               lambda c: c.read_coils(address, count=count, device_id=unit))
        return list(pdu.bits[:count])

    async def read_discrete_inputs(self, unit: int, address: int, count: int, *,
                                   timeout: float) -> list[bool]:
        pdu = await self._call(f"reading {count} discrete inputs at {address}", unit, timeout,
                               lambda c: c.read_discrete_inputs(address, count=count,
                                                                device_id=unit))
        return list(pdu.bits[:count])

    async def read_holding_registers(self, unit: int, address: int, count: int, *,
                                     timeout: float) -> list[int]:
        pdu = await self._call(f"reading {count} holding registers at {address}", unit,
                               timeout, lambda c: c.read_holding_registers(
                                   address, count=count, device_id=unit))
        return self._registers(pdu, count, address)

    async def read_input_registers(self, unit: int, address: int, count: int, *,
                                   timeout: float) -> list[int]:
        pdu = await self._call(f"reading {count} input registers at {address}", unit,
                               timeout, lambda c: c.read_input_registers(
                                   address, count=count, device_id=unit))
        return self._registers(pdu, count, address)

    def _registers(self, pdu: ModbusPDU, count: int, address: int) -> list[int]:
        registers = list(pdu.registers)
        if len(registers) != count:
            raise ProtocolError(f"{self.address}: asked for {count} registers at {address}, "
                                f"got {len(registers)}")
        return registers

    # -- writes --------------------------------------------------------------------------------

    async def write_coil(self, unit: int, address: int, value: bool, *, timeout: float
                         ) -> None:
        await self._call(f"writing coil {address}", unit, timeout,
                         lambda c: c.write_coil(address, value, device_id=unit), write=True)

    async def write_coils(self, unit: int, address: int, values: Sequence[bool], *,
                          timeout: float) -> None:
        await self._call(f"writing {len(values)} coils at {address}", unit, timeout,
                         lambda c: c.write_coils(address, list(values), device_id=unit),
                         write=True)

    async def write_register(self, unit: int, address: int, value: int, *, timeout: float
                             ) -> None:
        await self._call(f"writing holding register {address}", unit, timeout,
                         lambda c: c.write_register(address, value, device_id=unit),
                         write=True)

    async def write_registers(self, unit: int, address: int, values: Sequence[int], *,
                              timeout: float) -> None:
        await self._call(f"writing {len(values)} holding registers at {address}", unit,
                         timeout, lambda c: c.write_registers(address, list(values),
                                                              device_id=unit), write=True)

    # -- the one path every request takes -------------------------------------------------------

    async def _call(self, what: str, unit: int, timeout: float,
                    request: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]], *,
                    write: bool = False) -> ModbusPDU:
        what = f"{what} of unit {unit} on {self.address}"
        if self._closed:
            raise DeviceUnreachable(f"{what}: the hub is shutting down")
        deadline = time.monotonic() + timeout
        asked = time.monotonic()
        if self._users or self._lock.locked():  # it waits for another request to end
            self.stats.queued += 1
        self._users += 1
        try:
            await wait_for(self._lock.acquire(), timeout)
        except TimeoutError as exc:
            raise DeviceTimeout(f"{what}: the endpoint stayed busy for {timeout:g} s "
                                "(another request to it did not finish)") from exc
        finally:
            self._users -= 1
        self.stats.max_wait = max(self.stats.max_wait, time.monotonic() - asked)
        try:
            self.stats.requests += 1
            client = await self._connected(what, deadline)
            remaining = max(deadline - time.monotonic(), 0.01)
            self._garbled = False
            try:
                with map_modbus_errors(what):
                    pdu = await self._answer(what, request(client), remaining)
            except DeviceTimeout as exc:
                self._drop()  # a late answer must never be read as the next one's
                if self._garbled:
                    raise ProtocolError(f"{what}: the device answered bytes that are not a "
                                        "Modbus frame") from exc
                raise
            except (DeviceUnreachable, ProtocolError):
                self._drop()
                raise
            if isinstance(pdu, ExceptionResponse) or pdu.isError():
                code = int(getattr(pdu, "exception_code", 0) or 0)
                name = EXCEPTION_NAMES.get(code, f"exception {code}")
                if write and code in _REFUSALS:
                    raise ModbusRefused(f"{what}: device refused ({name})", code)
                raise ProtocolError(f"{what}: device answered Modbus exception {code} ({name})")
            self._up()
            return pdu
        except BaseException:
            self.stats.failures += 1
            raise
        finally:
            self._lock.release()

    async def _answer(self, what: str, request: Awaitable[ModbusPDU], timeout: float
                      ) -> ModbusPDU:
        """The answer to ``request``, or an error as soon as the connection is lost (pymodbus
        itself would only notice at the timeout)."""
        lost = self._lost
        waiting = asyncio.ensure_future(request)
        watch = asyncio.ensure_future(lost.wait())
        try:
            done, _ = await asyncio.wait({waiting, watch}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if waiting in done:
            return waiting.result()
        await cancel_and_wait(waiting, what)
        if watch in done:
            raise DeviceUnreachable(f"{what}: connection lost")
        raise DeviceTimeout(f"{what}: no answer within {timeout:.2f} s")

    def _connection_changed(self, connected: bool) -> None:
        if not connected:
            self._lost.set()

    async def _connected(self, what: str, deadline: float) -> AsyncModbusTcpClient:
        client = self._client
        if client is not None and client.connected:
            return client
        now = time.monotonic()
        if now < self._retry_at:
            raise DeviceUnreachable(f"{what}: not connected (next attempt in "
                                    f"{self._retry_at - now:.1f} s)")
        self._drop()
        remaining = max(deadline - now, 0.01)
        # retries=0 and no automatic reconnect: this class decides when to try again.
        self._lost = asyncio.Event()
        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=remaining, retries=0,
                                      reconnect_delay=0, trace_packet=self._trace,
                                      trace_connect=self._connection_changed)
        self.stats.connects += 1
        try:
            with map_modbus_errors(f"connecting to {self.address}"):
                ok = await wait_for(client.connect(), remaining)
        except DeviceTimeout:
            client.close()
            self._down()
            raise
        except DeviceUnreachable:
            client.close()
            self._down()
            raise
        if not ok or not client.connected:
            client.close()
            self._down()
            raise DeviceUnreachable(f"{what}: cannot connect to {self.address}")
        # the client's own per-request timeout; ours (wait_for) is the one that counts
        client.ctx.comm_params.timeout_connect = max(remaining, 0.05)
        self._client = client
        return client

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """pymodbus calls this with every packet; a received one that is not a Modbus TCP
        frame (protocol id 0, a length that fits) is remembered, so the timeout it leads to
        is reported as garbage rather than silence."""
        if not sending and data and not _looks_like_mbap(data):
            self._garbled = True
        return data

    def _up(self) -> None:
        self._backoff = 0.0
        self._retry_at = 0.0
        if self._down_logged:
            self._down_logged = False
            self.log.info("modbus.endpoint_back")

    def _down(self) -> None:
        self._backoff = min(max(self._backoff * 2, self.backoff_min), self.backoff_max)
        self._retry_at = time.monotonic() + self._backoff
        if not self._down_logged:
            self._down_logged = True
            self.log.warning("modbus.endpoint_down")

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        self._closed = True
        self._drop()


def _looks_like_mbap(data: bytes) -> bool:
    if len(data) < 8:
        return False
    protocol = int.from_bytes(data[2:4], "big")
    length = int.from_bytes(data[4:6], "big")
    return protocol == 0 and 2 <= length <= 254 and len(data) >= 6 + length


class ModbusEndpoints:
    """Every Modbus endpoint of the process, by address (kept by :class:`Transports`)."""

    def __init__(self, **options: Any) -> None:
        self._endpoints: dict[tuple[str, int], ModbusEndpoint] = {}
        self._options = options

    def get(self, host: str, port: int = DEFAULT_PORT) -> ModbusEndpoint:
        endpoint = self._endpoints.get((host, port))
        if endpoint is None:
            endpoint = self._endpoints[(host, port)] = ModbusEndpoint(host, port,
                                                                      **self._options)
        return endpoint

    def __iter__(self) -> Iterator[ModbusEndpoint]:
        return iter(list(self._endpoints.values()))

    async def close(self) -> None:
        for endpoint in list(self._endpoints.values()):
            await endpoint.close()
        self._endpoints.clear()


__all__ = ["DEFAULT_PORT", "EXCEPTION_NAMES", "EndpointStats", "ModbusEndpoint",
           "ModbusEndpoints", "ModbusRefused", "map_modbus_errors"]
