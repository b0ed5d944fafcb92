"""Run a certification: select cases from the declaration, exercise the plugin, build the report.

Order: the cases in catalogue order, then the whole-run cases (logs, event loop). After each
case every fault it injected is cleared and the kit waits for the device to be online again,
so one case's failure does not become the next case's.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from .. import SDK_VERSION, __version__
from ..aio import wait_for
from ..core.errors import DeviceError, TTCSError
from ..core.plugins import LoadedPlugin, PluginManager, default_manager
from ..schemas import Connectivity
from ..simulators.base import SimulatorSpec
from .cases import Profile
from .checks import WHOLE_RUN, implementations
from .context import CaseContext, describe
from .declaration import (
    Declaration,
    Selected,
    Selection,
    declaration_for,
    declaration_path,
    gated_profiles,
    select,
)
from .environment import Environment
from .logcapture import LogCapture, redact
from .outcome import CaseAborted, CaseResult, CheckResult, NotRun, Status, verdict
from .report import (
    KIT_NAME,
    KIT_VERSION,
    DeviceIdentity,
    PluginInfo,
    Report,
    distribution_hash,
    level_of,
    profile_verdicts,
    summary_of,
)
from .targets import DeviceFile, DeviceTarget, Person, SimulatorTarget, Target

log = structlog.get_logger("ttcs.conformance")

#: no case may take longer than this (a plugin that hangs the kit fails the case)
CASE_LIMIT = 120.0
#: log lines kept per case in the report
LOG_LINES_KEPT = 150


class CertificationError(TTCSError):
    """The run cannot start (unknown plugin, no simulator, refused declaration)."""


@dataclass
class RunRequest:
    """What ``ttcs certify`` was asked to do."""

    plugin: str
    simulator: str | None = None
    device_file: Path | None = None
    profiles: list[Profile] | None = None
    person: Person | None = None
    broker: str | None = None
    wheel: Path | None = None
    declaration: Path | None = None
    work_dir: Path | None = None
    probe_timeout: float = 3.0
    command_timeout: float = 3.0
    progress: Callable[[CaseResult], None] | None = None
    plugins: PluginManager | None = None
    notes: list[str] = field(default_factory=list)


def simulator_code(spec: SimulatorSpec) -> tuple[str, ...]:
    """Where the simulator's code lives: the hub's simulators, and the module that builds
    this one (a vendor's simulator in its own package)."""
    from .. import simulators

    places = [str(Path(simulators.__file__).parent) + os.sep]
    with contextlib.suppress(TypeError, OSError):
        source = inspect.getsourcefile(spec.build)
        if source:
            places.append(source)
    return tuple(places)


def _plugin(plugins: PluginManager, plugin_id: str) -> LoadedPlugin:
    try:
        return plugins.get(plugin_id)
    except TTCSError as exc:
        raise CertificationError(str(exc)) from exc


def _target(request: RunRequest, plugin: LoadedPlugin, declaration: Declaration,
            broker_url: str) -> Target:
    if request.device_file is not None:
        devices = DeviceFile.read(request.device_file)
        if wrong := [d.plugin for d in devices.devices if d.plugin != plugin.id]:
            raise CertificationError(f"the device file names plugin {wrong[0]}, not {plugin.id}")
        return DeviceTarget(devices, request.person)
    name = request.simulator or (declaration.simulator.name if declaration.simulator else None)
    specs = {s.name: s for s in plugin.simulators}
    if name is None:
        raise CertificationError(f"plugin {plugin.id} names no simulator in its declaration; "
                                 "give --simulator NAME or --device-config FILE")
    if name not in specs:
        raise CertificationError(f"plugin {plugin.id} has no simulator '{name}' (it has: "
                                 f"{', '.join(sorted(specs)) or 'none'})")
    use = declaration.simulator if declaration.simulator and \
        declaration.simulator.name == name else None
    return SimulatorTarget(specs[name], broker_url=broker_url,
                           options=use.options if use else None,
                           config=use.config if use else None,
                           child_config=use.child_config if use else None)


async def certify(request: RunRequest) -> Report:
    """Run the selected cases of ``request.plugin`` and return the (unsigned) report."""
    plugins = request.plugins or default_manager()
    plugin = _plugin(plugins, request.plugin)
    assert plugin.manifest is not None
    declaration = declaration_for(plugin, request.declaration)
    chosen = select(declaration, request.profiles)
    impls = implementations()
    if missing := [s.case.id for s in chosen if s.case.id not in impls]:
        raise CertificationError(f"the kit has no implementation of {', '.join(missing)}")
    package_dir = (request.declaration or declaration_path(plugin)).parent
    dist_hash = distribution_hash(plugin, package_dir, request.wheel)
    started = datetime.now(UTC)
    began = time.monotonic()
    results: list[CaseResult] = []
    notes = list(request.notes)
    with tempfile.TemporaryDirectory(prefix="ttcs-certify-") as scratch, LogCapture() as logs:
        work = request.work_dir or Path(scratch)
        env = Environment(plugins, plugin, work, broker=request.broker,
                          probe_timeout=request.probe_timeout,
                          command_timeout=request.command_timeout)
        env.plugin_dir = package_dir
        async with env:
            assert env.broker is not None
            target = _target(request, plugin, declaration, env.broker.device_url)
            if isinstance(target, SimulatorTarget):
                env.watch.excused_code = simulator_code(target.spec)
            if not env.broker.checks_passwords:
                notes.append("The MQTT broker of this run does not check passwords; cases "
                             "that need it were not run.")
            if target.mode == "device":
                notes.append("Against a real device: cases that do something to the device "
                             "(faults) and checks only the device can show were "
                             + ("asked of the person at the device." if request.person else
                                "not run (the run was not interactive)."))
            try:
                with contextlib.suppress(NotRun, TTCSError):  # known before any case logs
                    env.secrets |= env.config_secrets((await target.device("primary"))
                                                      .registration())
                ordered = [s for s in chosen if s.case.id not in WHOLE_RUN] + \
                          [s for s in chosen if s.case.id in WHOLE_RUN]
                for selected in ordered:
                    result = await _run_case(selected, env, target, plugin, declaration,
                                             logs)
                    results.append(result)
                    if request.progress:
                        request.progress(result)
                identity = await _identity(env)
            finally:
                await target.stop()
        # secrets learnt late (a device registered by a later case) leave no trace either
        results = [_redacted_case(r, env.secrets) for r in results]
        run_profiles = sorted({s.case.profile.value for s in chosen},
                              key=lambda p: list(Profile).index(Profile(p)))
    functional = sorted(p.value for p in gated_profiles(plugin.manifest))
    verdicts = profile_verdicts(results, run_profiles)
    manifest = plugin.manifest
    return Report(
        kit={"name": KIT_NAME, "version": KIT_VERSION, "hub_version": __version__,
             "sdk": SDK_VERSION},
        plugin=PluginInfo(id=manifest.id, name=manifest.name, vendor=manifest.vendor,
                          version=manifest.version, distribution=plugin.distribution,
                          hash=dist_hash),
        target={"mode": target.mode,
                "simulator": getattr(getattr(target, "spec", None), "name", None),
                "device_file": str(request.device_file) if request.device_file else None,
                "interactive": request.person is not None},
        device=identity,
        declaration={"profiles": [p.value for p in declaration.profiles],
                     "capabilities": [c.value for c in declaration.capabilities],
                     "exemptions": dict(declaration.exemptions)},
        profiles_run=run_profiles, functional_profiles=functional,
        started_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
        seconds=round(time.monotonic() - began, 2),
        environment={"python": sys.version.split()[0], "platform": platform.platform(),
                     "broker": "mosquitto (passwords)" if env.broker and
                     env.broker.checks_passwords else "embedded or external"},
        figures={"loop_lag_seconds": env.watch.figures(),
                 "stalls": [s.to_json() for s in env.watch.stalls],
                 "log_lines": len(logs.lines)},
        notes=notes, cases=results, summary=summary_of(results), profiles=verdicts,
        level=level_of(verdicts, functional))


async def _identity(env: Environment) -> DeviceIdentity | None:
    device = env.devices.get("primary")
    if device is None:
        return None
    first = env.identity
    now = await env.hub.registry.get_device(device.id)
    return DeviceIdentity(serial=now.serial, vendor=now.vendor, model=now.model,
                          kind=now.kind.value, firmware=first.firmware if first else now.firmware,
                          firmware_after=now.firmware if first and first.firmware !=
                          now.firmware else None)


async def _run_case(selected: Selected, env: Environment, target: Target,
                    plugin: LoadedPlugin, declaration: Declaration,
                    logs: LogCapture) -> CaseResult:
    case = selected.case
    base = {"id": case.id, "profile": case.profile.value, "title": case.title,
            "mandatory": case.mandatory}
    if selected.selection is Selection.EXEMPT:
        return CaseResult(**base, status=Status.EXEMPT, reason=selected.reason)
    ctx = CaseContext(case, env, target, plugin, declaration)
    ctx.run_log_lines = logs.lines
    mark = logs.mark()
    env.watch.label = case.id
    began = time.monotonic()
    status: Status | None = None
    reason: str | None = None
    try:
        await wait_for(implementations()[case.id](ctx), CASE_LIMIT)
    except NotRun as exc:
        status, reason = Status.NOT_RUN, str(exc)
    except CaseAborted:
        pass  # the failed check says why
    except TimeoutError:
        ctx.check("the case completes", False, f"still running after {CASE_LIMIT:g} s")
    except DeviceError as exc:
        ctx.check("the case's steps complete", False, describe(exc))
    except Exception as exc:  # the plugin (or the kit) broke: the case fails, the run goes on
        ctx.check("the case's steps complete", False, f"{type(exc).__name__}: {exc}")
        ctx.note("".join(traceback.format_exception(exc, limit=8)))
    finally:
        await ctx.clear_all()
        with contextlib.suppress(Exception):  # the hub may be the case's casualty
            await ctx.cancel_broadcasts()
        env.watch.label = None
    await _settle(ctx)
    if status is None:
        status, reason = verdict(ctx.checks)
    elif ctx.checks and any(c.status is Status.FAILED for c in ctx.checks):
        status, reason = verdict(ctx.checks)  # a failure before the step that was not run
    secrets = env.secrets
    lines = [redact(n, secrets) for n in ctx.notes] + [redact(line, secrets)
                                                       for line in logs.since(mark)]
    result = CaseResult(**base, status=status, reason=reason,
                        started_at=ctx.started.isoformat(),
                        seconds=round(time.monotonic() - began, 3),
                        checks=[_redacted(c, secrets) for c in ctx.checks],
                        log=lines[:LOG_LINES_KEPT],
                        log_lines_dropped=max(0, len(lines) - LOG_LINES_KEPT))
    log.debug("conformance.case", case=case.id, status=status.value)
    return result


def _redacted_case(result: CaseResult, secrets: set[str]) -> CaseResult:
    return result.model_copy(update={
        "log": [redact(line, secrets) for line in result.log],
        "reason": redact(result.reason, secrets) if result.reason else None,
        "checks": [_redacted(c, secrets) for c in result.checks]})


def _redacted(check: CheckResult, secrets: set[str]) -> CheckResult:
    if check.detail is None:
        return check
    return check.model_copy(update={"detail": redact(check.detail, secrets)[:2000]})


async def _settle(ctx: CaseContext) -> None:
    """Wait until the registered devices are online again before the next case."""
    for role, device in list(ctx.env.devices.items()):
        if device.id not in ctx.env.hub.supervisors:
            continue
        if ctx.env.connectivity(device) is Connectivity.ONLINE:
            continue
        back = await ctx.online(device, ctx.env.patience(device) + 5)
        if not back:
            ctx.note(f"the {role} device was not online again after this case")


__all__ = ["CertificationError", "RunRequest", "certify"]
