"""The VangTech plugin: IP/4G loudspeakers the hub calls over REST/JSON, every request signed
with HMAC (shared secret, timestamp, nonce), status polled.

Vendor API and mapping: ``docs/plugins/vang.md``; simulator:
:mod:`ttcs.simulators.vang_speaker` (``ttcs sim run vang``).
"""

from __future__ import annotations

from ... import __version__
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import IotClass, PluginManifest, Protocol
from .driver import VangConfig, VangSpeakerDriver

PLUGIN_ID = "vang"


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    return PluginManifest(
        id=PLUGIN_ID, name="VangTech IP/4G speakers", vendor="VangTech",
        version=__version__, sdk=">=1.0,<2",
        device_kinds=sorted(VangSpeakerDriver.kinds),
        capabilities=sorted(VangSpeakerDriver.capabilities),
        protocols=[Protocol.HTTP], iot_class=IotClass.POLL,
        config_schema=VangConfig.model_json_schema(),
        description="IP/4G loudspeakers with the VangTech REST API v1: HMAC-signed requests "
                    "(replay-proof), play by URL with repeat and priority, volume, stop, test "
                    "tone, polled status and play log",
    )


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(VangSpeakerDriver)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators.vang_speaker import SPEC

    registrar.add(SPEC)


__all__ = ["PLUGIN_ID", "VangConfig", "VangSpeakerDriver"]
