"""Resilience profile: offline at start-up, outages, a hung neighbour, garbage, a blocked event
loop, identity across firmware upgrades and address changes."""

from __future__ import annotations

import asyncio
import time

from ...aio import wait_for
from ...core.errors import DeviceError, TTCSError
from ...schemas import Command, Connectivity, Device, DeviceKind, new_id
from ...simulators.base import Fault
from ..context import CaseContext, describe, ok
from ..effects import Effect, reversible_effect_for, zones_in
from ..environment import ACTOR
from ..outcome import NotRun
from . import implements


def harmless(ctx: CaseContext, device: Device) -> tuple[Effect, Command]:
    effect = reversible_effect_for(set(device.capabilities) & set(ctx.declaration.capabilities))
    if effect is None:
        raise NotRun("the device has no setting the kit can change harmlessly")
    zone = None
    if effect.name == "zone":
        sup = ctx.env.hub.supervisors.get(device.id)
        zones = zones_in(sup.status if sup else None)
        if not zones:
            raise NotRun("the device reports no zones")
        zone = zones[0]
    return effect, effect.command(effect.values[1], zone)


def fresh(command: Command) -> Command:
    """The same command as a new one (new id, new idempotency key)."""
    key = new_id("cmd")
    return command.model_copy(update={"id": key, "idempotency_key": key})


@implements("TC-RES-001")
async def offline_at_start(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    second = await ctx.device("second")
    settings = ctx.env.hub.settings

    async def cut_power() -> None:
        await ctx.inject(dut, Fault.POWER_LOSS)

    took = await ctx.env.restart_hub(while_down=cut_power)
    ctx.check("the hub starts while the device is dead", ctx.env.hub.started
              and took <= settings.probe_timeout * 2,
              f"start() took {took:.2f} s (bound: twice the probe timeout, "
              f"{settings.probe_timeout * 2:g} s)")
    device = ctx.env.devices["primary"]
    second = ctx.env.devices["second"]
    back = await ctx.online(second)
    ctx.check("the other device comes online meanwhile", back
              and ctx.env.connectivity(device) is not Connectivity.ONLINE,
              f"other {ctx.env.connectivity(second).value}, dead one "
              f"{ctx.env.connectivity(device).value}")
    await ctx.clear(dut, Fault.POWER_LOSS)
    ctx.check("the device comes online once its power is back (no hub restart)",
              await ctx.online(device, ctx.env.patience(device) + 4),
              f"connectivity {ctx.env.connectivity(device).value}")


@implements("TC-RES-002")
async def outage(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    _, command = harmless(ctx, device)
    await ctx.inject(dut, Fault.POWER_LOSS)
    ctx.check("the hub marks the device offline",
              await ctx.wait(lambda: ctx.env.connectivity(device) is Connectivity.OFFLINE,
                             ctx.env.patience(device) * 2),
              f"connectivity {ctx.env.connectivity(device).value}")
    children = [ctx.env.devices[r] for r in ctx.env.children.get("primary", [])]
    if children:
        ctx.check("the devices reached through it are offline with it",
                  await ctx.wait(lambda: all(ctx.env.connectivity(c) is Connectivity.OFFLINE
                                             for c in children), ctx.env.patience(device)),
                  f"{[(c.serial, ctx.env.connectivity(c).value) for c in children]}")
    away = await ctx.execute(device, fresh(command))
    ctx.check("a command while it is away fails with a device error or a failed result",
              not ok(away), describe(away))
    await ctx.clear(dut, Fault.POWER_LOSS)
    ctx.check("the device is online again after the outage",
              await ctx.online(device, ctx.env.patience(device) + 4),
              f"connectivity {ctx.env.connectivity(device).value}")
    again = await ctx.execute(device, fresh(command))
    ctx.check("the command then succeeds", ok(again), describe(again))
    if children:
        ctx.check("the devices reached through it are online again with it (no hub restart)",
                  await ctx.wait(lambda: all(ctx.env.connectivity(c) is Connectivity.ONLINE
                                             for c in children),
                                 max(ctx.env.patience(c) for c in children) + 4),
                  f"{[(c.serial, ctx.env.connectivity(c).value) for c in children]}")


@implements("TC-RES-003")
async def hung_neighbour(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    second = await ctx.device("second")
    _, command = harmless(ctx, device)
    _, other_command = harmless(ctx, second)
    await ctx.inject(dut, Fault.HANG)
    hung = asyncio.create_task(ctx.env.hub.execute(device.id, fresh(command)))
    await asyncio.sleep(0.05)  # the hung command is on its way before the other one starts
    began = time.monotonic()
    other = await ctx.execute(second, fresh(other_command))
    other_took = time.monotonic() - began
    ctx.check("the other device's command completes before the hung one gives up",
              ok(other) and not hung.done(),
              f"other: {describe(other)} after {other_took:.2f} s; hung command "
              f"{'finished first' if hung.done() else 'still waiting'}")
    limit = ctx.env.patience(device) + 10
    try:
        outcome = await wait_for(hung, limit)
        ctx.check("the hung device's command ends with a device error", not ok(outcome),
                  f"it answered {describe(outcome)}")
    except DeviceError as exc:
        ctx.check("the hung device's command ends with a device error", True, describe(exc))
    except TimeoutError:
        ctx.check("the hung device's command ends with a device error", False,
                  f"still waiting after {limit:.0f} s")


@implements("TC-RES-004")
async def garbage(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    _, command = harmless(ctx, device)
    await ctx.inject(dut, Fault.GARBAGE)
    limit = ctx.env.patience(device) + 10
    for what, call in (("a status read", lambda: ctx.env.hub.read_status(device.id)),
                       ("a command", lambda: ctx.env.hub.execute(device.id, fresh(command)))):
        try:
            answer = await wait_for(call(), limit)
            ctx.check(f"{what} during garbage ends with a device error or a result", True,
                      f"answered {type(answer).__name__}")
        except DeviceError as exc:
            ctx.check(f"{what} during garbage ends with a device error or a result", True,
                      describe(exc))
        except TimeoutError:
            ctx.check(f"{what} during garbage ends with a device error or a result", False,
                      f"hung for {limit:.0f} s")
        except Exception as exc:
            ctx.check(f"{what} during garbage ends with a device error or a result", False,
                      f"{type(exc).__name__} escaped the plugin: {exc}")
    ctx.check("the hub keeps running", ctx.env.hub.started)
    await ctx.clear(dut, Fault.GARBAGE)
    ctx.check("afterwards the device is online",
              await ctx.online(device, ctx.env.patience(device) + 4),
              f"connectivity {ctx.env.connectivity(device).value}")
    after = await ctx.execute(device, fresh(command))
    ctx.check("afterwards a command succeeds", ok(after), describe(after))


@implements("TC-RES-005", whole_run=True)
async def loop_never_blocked(ctx: CaseContext) -> None:
    watch = ctx.env.watch
    figures = watch.figures()
    ctx.note(f"event loop lag over the run: {figures}")
    if not watch.lags:
        raise NotRun("the loop was not measured")
    for s in watch.stalls:
        if s.excused == "simulator":
            ctx.note(f"not counted: {s.seconds:.2f} s during {s.during} in the simulator's "
                     f"own code ({' <- '.join(reversed(s.where[-3:]))}); a real device costs "
                     "the hub's loop nothing")
        elif s.excused == "host":
            ctx.note(f"not counted: {s.seconds:.2f} s during {s.during}: the machine did not "
                     "run the kit's process (its watchdog thread was held up as long)")
    counted = watch.counted_stalls
    worst = watch.worst_counted
    where = "; ".join(f"{s.seconds:.2f} s during {s.during}: {' <- '.join(reversed(s.where[-3:]))}"
                      for s in counted[:3])
    ctx.check(f"the loop was never late by {watch.threshold:g} s or more",
              worst < watch.threshold and not counted,
              f"worst lag {worst:.3f} s" + (f"; stuck at {where}" if where else ""))


@implements("TC-RES-006")
async def stable_identity(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    registry = ctx.env.hub.registry
    # plain numbers: some protocols carry the version only as numbers (ZoneTech: registers
    # major*100+minor and build), so a suffix like "-conformance" could not be reported back
    firmware = "9.9.9"
    await ctx.inject(dut, Fault.REBOOT, firmware=firmware)

    async def recorded() -> bool:
        return (await registry.get_device(device.id)).firmware == firmware

    upgraded = await ctx.wait(recorded, ctx.env.patience(device) + 5)
    if dut.truth() is None and not upgraded:
        ctx.note("a real device: the new firmware version is whatever was installed")
        upgraded = (await registry.get_device(device.id)).firmware != device.firmware
    ctx.check("the registry records the new firmware", upgraded,
              f"registry says {(await registry.get_device(device.id)).firmware}")
    await ctx.online(device, ctx.env.patience(device) + 4)
    config = ctx.env.validate(dut.registration())
    try:
        info = await ctx.bounded("probe() answers", ctx.env.hub.probe(
            device.plugin, DeviceKind(device.kind), config), ctx.env.patience(device) + 5)
        ctx.check("after the upgrade the probe gives the same serial",
                  info.serial == device.serial, f"probe {info.serial}, registered "
                  f"{device.serial}")
    except DeviceError as exc:
        ctx.check("after the upgrade the probe gives the same serial", False, describe(exc))
    same = [d for d in await registry.list_devices(plugin=device.plugin)
            if d.serial == device.serial]
    ctx.check("the registry still holds the device once, under the same id",
              [d.id for d in same] == [device.id], f"devices with that serial: "
              f"{[d.id for d in same]}")
    moved = await ctx.target.moved(dut)
    new_settings = moved.registration()["config"]
    ctx.note(f"the device moved; new settings: {sorted(new_settings)}")
    # as an integrator would, update the settings once the device answers at its new address
    # (a device that reports its presence may still be "gone" from its old connection)
    moved_config = ctx.env.validate(moved.registration())

    async def answers() -> bool:
        try:
            await wait_for(ctx.env.hub.probe(device.plugin, DeviceKind(device.kind),
                                                     moved_config), ctx.env.patience(device))
        except (DeviceError, TimeoutError):
            return False
        return True

    if not await ctx.wait(answers, ctx.env.patience(device) + 5, interval=0.2):
        ctx.note("the device did not answer a probe at its new address before the update")
    try:
        updated = await registry.reconfigure(device.id, new_settings, ACTOR)
    except TTCSError as exc:
        ctx.require("the registry accepts the new settings for the same device", False,
                    describe(exc))
        return
    ctx.check("the registry accepts the new settings for the same device",
              updated.id == device.id and updated.serial == device.serial,
              f"now {updated.id} / {updated.serial}")
    ctx.env.devices["primary"] = updated
    await ctx.env.hub.supervise(updated)
    ctx.check("the device is online at its new address", await ctx.online(updated),
              f"connectivity {ctx.env.connectivity(updated).value}")
