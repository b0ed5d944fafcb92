"""Core profile: manifest, identity, registration, status, commands, idempotency, lifecycle."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ... import SDK_VERSION
from ...aio import wait_for
from ...core.errors import (
    Conflict,
    DeviceError,
    DeviceNotReady,
    DeviceTimeout,
    DeviceUnreachable,
    TTCSError,
)
from ...core.plugins import PluginState
from ...schemas import (
    Capability,
    Connectivity,
    Device,
    DeviceKind,
    DeviceSpec,
    PowerSource,
    new_id,
)
from ...simulators.base import Fault
from ..context import CaseContext, describe, ok
from ..effects import Effect, effect_for, zones_in
from ..environment import ACTOR, AREA
from ..outcome import NotRun
from . import implements

_HOST_PORT = re.compile(r"^[\w.-]+:\d{2,5}$")


@implements("TC-CORE-001")
async def manifest_agrees(ctx: CaseContext) -> None:
    plugin = ctx.plugin
    ctx.require("the plugin is loaded, not refused", plugin.state is PluginState.LOADED,
                plugin.reason)
    manifest = plugin.manifest
    assert manifest is not None
    ctx.check("the SDK range admits this hub", Version(SDK_VERSION) in SpecifierSet(manifest.sdk),
              f"manifest sdk {manifest.sdk!r}, hub SDK {SDK_VERSION}")
    kinds, caps = set(manifest.device_kinds), set(manifest.capabilities)
    drivers = set(plugin.drivers.values())
    extra_kinds = {k for d in drivers for k in d.kinds} - kinds
    extra_caps = {c for d in drivers for c in d.capabilities} - caps
    ctx.check("the drivers' kinds and capabilities are all in the manifest",
              not extra_kinds and not extra_caps,
              f"not in the manifest: {sorted(str(x) for x in extra_kinds | extra_caps)}")
    ctx.check("every kind in the manifest has a driver", kinds <= set(plugin.drivers),
              f"no driver for {sorted(k.value for k in kinds - set(plugin.drivers))}")
    dut = await ctx.dut()
    registration = dut.registration()
    # the children's settings too (a child's parent_id is only known once it is registered)
    registrations = [registration, *dut.children("conformance-parent")]
    ctx.check("the registration names this plugin",
              all(r.get("plugin") == plugin.id for r in registrations),
              f"registrations say plugin {sorted({str(r.get('plugin')) for r in registrations})}")
    properties = schema_properties(manifest.config_schema)
    undescribed = sorted({k for r in registrations for k in r.get("config", {})}
                         - properties)
    ctx.check("the manifest's config schema describes every registration setting",
              not undescribed, f"not in the schema: {undescribed}")
    refused = []
    for reg in registrations:
        try:
            ctx.env.validate(reg)
        except Exception as exc:
            refused.append(f"{reg.get('kind')}: {exc}")
    ctx.check("the driver's config model accepts the registration settings", not refused,
              "; ".join(refused) or None)


def schema_properties(schema: dict[str, object]) -> set[str]:
    """Every property a JSON Schema describes, through ``anyOf``/``oneOf``/``allOf`` and
    ``$ref`` into ``$defs`` (a plugin with several kinds may give one schema per kind)."""
    defs = schema.get("$defs", {})
    found: set[str] = set()
    seen: set[int] = set()

    def walk(node: object) -> None:
        if not isinstance(node, dict) or id(node) in seen:
            return
        seen.add(id(node))
        props = node.get("properties")
        if isinstance(props, dict):
            found.update(props)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and isinstance(defs, dict):
            walk(defs.get(ref.removeprefix("#/$defs/")))
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in node.get(key) or []:
                walk(branch)
        if isinstance(node.get("$defs"), dict) and node is not schema:
            for sub in node["$defs"].values():
                walk(sub)

    walk(schema)
    return found


def _looks_like_address(serial: str) -> bool:
    try:
        ipaddress.ip_address(serial)
        return True
    except ValueError:
        return bool(_HOST_PORT.match(serial)) or serial.startswith(("http://", "https://"))


@implements("TC-CORE-002")
async def probe_identity(ctx: CaseContext) -> None:
    dut = await ctx.dut()
    registration = dut.registration()
    config = ctx.env.validate(registration)
    kind = DeviceKind(registration["kind"])
    limit = ctx.env.hub.settings.probe_timeout * 4 + 2
    try:
        info = await ctx.bounded("probe() answers", ctx.env.hub.probe(ctx.plugin.id, kind,
                                                                      config), limit)
    except DeviceError as exc:
        ctx.require("probe() returns the device's identity", False, describe(exc))
        return
    ctx.env.identity = info
    ctx.check("probe() returns serial, vendor, model and firmware",
              bool(info.serial and info.vendor and info.model and info.firmware),
              f"got {info.model_dump(include={'serial', 'vendor', 'model', 'firmware'})}")
    ctx.check("the kind is the kind it is registered as", info.kind is kind,
              f"probe says {info.kind.value}, registered as {kind.value}")
    expected = dut.expected_serial
    if expected is not None:
        ctx.check("the serial is the device's own", info.serial == expected,
                  f"probe says {info.serial!r}, the device is {expected!r}")
    ctx.check("the serial is not a network address", not _looks_like_address(info.serial),
              f"serial {info.serial!r}")


@implements("TC-CORE-003")
async def registration(ctx: CaseContext) -> None:
    dut = await ctx.dut()
    reg = dut.registration()
    try:
        device = await ctx.env.register("primary", reg)
    except DeviceError as exc:
        ctx.require("the device can be registered", False, describe(exc))
        return
    probed = ctx.env.identity
    if probed is not None:
        ctx.check("the registry keeps the identity the probe returned",
                  (device.serial, device.vendor, device.model, device.firmware)
                  == (probed.serial, probed.vendor, probed.model, probed.firmware),
                  f"registered {device.serial}/{device.vendor}/{device.model}/"
                  f"{device.firmware}, probed {probed.serial}/{probed.vendor}/"
                  f"{probed.model}/{probed.firmware}")
    try:
        await ctx.env.hub.registry.add_device(DeviceSpec(
            plugin=reg["plugin"], kind=reg["kind"], area_code=AREA, name="duplicate",
            config=reg.get("config", {})), ACTOR)
        ctx.check("a second registration is refused as a duplicate", False,
                  "the same device was registered twice")
    except Conflict as exc:
        ctx.check("a second registration is refused as a duplicate", device.id in str(exc),
                  str(exc))
    except DeviceError as exc:
        ctx.check("a second registration is refused as a duplicate", False,
                  f"the second probe failed instead: {describe(exc)}")
    await register_children(ctx, "primary", device, dut.children(device.id))


async def register_children(ctx: CaseContext, role: str, parent: Device,
                            registrations: list[dict[str, object]]) -> None:
    """Register the devices reached through ``parent`` (probed through it), and check that
    each is keyed by a serial of its own and cannot be registered twice."""
    if not registrations:
        return
    children: list[Device] = []
    roles: list[str] = []
    ctx.env.children[role] = roles
    for n, reg in enumerate(registrations, 1):
        child_role = f"{role}.child{n}"
        try:
            child = await ctx.env.register(child_role, dict(reg))
        except TTCSError as exc:
            ctx.check(f"child {n} ({reg.get('kind')}) is registered through its parent", False,
                      describe(exc))
            continue
        roles.append(child_role)
        children.append(child)
    ctx.check("every child is registered through its parent, as the kind it is registered as",
              len(children) == len(registrations)
              and all(c.parent_id == parent.id and c.kind.value == r.get("kind")
                      for c, r in zip(children, registrations, strict=False)),
              f"{len(children)} of {len(registrations)} registered: "
              f"{[(c.serial, c.kind.value, c.parent_id) for c in children]}")
    serials = [c.serial for c in children]
    ctx.check("each child has a serial of its own (not its parent's, not another child's, not "
              "an address)",
              len(set(serials)) == len(serials) and parent.serial not in serials
              and not any(_looks_like_address(s) for s in serials), f"serials {serials}")
    if not children:
        return
    first = registrations[0]
    try:
        await ctx.env.hub.registry.add_device(DeviceSpec(
            plugin=str(first["plugin"]), kind=str(first["kind"]), area_code=AREA,
            name="duplicate child", config=dict(first.get("config") or {}),  # type: ignore[call-overload]
            parent_id=parent.id), ACTOR)
        ctx.check("a second registration of a child is refused as a duplicate", False,
                  "the same child was registered twice")
    except Conflict as exc:
        ctx.check("a second registration of a child is refused as a duplicate",
                  children[0].id in str(exc), str(exc))
    except DeviceError as exc:
        ctx.check("a second registration of a child is refused as a duplicate", False,
                  f"the second probe failed instead: {describe(exc)}")


@implements("TC-CORE-004")
async def online_status(ctx: CaseContext) -> None:
    device = await ctx.device()
    ctx.require("the hub marks the device online", await ctx.online(device),
                f"connectivity is {ctx.env.connectivity(device).value}")
    try:
        status = await ctx.bounded("read_status() answers", ctx.env.hub.read_status(device.id),
                                   ctx.env.patience(device))
    except DeviceError as exc:
        ctx.check("read_status() returns a status", False, describe(exc))
        return
    ctx.check("read_status() returns a status that is not offline",
              status.connectivity is not Connectivity.OFFLINE,
              f"connectivity {status.connectivity.value}")
    children = [ctx.env.devices[r] for r in ctx.env.children.get("primary", [])]
    if children:
        late = [c for c in children if not await ctx.online(c)]
        ctx.check("the devices reached through it are online too", not late,
                  f"not online: {[(c.serial, ctx.env.connectivity(c).value) for c in late]}")


def chosen_effect(ctx: CaseContext, device: Device) -> Effect:
    effect = effect_for(set(device.capabilities) & set(ctx.declaration.capabilities))
    if effect is None:
        raise NotRun("the device has no capability the kit can exercise harmlessly (volume, "
                     "brightness, zones, RF, power)")
    return effect


def zone_of(ctx: CaseContext, device: Device, effect: Effect) -> str | None:
    if effect.name != "zone":
        return None
    sup = ctx.env.hub.supervisors.get(device.id)
    zones = zones_in(sup.status if sup else None)
    if not zones:
        raise NotRun("the device reports no zones in its telemetry (zone.<id>)")
    return zones[0]


async def current(ctx: CaseContext, device: Device, effect: Effect, zone: str | None
                  ) -> object:
    """The setting's value now: the device's own last change when its ground truth shows one
    (the hub's status may not have been polled since), else what the hub's status says."""
    truth = (await ctx.dut()).truth()
    if truth:
        changes = effect.observed(truth.get(effect.truth_key, []), zone)
        if changes:
            return changes[-1]
    sup = ctx.env.hub.supervisors.get(device.id)
    return effect.reported(sup.status, zone) if sup and sup.status else None


@implements("TC-CORE-005")
async def command_answered(ctx: CaseContext) -> None:
    device = await ctx.device()
    effect = chosen_effect(ctx, device)
    zone = zone_of(ctx, device, effect)
    value = (effect.harmless if effect.capability is Capability.POWER
             else effect.distinct_from(await current(ctx, device, effect, zone))[0])
    command = effect.command(value, zone)
    ctx.note(f"command: {command.type} {value!r}" + (f" on zone {zone}" if zone else ""))
    result = await ctx.execute(device, command)
    ctx.require("the result is accepted or done", ok(result), describe(result))
    assert not isinstance(result, DeviceError)
    ctx.check("the result names the command it answers", result.command_id == command.id,
              f"result for {result.command_id}, command {command.id}")
    dut = await ctx.dut()
    await ctx.observe(
        f"the device's {effect.name} became {value!r}", dut,
        lambda t: value in effect.observed(ctx.since(t.get(effect.truth_key, [])), zone),
        f"Did the device's {effect.name} change to {value!r}?",
        timeout=ctx.env.patience(device),
        explain=lambda t: f"{effect.truth_key} since the case began: "
        f"{effect.observed(ctx.since(t.get(effect.truth_key, [])), zone)}")


@implements("TC-CORE-006")
async def idempotency(ctx: CaseContext) -> None:
    device = await ctx.device()
    effect = chosen_effect(ctx, device)
    zone = zone_of(ctx, device, effect)
    a, b = effect.distinct_from(await current(ctx, device, effect, zone))
    first = effect.command(a, zone)
    second = effect.command(b, zone)
    ctx.note(f"A = {first.type} {a!r} (key {first.idempotency_key}), B = {b!r}")
    r1 = await ctx.execute(device, first)
    ctx.require("command A is carried out", ok(r1), describe(r1))
    r2 = await ctx.execute(device, second)
    ctx.require("command B is carried out", ok(r2), describe(r2))
    again = first.model_copy(update={"id": new_id("cmd")})
    r3 = await ctx.execute(device, again)
    same = (isinstance(r3, DeviceError) is isinstance(r1, DeviceError)
            and getattr(r3, "status", None) == getattr(r1, "status", None))
    ctx.check("the repeated command gets the same outcome as the first", same,
              f"first {describe(r1)}, repeat {describe(r3)}")
    dut = await ctx.dut()
    await ctx.observe(
        f"the device acted on A once: its {effect.name} went {a!r} then {b!r} and stayed",
        dut, lambda t: effect.observed(ctx.since(t.get(effect.truth_key, [])), zone)[-2:]
        == [a, b] and effect.observed(ctx.since(t.get(effect.truth_key, [])), zone).count(a)
        == 1,
        f"Is the device's {effect.name} still {b!r} (not back at {a!r})?",
        timeout=ctx.env.patience(device),
        explain=lambda t: f"{effect.name} went "
        f"{effect.observed(ctx.since(t.get(effect.truth_key, [])), zone)}")


@implements("TC-CORE-007")
async def status_follows(ctx: CaseContext) -> None:
    device = await ctx.device()
    dut = await ctx.dut()
    sup = ctx.env.hub.supervisors[device.id]

    def source() -> PowerSource | None:
        return sup.status.power_source if sup.status else None

    await ctx.inject(dut, Fault.POWER_LOSS_BATTERY)
    ctx.check("the hub's status says the device runs on battery",
              await ctx.wait(lambda: source() is PowerSource.BATTERY, ctx.env.patience(device)),
              f"power source {source()}")
    await ctx.clear(dut, Fault.POWER_LOSS_BATTERY)
    ctx.check("the hub's status says mains again once it is back",
              await ctx.wait(lambda: source() is PowerSource.MAINS, ctx.env.patience(device)),
              f"power source {source()}")


@implements("TC-CORE-008")
async def unreachable(ctx: CaseContext) -> None:
    device = await ctx.device()
    dut = await ctx.dut()
    settings = ctx.env.hub.settings
    await ctx.inject(dut, Fault.OFFLINE)
    if device.id in ctx.env.hub.supervisors:  # let the hub see it go (a push device's will)
        await ctx.wait(lambda: ctx.env.connectivity(device) is not Connectivity.ONLINE,
                       ctx.env.patience(device))
    driver = ctx.env.hub.make_driver(device)
    began = time.monotonic()
    await ctx.bounded("start() returns", driver.start(), settings.probe_timeout * 2)
    took = time.monotonic() - began
    try:
        ctx.check("start() returns within the probe timeout", took <= settings.probe_timeout,
                  f"took {took:.2f} s (probe timeout {settings.probe_timeout:g} s)")
        limit = settings.probe_timeout * 4 + 2
        try:
            info = await wait_for(driver.probe(), limit)
            ctx.check("probe() of the unreachable device fails with a device error", False,
                      f"it answered {info.serial} while offline")
        except (DeviceUnreachable, DeviceTimeout, DeviceNotReady) as exc:
            ctx.check("probe() of the unreachable device fails with a device error", True,
                      describe(exc))
        except DeviceError as exc:
            ctx.check("probe() of the unreachable device fails with a device error", False,
                      f"wrong kind of error: {describe(exc)}")
        except TimeoutError:
            ctx.check("probe() of the unreachable device fails with a device error", False,
                      f"probe() hung for {limit:g} s")
    finally:
        await wait_for(driver.stop(), 5)


def _plugin_frames(task: asyncio.Task[object], plugin_dir: Path) -> str | None:
    """The first frame of ``task`` that runs code of the plugin's package, if any."""
    coro: object = task.get_coro()
    root = str(plugin_dir)
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None and code.co_filename.startswith(root):
            return f"{code.co_filename}: {code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return None


@implements("TC-CORE-009")
async def clean_stop(ctx: CaseContext) -> None:
    device = await ctx.device()
    if not await ctx.online(device):
        raise NotRun("the device is not online")
    before = asyncio.all_tasks()
    driver = ctx.env.hub.make_driver(device)
    await ctx.bounded("start() returns", driver.start(), ctx.env.hub.settings.probe_timeout * 2)
    try:
        await ctx.bounded("read_status() answers", driver.read_status(),
                          ctx.env.patience(device))
    except DeviceError as exc:
        ctx.note(f"read_status() of the fresh driver failed: {describe(exc)}")
    began = time.monotonic()
    await ctx.bounded("stop() returns", driver.stop(), 5.0)
    ctx.check("stop() returns promptly", time.monotonic() - began < 5.0)
    plugin_dir = ctx.env.plugin_dir

    def leftovers() -> list[str]:
        if plugin_dir is None:
            return []
        found = (_plugin_frames(t, plugin_dir) for t in asyncio.all_tasks() - before
                 if not t.done())
        return [f for f in found if f]

    await ctx.wait(lambda: not leftovers(), 1.0)  # cancelled tasks need a turn of the loop
    left = leftovers()
    ctx.check("no task running the plugin's code is left behind", not left,
              "; ".join(left[:5]))
    ctx.check("the supervised driver of the same device still works",
              await ctx.online(device, 2.0), f"connectivity {ctx.env.connectivity(device)}")
