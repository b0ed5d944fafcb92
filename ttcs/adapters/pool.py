"""Connections shared by all drivers of one hub process, opened lazily, closed once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import aiohttp

from ..core.config import Settings
from ..core.errors import ConfigError
from .device_endpoint import DEFAULT_DEVICE_PORT, DeviceEndpoint
from .modbus import DEFAULT_PORT as MODBUS_PORT
from .modbus import ModbusEndpoint, ModbusEndpoints
from .mqtt import MqttConnection, MqttEndpoint
from .snmp import SnmpManager


def _always(key: str) -> bool:
    return True


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Transports:
    """Hands out shared transports: one MQTT connection per broker URL, one HTTP session,
    one Modbus TCP connection per endpoint, one device-facing server per listening address,
    one SNMP manager, and any per-plugin shared object (``shared(key, factory)``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mqtt: dict[str, MqttConnection] = {}
        self._http: aiohttp.ClientSession | None = None
        self._shared: dict[str, Any] = {}
        self._mqtt_lock = asyncio.Lock()
        self._shared_lock = asyncio.Lock()  # held while a factory runs; factories may ask for mqtt
        self._endpoints: dict[tuple[str, int], DeviceEndpoint] = {}
        self._endpoint_lock = asyncio.Lock()
        self._modbus = ModbusEndpoints()
        #: whether this process reports for a device (a serial or id): always, but for one
        #: of several workers, where the hub sets it to the workers' partition
        self.owns: Callable[[str], bool] = _always

    async def mqtt(self, url: str | None = None, *, client_id: str | None = None,
                   **options: Any) -> MqttConnection:
        """The shared connection to ``url`` (default: the hub's broker), started."""
        url = url or self.settings.mqtt_url
        async with self._mqtt_lock:
            conn = self._mqtt.get(url)
            if conn is None:
                # workers of one hub on one host: the process id keeps their client ids
                # apart (a duplicate client id makes the broker drop the other connection)
                unique = f"{os.getpid()}-" if self.settings.worker else ""
                conn = MqttConnection(MqttEndpoint.from_url(url), client_id=client_id or
                                      f"{self.settings.hub_id}-{unique}{len(self._mqtt)}-"
                                      f"{id(self) & 0xFFFF:x}", **options)
                self._mqtt[url] = conn
                await conn.start()
        return conn

    async def http(self) -> aiohttp.ClientSession:
        """A shared HTTP client session (connection pooling across devices)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.command_timeout),
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=4))
        return self._http

    def modbus(self, host: str, port: int = MODBUS_PORT) -> ModbusEndpoint:
        """The shared Modbus TCP endpoint ``host:port``: one connection for every unit id
        behind it, requests serialised (see :mod:`ttcs.adapters.modbus`). Connects lazily."""
        return self._modbus.get(host, port)

    async def device_endpoint(self, host: str = "0.0.0.0",  # noqa: S104 - devices call in
                              port: int = DEFAULT_DEVICE_PORT, *, cert: str | None = None,
                              key: str | None = None) -> DeviceEndpoint:
        """The shared device-facing server on ``host:port`` (TLS with ``cert``/``key``),
        started. Every plugin asking for the same address gets the same server; port 0 means
        one free port shared by everyone asking for port 0 on that host."""
        async with self._endpoint_lock:
            endpoint = self._endpoints.get((host, port))
            if endpoint is None:
                endpoint = DeviceEndpoint(host, port, cert=cert, key=key)
                await endpoint.start()
                self._endpoints[(host, port)] = endpoint
            elif (endpoint.cert, endpoint.key) != (cert, key):
                raise ConfigError(f"the device endpoint on {host}:{port} already runs with "
                                  f"{'other TLS files' if endpoint.tls else 'plain HTTP'}; "
                                  "devices sharing a port must share its TLS settings")
        return endpoint

    async def snmp(self) -> SnmpManager:
        """The SNMP manager of this process (requests serialised per agent), closed with the
        transports."""
        return await self.shared("snmp.manager", SnmpManager.create)

    async def shared(self, key: str, factory: Callable[[], Awaitable[C]]) -> C:
        """A per-process singleton for ``key``, created by ``factory`` on first use."""
        async with self._shared_lock:
            if key not in self._shared:
                self._shared[key] = await factory()
            return self._shared[key]  # type: ignore[no-any-return]

    async def close(self) -> None:
        for obj in list(self._shared.values()):
            await obj.close()
        self._shared.clear()
        for endpoint in list(self._endpoints.values()):
            await endpoint.close()
        self._endpoints.clear()
        await self._modbus.close()
        for conn in list(self._mqtt.values()):
            await conn.stop()
        self._mqtt.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None
