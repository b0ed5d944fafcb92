"""The native plugin: devices that speak the hub's own open protocol need no vendor plugin.

Protocol: :mod:`ttcs.schemas.native` (MQTT + JSON; AsyncAPI in ``docs/spec/``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import __version__
from ...adapters.pool import Transports
from ...core.config import Settings
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import DeviceInfo, IotClass, PluginManifest, Protocol
from ...schemas.native import Birth
from .driver import NativeConfig, NativeSpeakerDriver, native_bus

PLUGIN_ID = "native"


class NativeDiscovery:
    """Reports native devices that publish a birth message but are not registered."""

    def __init__(self, settings: Settings, transports: Transports,
                 found: Callable[[str, DeviceInfo, dict[str, Any]], None]) -> None:
        self._transports = transports
        self._found = found

    async def start(self) -> None:
        bus = await native_bus(self._transports, None)
        bus.unknown_birth.append(self._on_birth)
        for chan in bus.channels.values():
            if chan.birth is not None and not chan.listeners:
                self._on_birth(chan.birth)

    def _on_birth(self, birth: Birth) -> None:
        self._found(PLUGIN_ID, birth.info, {"serial": birth.info.serial})

    async def stop(self) -> None:
        bus = await native_bus(self._transports, None)
        if self._on_birth in bus.unknown_birth:
            bus.unknown_birth.remove(self._on_birth)


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    return PluginManifest(
        id=PLUGIN_ID, name="TTCS native device protocol", vendor="TTCS Hub",
        version=__version__, sdk=">=1.0,<2",
        device_kinds=sorted(NativeSpeakerDriver.kinds),
        capabilities=sorted(NativeSpeakerDriver.capabilities),
        protocols=[Protocol.MQTT], iot_class=IotClass.PUSH,
        config_schema=NativeConfig.model_json_schema(),
        description="IP/4G speakers speaking MQTT + JSON as described in docs/spec/",
    )


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(NativeSpeakerDriver)
    registrar.add_discovery(NativeDiscovery)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators import native_fleet, native_speaker

    registrar.add(native_speaker.SPEC)
    registrar.add(native_fleet.SPEC)
