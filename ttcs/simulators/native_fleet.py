"""Many native speakers multiplexed over a few MQTT connections, for load tests.

One connection per ``per_connection`` devices subscribes to their ``cmd`` topics with a
wildcard and answers for each device exactly as a :class:`NativeSpeaker` would at the protocol
level (birth, presence, status, ack per command, proof of play, idempotency by key), without a
task or a socket per device. What it leaves out, on purpose, so that the machine and not the
simulator is what a benchmark measures: a last will per device (one will per connection
cannot name many devices), media download (each distinct media URL is fetched and checked
once and the result shared), and real playback timing (``finished`` follows ``started`` after
the media duration, with one timer wheel for all devices).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..adapters.mqtt import Message, MqttConnection, MqttEndpoint
from ..core.config import DEFAULT_MQTT_PORT
from ..schemas import (
    Activity,
    CommandResult,
    CommandStatus,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    PlayEvent,
    PlayPhase,
    parse_command,
)
from ..schemas.native import Birth, DeviceEvent, Presence, topic
from .base import Fleet, SimOptions, SimulatedDevice, SimulatorSpec, now
from .native_speaker import CAPABILITIES


@dataclass
class LightDevice:
    serial: str
    volume: int = 60
    acks: OrderedDict[str, CommandResult] = field(default_factory=OrderedDict)
    played: list[tuple[str | None, float]] = field(default_factory=list)  # (content, t)
    received: list[float] = field(default_factory=list)  # monotonic receive time per command


class FleetConnection(SimulatedDevice):
    """One MQTT connection serving many light devices (a SimulatedDevice for the fleet API)."""

    def __init__(self, name: str, serials: list[str], broker_url: str, *,
                 heartbeat: float = 60.0) -> None:
        super().__init__(name)
        self.devices = {s: LightDevice(s) for s in serials}
        self.broker_url = broker_url
        self.heartbeat = heartbeat
        self._conn: MqttConnection | None = None
        self._media_ok: dict[tuple[str, str], bool] = {}
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._conn = MqttConnection(MqttEndpoint.from_url(self.broker_url),
                                    client_id=f"fleet-{self.serial}", keepalive=60,
                                    on_connect=self._announce, max_inflight_messages=1000)
        await self._conn.subscribe("ttcs/v1/dev/+/cmd", self._on_command)
        await self._conn.start(wait=10)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._conn is not None:
            await self._conn.stop()
        if self._http is not None:
            await self._http.close()

    async def _announce(self) -> None:
        assert self._conn is not None
        publishes = []
        for serial in self.devices:
            info = DeviceInfo(serial=serial, vendor="TTCS reference", model="TTCS-SPK-LOAD",
                              firmware="1.4.2", kind=DeviceKind.IP_SPEAKER,
                              capabilities=CAPABILITIES)
            publishes += [
                self._conn.publish(topic(serial, "birth"), Birth(info=info).model_dump_json(),
                                   retain=True, timeout=60),
                self._conn.publish(topic(serial, "conn"), Presence(online=True)
                                   .model_dump_json(), retain=True, timeout=60),
                self._conn.publish(topic(serial, "status"), self._status(serial)
                                   .model_dump_json(), retain=True, timeout=60)]
        for chunk in range(0, len(publishes), 500):
            await asyncio.gather(*publishes[chunk:chunk + 500])

    def _status(self, serial: str) -> DeviceStatus:
        return DeviceStatus(activity=Activity.IDLE, volume=self.devices[serial].volume,
                            firmware="1.4.2")

    async def _on_command(self, message: Message) -> None:
        serial = message.topic.split("/")[3]
        device = self.devices.get(serial)
        if device is None:
            return
        device.received.append(time.monotonic())
        task = asyncio.create_task(self._handle(device, bytes(message.payload)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, device: LightDevice, raw: bytes) -> None:
        assert self._conn is not None
        command = parse_command(raw)
        first = device.acks.get(command.idempotency_key)
        if first is not None:
            result = first.model_copy(update={"command_id": command.id})
        else:
            result = await self._execute(device, command)
            device.acks[command.idempotency_key] = result
            if len(device.acks) > 200:
                device.acks.popitem(last=False)
        await self._conn.publish(topic(device.serial, "ack"), result.model_dump_json(),
                                 timeout=60)

    async def _execute(self, device: LightDevice, command: Any) -> CommandResult:
        if command.type == "set_volume":
            device.volume = command.volume
            return CommandResult(command_id=command.id, status=CommandStatus.DONE)
        if command.type == "play":
            if command.media is not None and not await self._media_valid(command.media):
                return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                     code="checksum_mismatch")
            device.played.append((command.content_id, time.monotonic()))
            await self._event(device, PlayPhase.STARTED, command)
            return CommandResult(command_id=command.id, status=CommandStatus.ACCEPTED,
                                 code="playing")
        return CommandResult(command_id=command.id, status=CommandStatus.DONE)

    async def _media_valid(self, media: Any) -> bool:
        key = (str(media.url), media.sha256)
        if key not in self._media_ok:
            if self._http is None:
                self._http = aiohttp.ClientSession()
            try:
                async with self._http.get(str(media.url)) as response:
                    body = await response.read()
                self._media_ok[key] = (hashlib.sha256(body).hexdigest() == media.sha256
                                       and len(body) == media.size)
            except aiohttp.ClientError:
                return False
        return self._media_ok[key]

    async def _event(self, device: LightDevice, phase: PlayPhase, command: Any) -> None:
        assert self._conn is not None
        event = PlayEvent(phase=phase, content_id=command.content_id, command_id=command.id,
                          broadcast_id=command.broadcast_id, device_time=now())
        await self._conn.publish(topic(device.serial, "event"), DeviceEvent(
            event=event, serial=device.serial).model_dump_json(), timeout=60)

    def state(self) -> dict[str, Any]:
        return {"devices": len(self.devices),
                "commands": sum(len(d.received) for d in self.devices.values()),
                "plays": sum(len(d.played) for d in self.devices.values())}

    def connection_info(self) -> dict[str, Any]:
        return {"protocol": "ttcs-native/1", "broker": MqttEndpoint.from_url(
            self.broker_url).display, "devices": len(self.devices)}


async def build(options: SimOptions) -> Fleet:
    broker = options.broker or f"mqtt://{options.host}:{options.port or DEFAULT_MQTT_PORT}"
    prefix = options.serial_prefix or "LOAD"
    per = int(options.extra.get("per_connection", "2000"))
    serials = [f"{prefix}-{n:06d}" for n in range(1, options.count + 1)]
    connections: list[SimulatedDevice] = [
        FleetConnection(f"{prefix}-conn{i // per}", serials[i:i + per], broker)
        for i in range(0, len(serials), per)]
    return Fleet(connections, info={"broker": MqttEndpoint.from_url(broker).display,
                                    "devices": len(serials)})


SPEC = SimulatorSpec(
    name="native-fleet", kinds=(DeviceKind.IP_SPEAKER.value,),
    protocol="mqtt (ttcs-native/1), multiplexed",
    description="thousands of native speakers over a few MQTT connections (load tests)",
    build=build)
