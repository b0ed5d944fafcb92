"""The RadiVina plugin: FM stations — an RV-FMT30 transmitter on SNMP (RADIVINA-FM-MIB), the
receiver clusters it switches by in-band codes, and the VietCast decoder that feeds it.

Mapping and MIB: ``docs/plugins/radivina.md``, ``docs/spec/RADIVINA-FM-MIB.mib``; simulator:
:mod:`ttcs.simulators.radivina_transmitter` (``ttcs sim run radivina``).
"""

from __future__ import annotations

from pydantic import TypeAdapter

from ... import __version__
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import IotClass, PluginManifest, Protocol
from .config import ReceiverConfig, TransmitterConfig
from .receiver import RadiVinaReceiverDriver
from .transmitter import RadiVinaTransmitterDriver

PLUGIN_ID = "radivina"


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    drivers = (RadiVinaTransmitterDriver, RadiVinaReceiverDriver)
    return PluginManifest(
        id=PLUGIN_ID, name="RadiVina FM stations", vendor="RadiVina", version=__version__,
        sdk=">=1.0,<2", device_kinds=sorted({k for d in drivers for k in d.kinds}),
        capabilities=sorted({c for d in drivers for c in d.capabilities}),
        protocols=[Protocol.SNMP, Protocol.HTTP], iot_class=IotClass.POLL,
        # one schema for both kinds: a transmitter's config, or a receiver cluster's
        config_schema=TypeAdapter(TransmitterConfig | ReceiverConfig).json_schema(),
        description="54-68 MHz FM transmitters (<= 30 W) with an SNMP v2c/v3 agent "
                    "(RADIVINA-FM-MIB): RF, tuning, telemetry, RDS, alarms; receiver "
                    "clusters switched by in-band codes; audio from a VietCast IP decoder")


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(RadiVinaTransmitterDriver)
    registrar.add_driver(RadiVinaReceiverDriver)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators.radivina_transmitter import SPEC

    registrar.add(SPEC)


__all__ = ["PLUGIN_ID", "RadiVinaReceiverDriver", "RadiVinaTransmitterDriver",
           "ReceiverConfig", "TransmitterConfig"]
