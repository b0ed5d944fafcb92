"""The pull-board plugin: HaLong LED/LCD boards behind 4G NAT that poll the hub.

The hub serves the boards on its device endpoint (:mod:`ttcs.adapters.device_endpoint`);
protocol in :mod:`.protocol`, hub side in :mod:`.service`, driver in :mod:`.driver`, docs in
``docs/plugins/pullboard.md``; simulator: :mod:`ttcs.simulators.pull_board`
(``ttcs sim run pullboard``).
"""

from __future__ import annotations

from ... import __version__
from ...core.hookspecs import hookimpl
from ...core.registrars import DriverRegistrar, SimulatorRegistrar
from ...schemas import IotClass, PluginManifest, Protocol
from .driver import PullBoardConfig, PullBoardDriver

PLUGIN_ID = "pullboard"


@hookimpl
def ttcs_plugin_manifest() -> PluginManifest:
    return PluginManifest(
        id=PLUGIN_ID, name="HaLong pull boards (4G, behind NAT)", vendor="HaLong Signage",
        version=__version__, sdk=">=1.0,<2",
        device_kinds=sorted(PullBoardDriver.kinds),
        capabilities=sorted(PullBoardDriver.capabilities),
        protocols=[Protocol.HTTP], iot_class=IotClass.DEVICE_PULL,
        config_schema=PullBoardConfig.model_json_schema(),
        description="Boards that connect out to the hub's device endpoint and poll it for "
                    "their playlist and commands, with heartbeats",
    )


@hookimpl
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    registrar.add_driver(PullBoardDriver)


@hookimpl
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    from ...simulators.pull_board import SPEC

    registrar.add(SPEC)


__all__ = ["PLUGIN_ID", "PullBoardConfig", "PullBoardDriver"]
