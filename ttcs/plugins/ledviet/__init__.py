"""The LEDViet plugin: LED and LCD boards the hub pushes to over REST/JSON with a bearer token.

Vendor API and mapping: ``docs/plugins/ledviet.md``; simulator:
:mod:`ttcs.simulators.ledviet_board` (``ttcs sim run ledviet``).
"""

from __future__ import annotations

from ... import __version__
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import IotClass, PluginManifest, Protocol
from .driver import LedVietBoardDriver, LedVietConfig

PLUGIN_ID = "ledviet"


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    return PluginManifest(
        id=PLUGIN_ID, name="LEDViet LED/LCD boards", vendor="LEDViet",
        version=__version__, sdk=">=1.0,<2",
        device_kinds=sorted(LedVietBoardDriver.kinds),
        capabilities=sorted(LedVietBoardDriver.capabilities),
        protocols=[Protocol.HTTP], iot_class=IotClass.POLL,
        config_schema=LedVietConfig.model_json_schema(),
        description="Public LED/LCD boards with the LEDViet REST API v2: assets by SHA-256, "
                    "playlist with durations and validity, brightness, power schedule, "
                    "screenshot",
    )


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(LedVietBoardDriver)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators.ledviet_board import SPEC

    registrar.add(SPEC)


__all__ = ["PLUGIN_ID", "LedVietBoardDriver", "LedVietConfig"]
