"""A started hub with native speaker simulators registered in it, over a real broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.conftest import SAMPLE_AREAS
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.monitor import Monitor
from ttcs.schemas import (
    AlarmEvent,
    CommandResult,
    Connectivity,
    Device,
    DeviceSpec,
    Event,
    PlayCommand,
)
from ttcs.simulators.native_speaker import NativeSpeaker


@dataclass
class SpeakerRig:
    hub: Hub
    broker_url: str
    speakers: dict[str, NativeSpeaker] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, broker_url: str) -> SpeakerRig:
        hub = Hub(settings.model_copy(update={"mqtt_url": broker_url}))
        rig = cls(hub, broker_url)
        hub.bus.subscribe(rig.events.append)
        await hub.start()
        await hub.registry.import_areas(SAMPLE_AREAS, "test")
        return rig

    @property
    def monitor(self) -> Monitor:
        assert self.hub.monitor is not None
        return self.hub.monitor

    async def add(self, serial: str, area: str = "19900", village: str | None = None,
                  **speaker: Any) -> tuple[NativeSpeaker, Device]:
        """Start a simulated speaker, register it and wait until the hub sees it online."""
        speaker.setdefault("heartbeat", 30)
        speaker.setdefault("stream_seconds", 0.2)
        sim = NativeSpeaker(serial, self.broker_url, **speaker)
        await sim.start()
        self.speakers[serial] = sim
        device = await self.hub.registry.add_device(DeviceSpec(
            plugin="native", kind="ip_speaker", area_code=area, village_code=village,
            config={"serial": serial}), "test")
        await self.hub.supervise(device)
        await eventually(lambda: self.hub.supervisors[device.id].connectivity
                         is Connectivity.ONLINE)
        return sim, device

    async def play(self, device_id: str, broadcast_id: str = "bc-1",
                   content_id: str = "ct-1") -> CommandResult:
        return await self.hub.execute(device_id, PlayCommand(
            stream_url="http://media.example/live", broadcast_id=broadcast_id,
            content_id=content_id))

    def alarms(self, code: str | None = None) -> list[tuple[str, str | None, bool]]:
        """(code, device, raised) of every alarm event seen on the bus, in order."""
        return [(e.code, e.device_id, e.raised) for e in self.events
                if isinstance(e, AlarmEvent) and (code is None or e.code == code)]

    async def stop(self) -> None:
        await self.hub.stop()
        for sim in self.speakers.values():
            await sim.stop()
