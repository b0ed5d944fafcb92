"""Driver for devices that speak the native protocol (MQTT + JSON, :mod:`ttcs.schemas.native`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from pydantic import Field, SecretStr

from ...adapters.errors import with_timeout
from ...adapters.pool import Transports
from ...core.driver import DeviceDriver, DriverConfig
from ...core.errors import CommandRejected, DeviceUnreachable
from ...schemas import (
    Capability,
    Command,
    CommandResult,
    Connectivity,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    IotClass,
)
from ...schemas.base import Identifier, evolved
from ...schemas.native import Birth, DeviceEvent, Presence, topic
from .bus import DeviceChannel, NativeBus, NativeListener

BUS_KEY = "native.bus:"


class NativeConfig(DriverConfig):
    serial: Identifier = Field(description="the serial the device uses in its topics")
    broker_url: SecretStr | None = Field(
        default=None, description="broker, if not the hub's own (mqtt[s]://user:pass@host:port);"
        " secret because it may carry a password")


async def native_bus(transports: Transports, url: str | None) -> NativeBus:
    """The process-wide bus for ``url`` (the hub's broker by default)."""
    resolved = url or transports.settings.mqtt_url

    settings = transports.settings

    async def make() -> NativeBus:
        connection = await transports.mqtt(resolved)
        if settings.worker and resolved == settings.mqtt_url:  # one of several workers
            return await NativeBus.attach(connection, share_group=settings.worker_group,
                                          owns=transports.owns)
        return await NativeBus.attach(connection)

    return await transports.shared(BUS_KEY + resolved, make)


class NativeSpeakerDriver(DeviceDriver, NativeListener):
    """An IP/4G speaker speaking the native protocol. Push: the device reports on its own."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.IP_SPEAKER})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.AUDIO_PLAY, Capability.AUDIO_STREAM, Capability.AUDIO_VOLUME,
        Capability.AUDIO_TEST_TONE, Capability.POWER, Capability.REBOOT})
    config_model = NativeConfig
    iot_class = IotClass.PUSH

    _bus: NativeBus | None = None
    _chan: DeviceChannel | None = None

    @property
    def config(self) -> NativeConfig:
        return self.context.config  # type: ignore[no-any-return]

    async def _channel(self) -> DeviceChannel:
        if self._chan is None:
            url = self.config.broker_url.get_secret_value() if self.config.broker_url else None
            self._bus = await native_bus(self.context.transports, url)
            self._chan = self._bus.channel(self.config.serial)
        return self._chan

    async def start(self) -> None:
        chan = await self._channel()
        chan.listeners.append(self)
        if chan.status is not None:
            self.on_status(chan.status)

    async def stop(self) -> None:
        if self._chan is not None:
            with contextlib.suppress(ValueError):
                self._chan.listeners.remove(self)
            for future in self._chan.pending.values():
                future.cancel()

    # -- requests -----------------------------------------------------------------------------

    async def probe(self) -> DeviceInfo:
        chan = await self._channel()
        await self._bus_connected()
        if not chan.births.is_set():
            await with_timeout(self.context.settings.probe_timeout,
                               f"device {self.config.serial} announced nothing (no birth "
                               "message on the broker)", chan.births.wait())
        assert chan.birth is not None
        if chan.presence is not None and not chan.presence.online:
            raise DeviceUnreachable(f"device {self.config.serial} is offline (last will)")
        if chan.birth.info.serial != self.config.serial:
            raise CommandRejected(f"birth on {self.config.serial}'s topic names serial "
                                  f"{chan.birth.info.serial}", code="identity_mismatch")
        return chan.birth.info

    async def read_status(self) -> DeviceStatus:
        chan = await self._channel()
        await self._bus_connected()
        if chan.status is None:
            with contextlib.suppress(Exception):
                await with_timeout(self.context.settings.probe_timeout, "status",
                                   chan.statuses.wait())
        status = chan.status or DeviceStatus()
        return status.model_copy(update={"connectivity": self._connectivity(chan)})

    async def execute(self, command: Command) -> CommandResult:
        chan = await self._channel()
        await self._bus_connected()
        if chan.presence is not None and not chan.presence.online:
            raise DeviceUnreachable(f"device {self.config.serial} is offline")
        loop = asyncio.get_running_loop()
        future = chan.pending.get(command.id) or loop.create_future()
        chan.pending[command.id] = future
        try:
            await self._connection_publish(topic(self.config.serial, "cmd"),
                                           command.model_dump_json())
            return await with_timeout(self.context.settings.command_timeout,
                                      f"device {self.config.serial} did not acknowledge "
                                      f"{command.type}", asyncio.shield(future))
        finally:
            if future.done() or future.cancelled():
                chan.pending.pop(command.id, None)

    async def _connection_publish(self, topic_name: str, payload: str) -> None:
        assert self._bus is not None
        await self._bus.connection.publish(topic_name, payload, qos=1,
                                           timeout=self.context.settings.command_timeout)

    async def _bus_connected(self) -> None:
        assert self._bus is not None
        await self._bus.connection.wait_connected(self.context.settings.probe_timeout)

    @staticmethod
    def _connectivity(chan: DeviceChannel) -> Connectivity:
        if chan.presence is None:
            return Connectivity.UNKNOWN
        return Connectivity.ONLINE if chan.presence.online else Connectivity.OFFLINE

    # -- pushed by the bus --------------------------------------------------------------------

    def _report(self, connectivity: Connectivity) -> None:
        """Latest status with the presence and firmware the device announced most recently."""
        chan = self._chan
        assert chan is not None
        # a copy with the values of validated models (no re-validation needed); the birth
        # is newer than a retained status from before
        update: dict[str, object] = {"connectivity": connectivity}
        if chan.birth is not None:
            update["firmware"] = chan.birth.info.firmware
        self.context.link.report_status(evolved(chan.status or DeviceStatus(), update))

    def on_birth(self, birth: Birth) -> None:
        self._report(Connectivity.ONLINE)

    def on_presence(self, presence: Presence) -> None:
        self._report(Connectivity.ONLINE if presence.online else Connectivity.OFFLINE)

    def on_status(self, status: DeviceStatus) -> None:
        assert self._chan is not None
        self._report(self._connectivity(self._chan) if self._chan.presence is not None
                     else Connectivity.ONLINE)

    def on_event(self, event: DeviceEvent) -> None:
        self.context.link.report_event(event.event)
