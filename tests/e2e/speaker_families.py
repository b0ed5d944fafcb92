"""The IP speaker families the hub drives, behind one small interface for a shared suite.

``test_ip_speaker_families.py`` runs the same behavioural tests over every family listed in
:data:`FAMILIES`: what "play, volume, stop, status, offline detection" means must not depend
on the vendor. A family knows how to start one simulated device of its kind on a real socket
and which :class:`DeviceSpec` registers it; everything else goes through the hub.

To add a family: subclass :class:`SpeakerFamily`, implement :meth:`device` (and
:meth:`setup`/:meth:`teardown` if it needs a broker or a server of its own), and add it to
:data:`FAMILIES`.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from ttcs.core.config import Settings
from ttcs.schemas import DeviceSpec
from ttcs.simulators.base import Fault, SimulatedDevice
from ttcs.simulators.native_speaker import NativeSpeaker
from ttcs.simulators.saokhue_station import SaoKhueStation
from ttcs.simulators.vang_speaker import VangSpeaker


class SpeakerFamily(abc.ABC):
    """One IP speaker family: its plugin, its simulator, and how to wire them together."""

    #: the id the parametrised tests show
    name: ClassVar[str]
    #: the fault that makes the device vanish abruptly (the hub must see it offline)
    vanish: ClassVar[Fault] = Fault.POWER_LOSS

    def __init__(self, broker_url: str) -> None:
        #: a real broker (amqtt or Mosquitto), for families that speak MQTT
        self.broker_url = broker_url
        self.sims: list[SimulatedDevice] = []

    def hub_settings(self, settings: Settings) -> Settings:
        """The hub settings this family needs (the native family needs the broker URL)."""
        return settings.model_copy(update={"mqtt_url": self.broker_url})

    async def setup(self) -> None:  # noqa: B027 - optional
        """Start what the family's devices need besides themselves."""

    @abc.abstractmethod
    async def device(self, serial: str, *, play_seconds: float) -> tuple[SimulatedDevice,
                                                                           DeviceSpec]:
        """Start one simulated device (a stream it plays lasts ``play_seconds``) and return it
        with the spec that registers it in area ``19900``."""

    def volume(self, sim: SimulatedDevice) -> int:
        """The volume the simulated device really has now."""
        return int(sim.state()["volume"])

    async def teardown(self) -> None:
        for sim in self.sims:
            await sim.stop()


class NativeFamily(SpeakerFamily):
    name = "native"

    async def device(self, serial: str, *, play_seconds: float) -> tuple[SimulatedDevice,
                                                                           DeviceSpec]:
        sim = NativeSpeaker(serial, self.broker_url, heartbeat=30, stream_seconds=play_seconds)
        await sim.start()
        self.sims.append(sim)
        return sim, DeviceSpec(plugin="native", kind="ip_speaker", area_code="19900",
                               config={"serial": serial})


class SaoKhueFamily(SpeakerFamily):
    """Sao Khuê Radio stations: the vendor's own topics and payloads on the same broker."""

    name = "saokhue"

    async def device(self, serial: str, *, play_seconds: float) -> tuple[SimulatedDevice,
                                                                           DeviceSpec]:
        sim = SaoKhueStation(serial, self.broker_url, heartbeat=30, stream_seconds=play_seconds)
        await sim.start()
        self.sims.append(sim)
        return sim, DeviceSpec(plugin="saokhue", kind="ip_speaker", area_code="19900",
                               config={"serial": serial, "heartbeat": 30})


class VangFamily(SpeakerFamily):
    """VangTech speakers: signed REST/JSON, polled (quickly here, so offline shows soon)."""

    name = "vang"
    poll_interval = 0.3

    async def device(self, serial: str, *, play_seconds: float) -> tuple[SimulatedDevice,
                                                                           DeviceSpec]:
        sim = VangSpeaker(serial, secret=f"secret-{serial}", stream_seconds=play_seconds)
        await sim.start()
        self.sims.append(sim)
        registration = sim.registration()
        return sim, DeviceSpec(plugin=registration["plugin"], kind=registration["kind"],
                               area_code="19900", config={
                                   **registration["config"], "timeout": 2.0,
                                   "poll_interval": self.poll_interval})


FAMILIES: dict[str, type[SpeakerFamily]] = {
    NativeFamily.name: NativeFamily,
    SaoKhueFamily.name: SaoKhueFamily,
    VangFamily.name: VangFamily,
}


def stream_play(**fields: Any) -> dict[str, Any]:
    """A play command for a live stream, as the shared tests send it."""
    return {"type": "play", "stream_url": "http://127.0.0.1:9/live.mp3", **fields}
