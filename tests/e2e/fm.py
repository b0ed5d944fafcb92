"""Helpers shared by the FM station tests: a RadiVina station (transmitter + decoder) and a
hub with it registered, receiver clusters as children."""

from __future__ import annotations

import asyncio
import glob
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import SAMPLE_AREAS
from tests.support.wait import eventually
from ttcs.core.config import AlarmSettings, Settings
from ttcs.core.hub import Hub
from ttcs.schemas import AlarmEvent, Connectivity, Device, DeviceSpec, Event, PlayEvent
from ttcs.simulators.audio_decoder import AudioDecoder
from ttcs.simulators.radivina_transmitter import RadiVinaTransmitter

DECODER_KEY = "vc-fm-key"
MIB_DIR = Path(__file__).resolve().parents[2] / "docs" / "spec"


def base_mib_dirs() -> list[str]:
    """Directories holding SNMPv2-SMI/TC/CONF as text. Debian's net-snmp ships without the
    IETF modules; the erlang-snmp package carries them (scripts/ensure-system.sh)."""
    return sorted(glob.glob("/usr/lib/erlang/lib/snmp-*/mibs"))[-1:] + [
        d for d in ("/usr/share/snmp/mibs/ietf", "/var/lib/mibs/ietf")
        if Path(d, "SNMPv2-SMI").exists() or Path(d, "SNMPv2-SMI.txt").exists()]


def net_snmp_ready() -> bool:
    return bool(shutil.which("snmpget") and base_mib_dirs())


def mib_args() -> list[str]:
    """net-snmp options that load RADIVINA-FM-MIB (and only what it imports)."""
    return ["-M", "+" + ":".join([*base_mib_dirs(), str(MIB_DIR)]), "-m", "RADIVINA-FM-MIB"]


async def run_tool(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


def fm_settings(settings: Settings, amqtt_url: str) -> Settings:
    """Quick alarms (no debounce) and a short command timeout, for tests."""
    return settings.model_copy(update={
        "mqtt_url": amqtt_url, "command_timeout": 3.0,
        "alarms": AlarmSettings(debounce=0, check_interval=0.05)})


@dataclass
class Station:
    """A simulated FM station: the transmitter and the decoder wired into it."""

    transmitter: RadiVinaTransmitter
    decoder: AudioDecoder

    @classmethod
    async def start(cls, serial: str = "RV-0001", **transmitter: Any) -> Station:
        decoder = AudioDecoder(f"{serial}-DEC", api_key=DECODER_KEY)
        await decoder.start()
        transmitter.setdefault("thermal_tau", 0)  # readings at their equilibrium at once
        tx = RadiVinaTransmitter(serial, decoder=decoder, **transmitter)
        await tx.start()
        return cls(tx, decoder)

    async def stop(self) -> None:
        await self.transmitter.stop()
        await self.decoder.stop()

    def config(self, **overrides: Any) -> dict[str, Any]:
        config = dict(self.transmitter.registration()["config"])
        config.update(timeout=0.3, retries=1, poll_interval=0.2, decoder_timeout=1.0)
        config.update(overrides)
        return config

    def v3_config(self, user: str = "ttcs", **overrides: Any) -> dict[str, Any]:
        account = next(u for u in self.transmitter.credentials.users if u.name == user)
        config = self.config(snmp_version="3", user=user, auth_protocol="sha",
                             auth_key=account.auth_key, priv_protocol="aes",
                             priv_key=account.priv_key)
        for key in ("community", "write_community"):
            config.pop(key)
        config.update(overrides)
        return config


@dataclass
class FmRig:
    hub: Hub
    station: Station
    transmitter: Device
    receivers: list[Device] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, station: Station, *, receivers: int = 2,
                    receiver_poll: float = 0.2, **config: Any) -> FmRig:
        hub = Hub(settings)
        events: list[Event] = []
        hub.bus.subscribe(events.append)
        await hub.start()
        await hub.registry.import_areas(SAMPLE_AREAS, "test")
        tx = await hub.registry.add_device(DeviceSpec(
            plugin="radivina", kind="fm_transmitter", area_code="20101",
            config=station.config(**config)), "test")
        await hub.supervise(tx)
        rig = cls(hub, station, tx, events=events)
        for zone in range(1, receivers + 1):
            rx = await hub.registry.add_device(DeviceSpec(
                plugin="radivina", kind="fm_receiver", area_code="20101", parent_id=tx.id,
                config={"zone": zone, "poll_interval": receiver_poll}), "test")
            await hub.supervise(rx)
            rig.receivers.append(rx)
        # a receiver polled rarely is first polled somewhere within its interval
        waited = [tx, *(rig.receivers if receiver_poll < 5 else [])]
        await eventually(lambda: all(rig.connectivity(d) is Connectivity.ONLINE
                                     for d in waited), timeout=10)
        return rig

    def connectivity(self, device: Device) -> Connectivity:
        return self.hub.supervisors[device.id].connectivity

    def alarms(self, code: str) -> list[tuple[str | None, bool]]:
        return [(e.device_id, e.raised) for e in self.events
                if isinstance(e, AlarmEvent) and e.code == code]

    def plays(self, device: Device) -> list[tuple[str, str | None]]:
        return [(e.phase.value, e.content_id) for e in self.events
                if isinstance(e, PlayEvent) and e.device_id == device.id]

    async def stop(self) -> None:
        await self.hub.stop()
