"""A simulated IP/4G speaker that speaks the native protocol (MQTT + JSON) over a real broker.

Behaviour, as a native device must behave:

- on connect: retained ``birth`` and ``conn`` (online); will = ``conn`` offline;
- ``status`` (retained) on every change and every ``heartbeat`` seconds;
- every command answered on ``ack``; a repeated ``idempotency_key`` gets the first answer
  again and is *not* acted on twice;
- ``play`` fetches the media by URL and checks its SHA-256 and size before playing; an item of
  equal or higher level preempts the current one, a lower one is rejected as ``busy``;
- proof of play (``started`` / ``finished`` / ``interrupted`` / ``failed``) on ``event``.

Faults: see :class:`~ttcs.simulators.base.Fault`; ``hang`` stops answering commands while
staying connected; ``playback_error`` makes items fail part-way (a ``failed`` play event);
``tamper`` raises a device alarm ``tamper`` (cleared with the fault). Readings put in
``telemetry`` (e.g. ``vswr``) are reported with the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import random
from collections import OrderedDict
from datetime import timedelta
from typing import Any

import aiohttp
import structlog
from pydantic import SecretStr, ValidationError

from ..adapters.mqtt import Message, MqttConnection, MqttEndpoint, Will
from ..core.config import DEFAULT_MQTT_PORT
from ..schemas import (
    Activity,
    AlarmEvent,
    AlarmSeverity,
    BulletinLevel,
    Capability,
    CommandResult,
    CommandStatus,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    PlayCommand,
    PlayEvent,
    PlayPhase,
    PowerSource,
    parse_command,
)
from ..schemas.errors import explain
from ..schemas.native import Birth, DeviceEvent, Presence, topic
from .base import Fault, Fleet, PlayRecord, Rejection, SimOptions, SimulatedDevice, SimulatorSpec
from .base import now as utcnow

log = structlog.get_logger("ttcs.sim.native")

CAPABILITIES = [Capability.AUDIO_PLAY, Capability.AUDIO_STREAM, Capability.AUDIO_VOLUME,
                Capability.AUDIO_TEST_TONE, Capability.POWER, Capability.REBOOT]


class NativeSpeaker(SimulatedDevice):
    def __init__(self, serial: str, broker_url: str, *, firmware: str = "1.4.2",
                 heartbeat: float = 60.0, model: str = "TTCS-SPK-30W",
                 mac: str | None = None, stream_seconds: float = 5.0,
                 clock_offset: float = 0.0) -> None:
        super().__init__(serial)
        self.broker_url = broker_url
        self.firmware = firmware
        self.model = model
        self.mac = mac
        self.heartbeat = heartbeat
        self.stream_seconds = stream_seconds
        self.clock_offset = timedelta(seconds=clock_offset)  # a device clock that is off
        self.volume = 60
        self.powered = True
        self.power_source = PowerSource.MAINS
        self.battery = 100
        self.signal = random.randint(-95, -60)
        self.temperature = 34.0
        self.telemetry: dict[str, float | int | str | bool] = {}  # extra readings to report
        self.current: PlayRecord | None = None
        self._current_level = BulletinLevel.NORMAL
        self._play_task: asyncio.Task[None] | None = None
        self._acks: OrderedDict[str, CommandResult] = OrderedDict()
        self._running: dict[str, asyncio.Future[None]] = {}
        self._conn: MqttConnection | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._password_override: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._conn is not None:
            return
        endpoint = MqttEndpoint.from_url(self.broker_url)
        if self._password_override is not None:
            endpoint = dataclasses.replace(endpoint, username=endpoint.username or self.serial,
                                           password=SecretStr(self._password_override))
        will = Will(topic(self.serial, "conn"),
                    Presence(online=False, reason="will").model_dump_json(), qos=1, retain=True)
        self._conn = MqttConnection(endpoint, client_id=f"dev-{self.serial}", will=will,
                                    keepalive=max(5, int(self.heartbeat)),
                                    on_connect=self._on_connect, backoff=(0.2, 5.0))
        await self._conn.subscribe(topic(self.serial, "cmd"), self._on_command)
        await self._conn.start()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())

    async def stop(self, *, clean: bool = True) -> None:
        """Disconnect; ``clean`` says goodbye (presence offline), otherwise the will fires."""
        if self._heartbeat_task:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        conn, self._conn = self._conn, None
        if conn is not None:
            if clean and conn.connected.is_set():
                with contextlib.suppress(Exception):
                    await conn.publish(topic(self.serial, "conn"), Presence(
                        online=False, at=utcnow(), reason="disconnect").model_dump_json(),
                        retain=True, timeout=2)
            elif not clean:
                conn.drop()
                await asyncio.sleep(0.05)
            await conn.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _on_connect(self) -> None:
        assert self._conn is not None
        info = DeviceInfo(serial=self.serial, mac=self.mac, vendor="TTCS reference",
                          model=self.model, firmware=self.firmware, kind=DeviceKind.IP_SPEAKER,
                          capabilities=CAPABILITIES)
        await self._publish("birth", Birth(info=info).model_dump_json(), retain=True)
        await self._publish("conn", Presence(online=True, at=utcnow(),
                                             reason="connect").model_dump_json(), retain=True)
        await self.publish_status()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if self.power_source is PowerSource.BATTERY:
                self.battery = max(0, self.battery - 1)
            with contextlib.suppress(Exception):
                await self.publish_status()

    # -- protocol -----------------------------------------------------------------------------

    def status(self) -> DeviceStatus:
        activity = (Activity.OFF if not self.powered else
                    Activity.PLAYING if self.current else Activity.IDLE)
        return DeviceStatus(
            activity=activity, volume=self.volume, power_source=self.power_source,
            battery=self.battery, signal=self.signal, temperature=self.temperature,
            firmware=self.firmware, current_item=self.current.content_id if self.current else None,
            faults=["on_battery"] if self.power_source is PowerSource.BATTERY else [],
            telemetry=dict(self.telemetry))

    async def publish_status(self) -> None:
        await self._publish("status", self.status().model_dump_json(), retain=True)

    async def _publish(self, leaf: str, payload: str, *, retain: bool = False) -> None:
        if self._conn is None or not self._conn.connected.is_set():
            return
        if self.has(Fault.GARBAGE) and leaf in ("status", "ack", "event"):
            payload = "\x00\xff{not json" + "#" * random.randint(0, 40)
        await self._conn.publish(topic(self.serial, leaf), payload, retain=retain, timeout=5)

    async def _on_command(self, message: Message) -> None:
        if self.has(Fault.HANG):
            return
        raw = message.payload
        try:
            command = parse_command(raw)
        except (ValidationError, ValueError) as exc:
            reason = explain(exc) if isinstance(exc, ValidationError) else str(exc)
            self.truth.rejections.append(Rejection(utcnow(), "unparseable", None, "bad_request",
                                                   reason))
            command_id = _peek_id(raw)
            if command_id:
                await self._ack(CommandResult(command_id=command_id,
                                              status=CommandStatus.REJECTED, code="bad_request",
                                              detail=reason[:2000]))
            return
        self.truth.commands.append({"at": utcnow(), "id": command.id, "type": command.type,
                                    "idempotency_key": command.idempotency_key})
        asyncio.create_task(self._handle(command))  # noqa: RUF006 - tracked by ack/ground truth

    async def _handle(self, command: Any) -> None:
        await self.slow_down()
        key = command.idempotency_key
        running = self._running.get(key)
        if running is not None:  # the same command is still being carried out: wait for it
            await asyncio.shield(running)
        first = self._acks.get(key)
        if first is not None:  # seen before: answer the same, do nothing again
            await self._ack(first.model_copy(update={"command_id": command.id}))
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            result = await self._execute(command)
            if result.status is not CommandStatus.FAILED:  # a failure may be retried
                self._acks[key] = result
        finally:
            del self._running[key]
            done.set_result(None)
        while len(self._acks) > 2000:
            self._acks.popitem(last=False)
        if result.status is CommandStatus.REJECTED:
            self.truth.rejections.append(Rejection(utcnow(), command.type, command.id,
                                                   result.code, result.detail or ""))
        await self._ack(result)

    async def _ack(self, result: CommandResult) -> None:
        await self._publish("ack", result.model_dump_json())

    async def _execute(self, command: Any) -> CommandResult:
        def done(code: str = "ok", **data: Any) -> CommandResult:
            return CommandResult(command_id=command.id, status=CommandStatus.DONE, code=code,
                                 data=data)

        def reject(code: str, detail: str) -> CommandResult:
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code=code, detail=detail)

        kind = command.type
        if kind == "power":
            self.powered = command.on
            if not command.on:
                await self._end_current("stopped")
            await self.publish_status()
            return done()
        if not self.powered:
            return reject("powered_off", "the speaker is switched off")
        if kind == "set_volume":
            self.volume = command.volume
            self.truth.volume_changes.append((utcnow(), command.volume))
            await self.publish_status()
            return done(volume=self.volume)
        if kind == "stop":
            if self.current and command.content_id not in (None, self.current.content_id):
                return done("not_playing")
            await self._end_current("stopped")
            return done()
        if kind == "play":
            return await self._start_play(command)
        if kind == "test_tone":
            record = PlayRecord(started_at=utcnow(), source=f"tone:{command.frequency}Hz",
                                volume=self.volume, level="normal")
            return await self._begin(record, BulletinLevel.NORMAL, command.seconds, None)
        if kind == "reboot":
            asyncio.create_task(self.on_fault(Fault.REBOOT, {}, active=True))  # noqa: RUF006
            return CommandResult(command_id=command.id, status=CommandStatus.ACCEPTED)
        return reject("unsupported", f"this speaker does not do '{kind}'")

    async def _start_play(self, command: PlayCommand) -> CommandResult:
        if self.current is not None and command.level.rank < self._current_level.rank:
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code="busy", detail=f"playing a {self._current_level.value} "
                                 "item; a lower level cannot interrupt it")
        if command.media is not None:
            error = await self._check_media(command)
            if error is not None:
                # Unreachable media may come back (retry); altered media never will.
                status = (CommandStatus.REJECTED if error[0] == "checksum_mismatch"
                          else CommandStatus.FAILED)
                return CommandResult(command_id=command.id, status=status,
                                     code=error[0], detail=error[1])
            seconds = command.media.duration if command.media.duration is not None else 1.0
            source = str(command.media.url)
        else:
            seconds, source = self.stream_seconds, str(command.stream_url)
        if command.volume is not None:
            self.volume = command.volume
            self.truth.volume_changes.append((utcnow(), command.volume))
        record = PlayRecord(started_at=utcnow(), content_id=command.content_id,
                            command_id=command.id, broadcast_id=command.broadcast_id,
                            level=command.level.value, volume=self.volume, source=source)
        return await self._begin(record, command.level, seconds * command.repeat, command.id)

    async def _check_media(self, command: PlayCommand) -> tuple[str, str] | None:
        assert command.media is not None
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._http.get(str(command.media.url)) as response:
                if response.status != 200:
                    return "media_unavailable", f"GET media answered {response.status}"
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return "media_unavailable", f"cannot fetch media: {exc!r}"
        digest = hashlib.sha256(body).hexdigest()
        if digest != command.media.sha256 or len(body) != command.media.size:
            return "checksum_mismatch", (f"media sha256 {digest[:12]}… / {len(body)} bytes do "
                                         "not match the command; refusing altered content")
        return None

    async def _begin(self, record: PlayRecord, level: BulletinLevel, seconds: float,
                     command_id: str | None) -> CommandResult:
        await self._end_current("interrupted")
        record.started_at = utcnow()  # after the interrupted item ended: never two at once
        self.current, self._current_level = record, level
        self.truth.plays.append(record)
        self._play_task = asyncio.create_task(self._playing(record, seconds))
        await self._event(PlayPhase.STARTED, record)
        await self.publish_status()
        return CommandResult(command_id=command_id or "tone", status=CommandStatus.ACCEPTED,
                             code="playing", data={"seconds": seconds})

    async def _playing(self, record: PlayRecord, seconds: float) -> None:
        if self.has(Fault.PLAYBACK_ERROR):
            await asyncio.sleep(min(seconds / 2, 0.1))
            if self.current is record:
                await self._finish(record, "failed")
            return
        await asyncio.sleep(seconds)
        if self.current is record:
            await self._finish(record, "finished")

    async def _end_current(self, outcome: str) -> None:
        record = self.current
        if record is None:
            return
        task, self._play_task = self._play_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        await self._finish(record, outcome)

    async def _finish(self, record: PlayRecord, outcome: str) -> None:
        record.ended_at, record.outcome = utcnow(), outcome
        if self.current is record:
            self.current = None
        phase = {"finished": PlayPhase.FINISHED, "failed": PlayPhase.FAILED}.get(
            outcome, PlayPhase.INTERRUPTED)
        with contextlib.suppress(Exception):
            await self._event(phase, record, detail=outcome)
            await self.publish_status()

    async def _event(self, phase: PlayPhase, record: PlayRecord, detail: str | None = None
                     ) -> None:
        at = record.ended_at if phase is not PlayPhase.STARTED else record.started_at
        event = PlayEvent(phase=phase, content_id=record.content_id,
                          command_id=record.command_id, broadcast_id=record.broadcast_id,
                          device_time=at + self.clock_offset if at else None, detail=detail)
        await self._publish("event", DeviceEvent(event=event, serial=self.serial)
                            .model_dump_json())

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            await (self.stop(clean=True) if active else self.start())
        elif fault is Fault.DROP_CONNECTION and active and self._conn is not None:
            self._conn.drop()  # MqttConnection reconnects by itself, as a real device would
        elif fault is Fault.POWER_LOSS:
            if active:
                if self.current is not None:
                    self.current.ended_at, self.current.outcome = utcnow(), "power_lost"
                    self.current = None
                await self.stop(clean=False)
            else:
                await self.start()
        elif fault is Fault.POWER_LOSS_BATTERY:
            self.power_source = PowerSource.BATTERY if active else PowerSource.MAINS
            await self.publish_status()
        elif fault is Fault.REBOOT and active:
            await self._end_current("interrupted")
            await self.stop(clean=False)
            await asyncio.sleep(float(params.get("seconds", 0.5)))
            self.firmware = str(params.get("firmware", self.firmware))
            await self.start()
        elif fault is Fault.WRONG_CREDENTIALS:
            await self.stop(clean=True)
            self._password_override = str(params.get("password", "wrong-password")) if (
                active) else None
            await self.start()
        elif fault is Fault.TAMPER:
            alarm = AlarmEvent(code="tamper", raised=active, severity=AlarmSeverity.MAJOR,
                               detail="cabinet opened" if active else "cabinet closed")
            await self._publish("event", DeviceEvent(event=alarm, serial=self.serial)
                                .model_dump_json())
        elif fault in (Fault.GARBAGE, Fault.SLOW, Fault.HANG, Fault.PLAYBACK_ERROR):
            return  # consulted where messages are sent/handled

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"volume": self.volume, "powered": self.powered, "firmware": self.firmware,
                "power_source": self.power_source.value, "battery": self.battery,
                "connected": bool(self._conn and self._conn.connected.is_set()),
                "playing": self.current.content_id or self.current.source
                if self.current else None,
                "level": self._current_level.value if self.current else None}

    def registration(self) -> dict[str, Any]:
        return {"plugin": "native", "kind": "ip_speaker", "config": {"serial": self.serial}}

    def connection_info(self) -> dict[str, Any]:
        endpoint = MqttEndpoint.from_url(self.broker_url)
        return {"protocol": "ttcs-native/1", "broker": endpoint.display, "serial": self.serial,
                "topics": topic(self.serial, "#"),
                "add": f"ttcs devices add --plugin native --kind ip_speaker --area AREA "
                       f"--config serial={self.serial}"}


def _peek_id(raw: bytes | bytearray) -> str | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None


async def build(options: SimOptions) -> Fleet:
    broker = options.broker or f"mqtt://{options.host}:{options.port or DEFAULT_MQTT_PORT}"
    prefix = options.serial_prefix or "SPK"
    heartbeat = float(options.extra.get("heartbeat", "60"))
    first = int(options.extra.get("first", "1"))
    devices: list[SimulatedDevice] = [
        NativeSpeaker(f"{prefix}-{n:04d}", broker, heartbeat=heartbeat,
                      firmware=options.extra.get("firmware", "1.4.2"),
                      mac=_mac(prefix, n))
        for n in range(first, first + options.count)]
    return Fleet(devices, info={"broker": MqttEndpoint.from_url(broker).display})


def _mac(prefix: str, n: int) -> str:
    digest = hashlib.sha256(f"{prefix}-{n}".encode()).digest()
    return ":".join(f"{b:02X}" for b in (b"\x02" + digest[:5]))


SPEC = SimulatorSpec(
    name="native", kinds=(DeviceKind.IP_SPEAKER.value,), protocol="mqtt (ttcs-native/1)",
    description="IP/4G speaker speaking the hub's native MQTT+JSON protocol",
    build=build)
