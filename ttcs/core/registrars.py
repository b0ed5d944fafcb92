"""Objects handed to plugins' registration hooks; they collect what a plugin provides."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from .driver import DeviceDriver
from .errors import PluginRefused

if TYPE_CHECKING:
    from ..simulators.base import SimulatorSpec
    from .content.tts import TtsEngine


class DiscoveryService(Protocol):
    """Finds devices that announce themselves (native birth messages, mDNS, ...).

    Created by the hub with ``(settings, transports, found)``; it calls
    ``found(plugin_id, info, config)`` for each device it sees (``config``: the plugin config
    that reaches it, without secrets) and the hub records it as *discovered*, never adopting
    it on its own.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class DriverRegistrar:
    """Passed to ``ttcs_register_drivers``; collects one plugin's driver classes."""

    plugin_id: str
    drivers: list[type[DeviceDriver]] = field(default_factory=list)
    discoveries: list[type[Any]] = field(default_factory=list)

    def add_driver(self, driver_class: type[DeviceDriver]) -> None:
        if not (inspect.isclass(driver_class) and issubclass(driver_class, DeviceDriver)):
            raise PluginRefused(f"{driver_class!r} is not a DeviceDriver subclass")
        if inspect.isabstract(driver_class):
            missing = ", ".join(sorted(getattr(driver_class, "__abstractmethods__", ())))
            raise PluginRefused(f"driver {driver_class.__name__} does not implement: {missing}")
        if not driver_class.kinds:
            raise PluginRefused(f"driver {driver_class.__name__} declares no device kinds")
        if not (inspect.isclass(driver_class.config_model)
                and issubclass(driver_class.config_model, BaseModel)):
            raise PluginRefused(f"driver {driver_class.__name__}.config_model is not a "
                                "pydantic model")
        self.drivers.append(driver_class)

    def add_discovery(self, service_class: type[Any]) -> None:
        for method in ("start", "stop"):
            if not inspect.iscoroutinefunction(getattr(service_class, method, None)):
                raise PluginRefused(f"discovery {service_class!r} needs an async {method}()")
        self.discoveries.append(service_class)


@dataclass
class SimulatorRegistrar:
    """Passed to ``ttcs_register_simulators``; collects simulator specs."""

    plugin_id: str
    simulators: list[SimulatorSpec] = field(default_factory=list)

    def add(self, spec: SimulatorSpec) -> None:
        self.simulators.append(spec)


@dataclass
class TtsRegistrar:
    """Passed to ``ttcs_register_tts``; collects text-to-speech engines."""

    plugin_id: str
    engines: list[TtsEngine] = field(default_factory=list)

    def add_engine(self, engine: TtsEngine) -> None:
        name = getattr(engine, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginRefused(f"TTS engine {engine!r} has no name")
        if not inspect.iscoroutinefunction(getattr(engine, "synthesize", None)):
            raise PluginRefused(f"TTS engine '{name}' needs an async synthesize(text, voice)")
        voices = getattr(engine, "voices", None)
        if not voices or not all(getattr(v, "name", None) and getattr(v, "language", None)
                                 for v in voices):
            raise PluginRefused(f"TTS engine '{name}' lists no voices (each with a name and "
                                "a language)")
        if any(e.name == name for e in self.engines):
            raise PluginRefused(f"TTS engine '{name}' registered twice")
        self.engines.append(engine)
