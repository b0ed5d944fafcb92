"""The Sao Khuê Radio plugin: 4G loudspeaker stations speaking the vendor's MQTT protocol.

The stations keep their own schedule (pushed by the hub, played by the station's clock, even
while the 4G link is down), play and stop in real time, and report what they played and what
they missed. Wire protocol: :mod:`.protocol`; mapping and limits: ``docs/plugins/saokhue.md``;
simulator: :mod:`ttcs.simulators.saokhue_station` (``ttcs sim run saokhue``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import __version__
from ...adapters.pool import Transports
from ...core.config import Settings
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import DeviceInfo, DeviceKind, IotClass, PluginManifest, Protocol
from .driver import CAPABILITY_OF_WORD, VENDOR, SaoKhueStationDriver, StationConfig, station_bus
from .protocol import Info

PLUGIN_ID = "saokhue"


class StationDiscovery:
    """Reports stations on the hub's broker that announce themselves but are not registered."""

    def __init__(self, settings: Settings, transports: Transports,
                 found: Callable[[str, DeviceInfo, dict[str, Any]], None]) -> None:
        self._settings = settings
        self._transports = transports
        self._found = found

    async def start(self) -> None:
        bus = await station_bus(self._transports, self._settings.mqtt_url)
        bus.unknown_info.append(self._on_info)
        for chan in bus.channels.values():
            if chan.info is not None and not chan.listeners:
                self._on_info(chan.info)

    def _on_info(self, info: Info) -> None:
        caps = sorted(CAPABILITY_OF_WORD[w] for w in info.cap if w in CAPABILITY_OF_WORD)
        self._found(PLUGIN_ID, DeviceInfo(serial=info.sn, mac=info.mac, vendor=VENDOR,
                                          model=info.model, firmware=info.fw,
                                          kind=DeviceKind.IP_SPEAKER, capabilities=caps),
                    {"serial": info.sn})

    async def stop(self) -> None:
        bus = await station_bus(self._transports, self._settings.mqtt_url)
        if self._on_info in bus.unknown_info:
            bus.unknown_info.remove(self._on_info)


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    return PluginManifest(
        id=PLUGIN_ID, name="Sao Khuê Radio 4G stations", vendor=VENDOR,
        version=__version__, sdk=">=1.0,<2",
        device_kinds=sorted(SaoKhueStationDriver.kinds),
        capabilities=sorted(SaoKhueStationDriver.capabilities),
        protocols=[Protocol.MQTT], iot_class=IotClass.PUSH,
        config_schema=StationConfig.model_json_schema(),
        description="4G loudspeaker stations with the SKR MQTT v2 protocol: device-side "
                    "schedules (dates, weekdays, times, repeats), real-time play and stop, "
                    "proof of play and missed-slot reports, 60 s heartbeat, TLS + login, "
                    "media by URL checked by SHA-256",
    )


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(SaoKhueStationDriver)
    registrar.add_discovery(StationDiscovery)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators.saokhue_station import SPEC

    registrar.add(SPEC)


__all__ = ["PLUGIN_ID", "SaoKhueStationDriver", "StationConfig"]
