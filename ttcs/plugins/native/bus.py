"""One subscription for every native device on a broker, routed by serial.

Subscribing once to ``ttcs/v1/dev/+/+`` (instead of once per device) keeps the broker's and the
hub's work independent of the fleet size. The bus caches each device's latest birth, presence
and status, so a probe or status read is answered from memory once the retained messages
arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from pydantic import ValidationError

from ...adapters.mqtt import Message, MqttConnection
from ...core.errors import ProtocolError
from ...schemas import CommandResult, DeviceStatus
from ...schemas.native import PREFIX, Birth, DeviceEvent, Presence

log = structlog.get_logger("ttcs.native")


@dataclass
class DeviceChannel:
    """What the bus knows of one serial, and who listens to it."""

    serial: str
    birth: Birth | None = None
    presence: Presence | None = None
    status: DeviceStatus | None = None
    listeners: list[NativeListener] = field(default_factory=list)
    pending: dict[str, asyncio.Future[CommandResult]] = field(default_factory=dict)
    births: asyncio.Event = field(default_factory=asyncio.Event)
    statuses: asyncio.Event = field(default_factory=asyncio.Event)
    bad_payloads: int = 0


class NativeListener:
    """Implemented by the native driver; every method is called for its serial only."""

    def on_birth(self, birth: Birth) -> None: ...

    def on_presence(self, presence: Presence) -> None: ...

    def on_status(self, status: DeviceStatus) -> None: ...

    def on_event(self, event: DeviceEvent) -> None: ...


class NativeBus:
    """Routes native protocol messages of one broker to the drivers, by serial."""

    def __init__(self, connection: MqttConnection, *,
                 owns: Callable[[str], bool] | None = None) -> None:
        self.connection = connection
        self.channels: dict[str, DeviceChannel] = {}
        self.unknown_birth: list[Callable[[Birth], None]] = []
        self.filters: list[str] = []
        #: whether this process reports a serial's birth and presence (one of several
        #: workers reports those of the serials it owns; every worker keeps them)
        self.owns = owns

    @classmethod
    async def attach(cls, connection: MqttConnection, *, share_group: str | None = None,
                     owns: Callable[[str], bool] | None = None) -> NativeBus:
        """Subscribe the bus. With ``share_group`` (one of several workers), the high-rate
        uplink (status, event) is an MQTT 5 shared subscription, so each message reaches one
        worker of the group; retained state (birth, conn) and acknowledgements reach every
        worker: each knows every device's presence, and the worker that sent a command
        hears its ack."""
        bus = cls(connection, owns=owns)
        if share_group is None:
            bus.filters = [f"{PREFIX}/+/+"]
        else:
            bus.filters = [*(f"$share/{share_group}/{PREFIX}/+/{leaf}"
                             for leaf in ("status", "event")),
                           *(f"{PREFIX}/+/{leaf}" for leaf in ("birth", "conn", "ack"))]
        for topic_filter in bus.filters:
            await connection.subscribe(topic_filter, bus._on_message, qos=1)
        return bus

    async def close(self) -> None:
        for topic_filter in self.filters:
            await self.connection.unsubscribe(topic_filter, self._on_message)

    def channel(self, serial: str) -> DeviceChannel:
        chan = self.channels.get(serial)
        if chan is None:
            chan = self.channels[serial] = DeviceChannel(serial)
        return chan

    def _on_message(self, message: Message) -> None:
        parts = message.topic.split("/")
        if len(parts) != 5:
            return
        serial, leaf = parts[3], parts[4]
        if leaf == "cmd":
            return  # our own commands (or another hub's) echo back on the wildcard
        payload = message.payload
        if not payload:
            return  # a cleared retained message
        chan = self.channel(serial)
        try:
            self._apply(chan, leaf, payload)
        except (ValidationError, ValueError, ProtocolError) as exc:
            chan.bad_payloads += 1
            if chan.bad_payloads == 1 or chan.bad_payloads % 100 == 0:
                log.warning("native.bad_payload", serial=serial, topic=leaf,
                            count=chan.bad_payloads, error=str(exc).splitlines()[0][:200])

    def _apply(self, chan: DeviceChannel, leaf: str, payload: bytes) -> None:
        if leaf == "birth":
            chan.birth = Birth.model_validate_json(payload)
            chan.births.set()
            if self.owns is not None and not self.owns(chan.serial):
                return  # known here, reported by the worker that owns the serial
            if not chan.listeners:
                for callback in self.unknown_birth:
                    callback(chan.birth)
            for listener in chan.listeners:
                listener.on_birth(chan.birth)
        elif leaf == "conn":
            chan.presence = Presence.model_validate_json(payload)
            if self.owns is not None and not self.owns(chan.serial):
                return
            for listener in chan.listeners:
                listener.on_presence(chan.presence)
        elif leaf == "status":
            chan.status = DeviceStatus.model_validate_json(payload)
            chan.statuses.set()
            for listener in chan.listeners:
                listener.on_status(chan.status)
        elif leaf == "ack":
            result = CommandResult.model_validate_json(payload)
            future = chan.pending.pop(result.command_id, None)
            if future is not None and not future.done():
                future.set_result(result)
        elif leaf == "event":
            event = DeviceEvent.model_validate_json(payload)
            if event.serial != chan.serial:
                raise ProtocolError(f"event names serial {event.serial} on {chan.serial}'s topic")
            for listener in chan.listeners:
                listener.on_event(event)
