"""One subscription for every Sao Khuê station on a broker, routed by serial, and one watchdog.

The bus subscribes once to ``skr/v2/up/+/+`` (the uplink only, so the hub's own commands do
not echo back), keeps each serial's latest info, presence and heartbeat, and hands acks to the
command waiting for them. A station is offline when its last will says so, or when nothing
has been heard from it for ``offline_after`` heartbeat periods: a single watchdog task checks
every station's age, so there is no timer per device.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from ...adapters.mqtt import Message, MqttConnection
from ...aio import cancel_and_wait, wait_event
from ...core.errors import ProtocolError
from ...schemas import CommandResult, Connectivity
from .protocol import UPLINK_FILTER, Ack, Heartbeat, Info, Presence, Report, wire_id

log = structlog.get_logger("ttcs.saokhue")

#: results and realtime ids kept per station (repeated idempotency keys, report mapping)
KEPT = 500


class StationListener:
    """Implemented by the driver; called for its own serial only."""

    def on_info(self, info: Info) -> None: ...

    def on_heartbeat(self, heartbeat: Heartbeat) -> None: ...

    def on_report(self, report: Report) -> None: ...

    def on_connectivity(self, connectivity: Connectivity, reason: str) -> None: ...


@dataclass
class StationChannel:
    """What the bus knows of one serial, and who listens to it."""

    serial: str
    period: float = 60.0  # heartbeat period: the device's own word, else the driver config
    offline_after: float = 2.5  # periods of silence before the station counts as offline
    info: Info | None = None
    presence: Presence | None = None
    heartbeat: Heartbeat | None = None
    last_seen: float | None = None  # monotonic, any uplink message
    connectivity: Connectivity = Connectivity.UNKNOWN
    listeners: list[StationListener] = field(default_factory=list)
    pending: dict[str, asyncio.Future[Ack]] = field(default_factory=dict)
    results: OrderedDict[str, CommandResult] = field(default_factory=OrderedDict)
    #: ids the firmware could not store as they are (too long): short wire id -> hub id
    aliases: OrderedDict[str, str] = field(default_factory=OrderedDict)
    infos: asyncio.Event = field(default_factory=asyncio.Event)
    heartbeats: asyncio.Event = field(default_factory=asyncio.Event)
    alarms: set[str] | None = None  # alarm words of the last heartbeat (None: none seen)
    clock_set_at: float | None = None  # monotonic, last dong_bo_gio sent (or in flight)
    bad_payloads: int = 0

    def judge(self, now: float) -> tuple[Connectivity, str]:
        """Connectivity now: the last will wins, then the age of the last message."""
        if self.presence is not None and self.presence.on == 0:
            return Connectivity.OFFLINE, f"last will / goodbye ({self.presence.ly_do or '-'})"
        if self.last_seen is None:
            return Connectivity.UNKNOWN, "nothing heard yet"
        silent = now - self.last_seen
        if silent > self.period * self.offline_after:
            return Connectivity.OFFLINE, (f"no heartbeat for {silent:.0f} s (period "
                                          f"{self.period:g} s)")
        return Connectivity.ONLINE, "heard from"

    def remember(self, key: str, result: CommandResult) -> None:
        self.results[key] = result
        while len(self.results) > KEPT:
            self.results.popitem(last=False)

    def wire_id(self, value: str | None, prefix: str) -> str | None:
        """``value`` as the firmware stores it; a shortened id is remembered, so reports
        that carry it map back to the hub's id (until the hub restarts)."""
        short = wire_id(value, prefix)
        if short is not None and short != value:
            assert value is not None
            self.aliases[short] = value
            while len(self.aliases) > KEPT:
                self.aliases.popitem(last=False)
        return short

    def hub_id(self, short: str | None) -> str | None:
        return None if short is None else self.aliases.get(short, short)


class StationBus:
    """Routes the stations' uplink of one broker to their drivers, by serial."""

    def __init__(self, connection: MqttConnection) -> None:
        self.connection = connection
        self.channels: dict[str, StationChannel] = {}
        self.unknown_info: list[Callable[[Info], None]] = []
        self._watchdog: asyncio.Task[None] | None = None
        self._tick = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def attach(cls, connection: MqttConnection) -> StationBus:
        bus = cls(connection)
        await connection.subscribe(UPLINK_FILTER, bus._on_message, qos=1)
        bus._watchdog = asyncio.create_task(bus._watch(), name="saokhue-watchdog")
        return bus

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` for the bus, not for one driver: a driver stopped right after it
        started (a probe) does not cancel it. Closing the bus does."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._watchdog is not None:
            await cancel_and_wait(self._watchdog, "sao khue bus")
        await self.connection.unsubscribe(UPLINK_FILTER, self._on_message)

    def channel(self, serial: str) -> StationChannel:
        chan = self.channels.get(serial)
        if chan is None:
            chan = self.channels[serial] = StationChannel(serial)
        return chan

    def period_changed(self) -> None:
        """A channel's period shrank: the watchdog looks at its pace again."""
        self._tick.set()

    # -- watchdog -----------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            periods = [c.period for c in self.channels.values() if c.listeners]
            pace = min(max(min(periods, default=60.0) / 5, 0.05), 5.0)
            await wait_event(self._tick, pace)
            self._tick.clear()
            now = time.monotonic()
            for chan in list(self.channels.values()):
                if chan.listeners:
                    self._settle(chan, now)

    def _settle(self, chan: StationChannel, now: float) -> None:
        state, reason = chan.judge(now)
        if state is chan.connectivity or state is Connectivity.UNKNOWN:
            return
        chan.connectivity = state
        for listener in list(chan.listeners):
            listener.on_connectivity(state, reason)

    # -- routing ------------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        parts = message.topic.split("/")
        if len(parts) != 5:
            return
        serial, leaf = parts[3], parts[4]
        payload = message.payload
        if not payload:
            return  # a cleared retained message
        chan = self.channel(serial)
        try:
            self._apply(chan, leaf, payload)
        except (ValidationError, ValueError, ProtocolError) as exc:
            chan.bad_payloads += 1
            if chan.bad_payloads == 1 or chan.bad_payloads % 100 == 0:
                log.warning("saokhue.bad_payload", serial=serial, topic=leaf,
                            count=chan.bad_payloads, error=str(exc).splitlines()[0][:200])
            return
        self._settle(chan, time.monotonic())

    def _apply(self, chan: StationChannel, leaf: str, payload: bytes) -> None:
        now = time.monotonic()
        if leaf == "online":
            chan.presence = Presence.model_validate_json(payload)
            if chan.presence.on:
                chan.last_seen = now
            return
        if leaf == "info":
            info = Info.model_validate_json(payload)
            self._same_serial(chan, info.sn)
            chan.info, chan.last_seen = info, now
            if chan.heartbeat is not None and chan.heartbeat.fw != info.fw:
                # rebooted into another firmware: the info is newer than the last heartbeat
                chan.heartbeat = chan.heartbeat.model_copy(update={"fw": info.fw})
            self._period(chan, info.chu_ky)
            chan.infos.set()
            if not chan.listeners:
                for callback in self.unknown_info:
                    callback(info)
            for listener in list(chan.listeners):
                listener.on_info(info)
        elif leaf == "hb":
            heartbeat = Heartbeat.model_validate_json(payload)
            self._same_serial(chan, heartbeat.sn)
            chan.heartbeat, chan.last_seen = heartbeat, now
            if heartbeat.chu_ky:
                self._period(chan, heartbeat.chu_ky)
            chan.heartbeats.set()
            for listener in list(chan.listeners):
                listener.on_heartbeat(heartbeat)
        elif leaf == "ack":
            ack = Ack.model_validate_json(payload)
            chan.last_seen = now
            future = chan.pending.pop(ack.msg_id, None)
            if future is not None and not future.done():
                future.set_result(ack)
        elif leaf == "rpt":
            report = Report.model_validate_json(payload)
            chan.last_seen = now
            for listener in list(chan.listeners):
                listener.on_report(report)

    def _period(self, chan: StationChannel, seconds: float) -> None:
        if seconds != chan.period:
            shorter = seconds < chan.period
            chan.period = float(seconds)
            if shorter:
                self.period_changed()

    @staticmethod
    def _same_serial(chan: StationChannel, serial: str) -> None:
        if serial != chan.serial:
            raise ProtocolError(f"message names serial {serial} on {chan.serial}'s topic")
