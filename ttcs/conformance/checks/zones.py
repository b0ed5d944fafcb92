"""FM and wired profiles: RF, tuning, zones (receiver clusters or loudspeaker lines), telemetry.

What these cases expect of a station and its simulator (documented in the plugin guide):

- status telemetry ``zone.<id>`` (bool) per zone; FM also ``rf_on`` (bool), ``forward_power_w``
  and ``vswr`` (numbers) and ``frequency_mhz``;
- ground truth ``zone_changes`` (``{"at", "zones": {id: on}}``), ``rf_changes``
  (``{"at", "on"}``), ``tunes`` (``{"at", "frequency_mhz"}``), and ``state()["zones"]``.
"""

from __future__ import annotations

from ...core.errors import CommandRejected, DeviceError
from ...schemas import (
    CommandStatus,
    Device,
    DeviceStatus,
    SetRfCommand,
    SwitchZonesCommand,
    TuneCommand,
)
from ..context import CaseContext, Truth, describe, ok
from ..effects import ZONE_PREFIX, zones_in
from ..outcome import NotRun
from . import implements

UNKNOWN_ZONE = "no-such-zone-conformance"


async def live_status(ctx: CaseContext, device: Device) -> DeviceStatus:
    try:
        return await ctx.bounded("read_status() answers", ctx.env.hub.read_status(device.id),
                                 ctx.env.patience(device))
    except DeviceError as exc:
        ctx.require("read_status() returns a status", False, describe(exc))
        raise


def telemetry(ctx: CaseContext, device: Device, key: str) -> object:
    sup = ctx.env.hub.supervisors.get(device.id)
    return sup.status.telemetry.get(key) if sup and sup.status else None


def zone_changes(ctx: CaseContext, truth: Truth) -> list[dict[str, bool]]:
    return [e.get("zones", {}) for e in ctx.since(truth.get("zone_changes", []))]


def refused(outcome: object) -> bool:
    """Refused as it must be: a rejected result, or CommandRejected — not failed, not crashed."""
    if isinstance(outcome, CommandRejected):
        return True
    return getattr(outcome, "status", None) is CommandStatus.REJECTED


async def switch_and_check(ctx: CaseContext) -> None:
    """Switch one zone off and another on; the device and the hub's telemetry follow."""
    device, dut = await ctx.device(), await ctx.dut()
    zones = zones_in(await live_status(ctx, device))
    if not zones:
        ctx.require("the device reports its zones in telemetry (zone.<id>)", False,
                    "no zone.<id> readings")
    wanted = {zones[0]: False} | ({zones[1]: True} if len(zones) > 1 else {})
    result = await ctx.execute(device, SwitchZonesCommand(zones=wanted))
    ctx.require("the result is done", ok(result), describe(result))
    await ctx.observe(f"the device switched {wanted}", dut,
                      lambda t: any(all(c.get(z) == v for z, v in wanted.items())
                                    for c in zone_changes(ctx, t)),
                      f"Are the zones now {wanted}?", timeout=ctx.env.patience(device))
    ctx.check("the hub's telemetry shows the zones",
              await ctx.wait(lambda: all(telemetry(ctx, device, f"{ZONE_PREFIX}{z}") == v
                                         for z, v in wanted.items()),
                             ctx.env.patience(device)),
              f"telemetry {[telemetry(ctx, device, f'{ZONE_PREFIX}{z}') for z in wanted]}")


async def unknown_zone_refused(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    before = len((dut.truth() or {}).get("zone_changes", []))
    outcome = await ctx.execute(device, SwitchZonesCommand(zones={UNKNOWN_ZONE: True}))
    ctx.check("switching an unknown zone is refused", refused(outcome), describe(outcome))
    await ctx.observe("no zone changed", dut,
                      lambda t: len(t.get("zone_changes", [])) == before,
                      "Did every zone stay as it was?", timeout=0.5)


@implements("TC-FM-001")
async def rf_switch(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    for on in (False, True):
        result = await ctx.execute(device, SetRfCommand(on=on))
        ctx.require(f"switching RF {'on' if on else 'off'} is done", ok(result),
                    describe(result))
        await ctx.observe(f"the transmitter's RF is {'on' if on else 'off'}", dut,
                          lambda t: [e.get("on") for e in ctx.since(
                              t.get("rf_changes", []))][-1:] == [on],  # noqa: B023
                          f"Is the transmitter's RF output {'on' if on else 'off'}?",
                          timeout=ctx.env.patience(device))
        ctx.check(f"the hub's telemetry rf_on is {on}",
                  await ctx.wait(lambda: telemetry(ctx, device, "rf_on") is on,  # noqa: B023
                                 ctx.env.patience(device)),
                  f"rf_on {telemetry(ctx, device, 'rf_on')!r}")


@implements("TC-FM-002")
async def tune(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    current = telemetry(ctx, device, "frequency_mhz")
    target = 61.5 if current != 61.5 else 57.25
    result = await ctx.execute(device, TuneCommand(frequency_mhz=target))
    ctx.require("the result is done", ok(result), describe(result))
    await ctx.observe(f"the transmitter uses {target} MHz", dut,
                      lambda t: [e.get("frequency_mhz") for e in
                                 ctx.since(t.get("tunes", []))][-1:] == [target],
                      f"Does the transmitter now send on {target} MHz?",
                      timeout=ctx.env.patience(device))
    ctx.check(f"the hub's telemetry shows {target} MHz",
              await ctx.wait(lambda: telemetry(ctx, device, "frequency_mhz") == target,
                             ctx.env.patience(device)),
              f"frequency_mhz {telemetry(ctx, device, 'frequency_mhz')!r}")


@implements("TC-FM-003")
async def receiver_zones(ctx: CaseContext) -> None:
    await switch_and_check(ctx)
    await unknown_zone_refused(ctx)


@implements("TC-FM-004")
async def rf_telemetry(ctx: CaseContext) -> None:
    device = await ctx.device()
    status = await live_status(ctx, device)
    values = status.telemetry
    for key in ("forward_power_w", "vswr"):
        value = values.get(key)
        ctx.check(f"telemetry has the number {key}",
                  isinstance(value, int | float) and not isinstance(value, bool),
                  f"{key} = {value!r}")
    ctx.check("telemetry says rf_on is true", values.get("rf_on") is True,
              f"rf_on = {values.get('rf_on')!r}")


@implements("TC-WIRED-001")
async def lines_switched(ctx: CaseContext) -> None:
    await switch_and_check(ctx)


@implements("TC-WIRED-002")
async def unknown_line(ctx: CaseContext) -> None:
    await unknown_zone_refused(ctx)


@implements("TC-WIRED-003")
async def zone_telemetry(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    status = await live_status(ctx, device)
    reported = {z: status.telemetry[f"{ZONE_PREFIX}{z}"] for z in zones_in(status)}
    ctx.check("telemetry has a boolean zone.<id> per line", bool(reported),
              f"telemetry keys {sorted(status.telemetry)}")
    state = dut.state()
    if state is None:
        answer = await dut.confirm(f"Are exactly these lines live: "
                                   f"{[z for z, on in reported.items() if on]}?")
        if answer is None:
            raise NotRun("comparing the telemetry with the relays needs a person")
        ctx.check("the telemetry equals the relay states (confirmed at the device)", answer)
        return
    relays = state.get("zones")
    ctx.check("the telemetry equals the relay states on the device", reported == relays,
              f"telemetry {reported}, device {relays}")
