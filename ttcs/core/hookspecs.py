"""Hook specifications of the TTCS plugin SDK — the whole contract between hub and plugin.

A plugin is a module (or object) exposed through the ``ttcs.plugins`` entry-point group::

    [project.entry-points."ttcs.plugins"]
    acme = "acme_ttcs.plugin"

and implements the hooks below with :data:`hookimpl`. The hub loads plugins one at a time and
calls the hooks *for that plugin only*, in the order they appear in this file. A plugin that
fails to import, whose hook raises, or whose manifest is invalid is refused with the reason;
the rest of the hub keeps running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ..schemas import PluginManifest
    from .registrars import DriverRegistrar, SimulatorRegistrar, TtsRegistrar

PROJECT = "ttcs"
ENTRY_POINT_GROUP = "ttcs.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------------
# Loading: called once per plugin, right after it is imported.
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def ttcs_plugin_manifest() -> PluginManifest:  # type: ignore[empty-body]
    """Return the plugin's :class:`~ttcs.schemas.PluginManifest`.

    Called first, before any other hook of the plugin. The hub checks that the id is unique,
    that ``sdk`` admits this hub's :data:`ttcs.SDK_VERSION`, and that kinds and capabilities
    are known; otherwise the plugin is refused and none of its other hooks is called.
    """


@hookspec
def ttcs_register_drivers(registrar: DriverRegistrar) -> None:
    """Register the plugin's driver classes (and optional discovery service).

    :param registrar: call ``registrar.add_driver(cls)`` for each
        :class:`~ttcs.core.driver.DeviceDriver` subclass, and ``registrar.add_discovery(cls)``
        for a service that finds devices announcing themselves.

    Called once, after the manifest was accepted. A driver's kinds and capabilities must be
    within the manifest's; the hub refuses the plugin otherwise.
    """


@hookspec
def ttcs_register_simulators(registrar: SimulatorRegistrar) -> None:
    """Register simulators of the plugin's devices (shown by ``ttcs sim list``).

    :param registrar: call ``registrar.add(spec)`` with a
        :class:`~ttcs.simulators.base.SimulatorSpec` for each simulator.

    Optional. Called once after ``ttcs_register_drivers``.
    """


@hookspec
def ttcs_register_tts(registrar: TtsRegistrar) -> None:
    """Register text-to-speech engines (a vendor's cloud TTS, a better offline voice).

    :param registrar: call ``registrar.add_engine(engine)`` with an object following
        :class:`~ttcs.core.content.tts.TtsEngine`: a unique ``name``, ``voices`` (name,
        language, optional region north/central/south) and ``async synthesize(text, voice)``
        returning WAV bytes.

    Optional. Called once after ``ttcs_register_simulators``. Engines are chosen by name with
    the ``tts_engine`` setting, or per area with ``tts_voices`` (``ENGINE:VOICE``); renders are
    cached by engine, voice and text, so an engine is called once per distinct bulletin. A name
    already taken (``espeak-ng`` is built in) is ignored with a warning.
    """
