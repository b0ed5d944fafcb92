"""The ZoneTech plugin: wired stations (hữu tuyến) — a ZA zone controller on Modbus TCP whose
loudspeaker lines are child devices, fed by a VietCast audio decoder on HTTP.

Register map, decoder API and mapping: ``docs/plugins/zonetech.md``; simulator:
:mod:`ttcs.simulators.zonetech_controller` (``ttcs sim run zonetech``).
"""

from __future__ import annotations

from ... import __version__
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import IotClass, PluginManifest, Protocol
from .controller import ZoneControllerDriver, ZoneTechConfig
from .zone import WiredZoneDriver, ZoneConfig

PLUGIN_ID = "zonetech"


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    return PluginManifest(
        id=PLUGIN_ID, name="ZoneTech wired stations", vendor="ZoneTech",
        version=__version__, sdk=">=1.0,<2",
        device_kinds=sorted(ZoneControllerDriver.kinds | WiredZoneDriver.kinds),
        capabilities=sorted(ZoneControllerDriver.capabilities | WiredZoneDriver.capabilities),
        protocols=[Protocol.MODBUS_TCP, Protocol.HTTP], iot_class=IotClass.POLL,
        config_schema={"title": "ZoneTech device config",
                       "description": "a wired_zone_controller takes the first, each of its "
                                      "wired_zone lines the second",
                       "oneOf": [ZoneTechConfig.model_json_schema(),
                                 ZoneConfig.model_json_schema()]},
        description="ZoneTech ZA zone controllers (line relays, volumes and amplifier "
                    "telemetry on Modbus TCP) with a VietCast IP audio decoder; each "
                    "loudspeaker line is a child device",
    )


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(ZoneControllerDriver)
    registrar.add_driver(WiredZoneDriver)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators.zonetech_controller import SPEC

    registrar.add(SPEC)


__all__ = ["PLUGIN_ID", "WiredZoneDriver", "ZoneConfig", "ZoneControllerDriver",
           "ZoneTechConfig"]
