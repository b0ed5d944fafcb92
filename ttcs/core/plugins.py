"""Plugin loading: entry points → validated manifests → registered driver classes.

One broken plugin never stops the hub: everything that can go wrong while loading one
(import error, exception in a hook, invalid manifest, SDK mismatch, duplicate id, drivers that
contradict the manifest) marks that plugin *refused* with a one-line reason.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pluggy
import structlog
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import ValidationError

from .. import SDK_VERSION
from ..schemas import DeviceKind, PluginManifest
from ..schemas.errors import explain
from . import hookspecs
from .driver import DeviceDriver
from .errors import PluginRefused, UnknownPlugin
from .registrars import DriverRegistrar, SimulatorRegistrar, TtsRegistrar

log = structlog.get_logger("ttcs.plugins")


class PluginState(StrEnum):
    LOADED = "loaded"
    REFUSED = "refused"


@dataclass
class LoadedPlugin:
    """One plugin as the hub sees it, loaded or refused."""

    name: str  # entry-point name
    state: PluginState
    source: str  # "module:object" or distribution name
    manifest: PluginManifest | None = None
    reason: str | None = None
    distribution: str | None = None
    drivers: dict[DeviceKind, type[DeviceDriver]] = field(default_factory=dict)
    discoveries: list[type[Any]] = field(default_factory=list)
    simulators: list[Any] = field(default_factory=list)
    tts_engines: list[Any] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.manifest.id if self.manifest else self.name

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": self.id,
            "name": m.name if m else None,
            "vendor": m.vendor if m else None,
            "version": m.version if m else None,
            "kinds": [k.value for k in m.device_kinds] if m else [],
            "protocols": [p.value for p in m.protocols] if m else [],
            "iot_class": m.iot_class.value if m else None,
            "state": self.state.value,
            "reason": self.reason,
            "source": self.source,
            "distribution": self.distribution,
        }


class PluginManager:
    """Loads plugins through pluggy and keeps the result, loaded or refused."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._plugins: list[LoadedPlugin] = []
        self._by_id: dict[str, LoadedPlugin] = {}  # loaded ones (asked per device)

    # -- loading ------------------------------------------------------------------------------

    def load_entry_points(self, group: str = hookspecs.ENTRY_POINT_GROUP) -> None:
        """Load every plugin installed under the entry-point group, in name order."""
        eps = sorted(importlib.metadata.entry_points(group=group), key=lambda ep: ep.name)
        for ep in eps:
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else None
            self.load(ep.name, ep.load, source=ep.value, distribution=dist)

    def load(self, name: str, loader: Callable[[], object], *, source: str = "",
             distribution: str | None = None) -> LoadedPlugin:
        """Load one plugin; ``loader`` imports and returns the plugin object."""
        entry = LoadedPlugin(name=name, state=PluginState.REFUSED, source=source or name,
                             distribution=distribution)
        try:
            self._admit(entry, loader())
        except PluginRefused as exc:
            entry.reason = str(exc)
        except Exception as exc:  # a plugin can fail in any way; the hub must not
            entry.reason = f"{type(exc).__name__}: {exc}"
        self._plugins.append(entry)
        if entry.state is PluginState.LOADED:
            self._by_id.setdefault(entry.id, entry)
        if entry.state is PluginState.REFUSED:
            log.warning("plugin.refused", plugin=name, reason=entry.reason)
        return entry

    def load_object(self, name: str, obj: object) -> LoadedPlugin:
        """Load a plugin object that is already imported (tests, embedding)."""
        return self.load(name, lambda: obj, source=name)

    def _admit(self, entry: LoadedPlugin, obj: object) -> None:
        if self._pm.is_registered(obj):
            raise PluginRefused("the same plugin object is already registered")
        try:
            self._pm.register(obj, name=f"{entry.name}:{id(obj)}")
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginRefused(f"invalid hook implementation: {exc}") from exc
        try:
            entry.manifest = self._manifest(obj)
            registrar = DriverRegistrar(entry.manifest.id)
            self._call(obj, "ttcs_register_drivers", registrar=registrar)
            self._check_drivers(entry.manifest, registrar)
            sims = SimulatorRegistrar(entry.manifest.id)
            self._call(obj, "ttcs_register_simulators", registrar=sims)
            tts = TtsRegistrar(entry.manifest.id)
            self._call(obj, "ttcs_register_tts", registrar=tts)
            if clash := {e.name for e in tts.engines} & {
                    e.name for p in self.loaded() for e in p.tts_engines}:
                raise PluginRefused(f"TTS engine name(s) already taken: {sorted(clash)}")
        except BaseException:
            self._pm.unregister(obj)
            raise
        entry.drivers = {kind: cls for cls in registrar.drivers for kind in cls.kinds}
        entry.discoveries = registrar.discoveries
        entry.simulators = sims.simulators
        entry.tts_engines = tts.engines
        entry.state = PluginState.LOADED

    def _call(self, obj: object, hook_name: str, **kwargs: Any) -> Any:
        others = [p for p in self._pm.get_plugins() if p is not obj]
        caller = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            return caller(**kwargs)
        except PluginRefused:
            raise
        except Exception as exc:
            raise PluginRefused(f"{hook_name} raised {type(exc).__name__}: {exc}") from exc

    def _manifest(self, obj: object) -> PluginManifest:
        raw = self._call(obj, "ttcs_plugin_manifest")
        if raw is None:
            raise PluginRefused("no manifest: implement ttcs_plugin_manifest()")
        try:
            manifest = raw if isinstance(raw, PluginManifest) else PluginManifest.model_validate(
                raw)
        except ValidationError as exc:
            raise PluginRefused(f"invalid manifest: {explain(exc)}") from exc
        if Version(SDK_VERSION) not in SpecifierSet(manifest.sdk):
            raise PluginRefused(f"needs SDK {manifest.sdk}, this hub provides {SDK_VERSION}")
        if clash := self._loaded_by_id(manifest.id):
            raise PluginRefused(f"plugin id '{manifest.id}' is already used by {clash.source}")
        return manifest

    @staticmethod
    def _check_drivers(manifest: PluginManifest, registrar: DriverRegistrar) -> None:
        if not registrar.drivers:
            raise PluginRefused("registered no driver (implement ttcs_register_drivers)")
        kinds, caps = set(manifest.device_kinds), set(manifest.capabilities)
        seen: set[DeviceKind] = set()
        for cls in registrar.drivers:
            if extra := set(cls.kinds) - kinds:
                raise PluginRefused(f"driver {cls.__name__} handles kinds not in the manifest: "
                                    f"{sorted(k.value for k in extra)}")
            if extra_caps := set(cls.capabilities) - caps:
                raise PluginRefused(f"driver {cls.__name__} has capabilities not in the "
                                    f"manifest: {sorted(c.value for c in extra_caps)}")
            if dup := seen & set(cls.kinds):
                raise PluginRefused(f"two drivers claim kind(s) {sorted(k.value for k in dup)}")
            seen |= set(cls.kinds)
        if missing := kinds - seen:
            raise PluginRefused(f"manifest lists kinds no driver handles: "
                                f"{sorted(k.value for k in missing)}")

    # -- queries ------------------------------------------------------------------------------

    def all(self) -> list[LoadedPlugin]:
        return sorted(self._plugins, key=lambda p: (p.state.value, p.id))

    def loaded(self) -> Iterable[LoadedPlugin]:
        return (p for p in self._plugins if p.state is PluginState.LOADED)

    def _loaded_by_id(self, plugin_id: str) -> LoadedPlugin | None:
        plugin = self._by_id.get(plugin_id)
        return plugin if plugin is not None and plugin.state is PluginState.LOADED else None

    def get(self, plugin_id: str) -> LoadedPlugin:
        plugin = self._loaded_by_id(plugin_id)
        if plugin is None:
            known = ", ".join(sorted(p.id for p in self.loaded())) or "none"
            refused = next((p for p in self._plugins if p.name == plugin_id), None)
            why = f" (refused: {refused.reason})" if refused else ""
            raise UnknownPlugin(f"no loaded plugin '{plugin_id}'{why}; loaded: {known}")
        return plugin

    def driver_class(self, plugin_id: str, kind: DeviceKind) -> type[DeviceDriver]:
        plugin = self.get(plugin_id)
        try:
            return plugin.drivers[kind]
        except KeyError:
            kinds = ", ".join(k.value for k in plugin.drivers)
            raise UnknownPlugin(f"plugin '{plugin_id}' has no driver for kind '{kind.value}' "
                                f"(it supports: {kinds})") from None

    def simulators(self) -> list[Any]:
        return [spec for p in self.loaded() for spec in p.simulators]

    def tts_engines(self) -> list[tuple[str, Any]]:
        """(plugin id, engine) for every text-to-speech engine of the loaded plugins."""
        return [(p.id, engine) for p in self.loaded() for engine in p.tts_engines]


def default_manager() -> PluginManager:
    """A manager with every installed plugin loaded."""
    manager = PluginManager()
    manager.load_entry_points()
    return manager
