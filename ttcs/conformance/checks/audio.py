"""Audio profile: play, stop, volume, levels and preemption, proof of play, streams, and the
schedule a device keeps itself.

Ground truth read here: ``plays`` entries ``{"started_at", "ended_at", "content_id",
"command_id", "level", "outcome"}`` (outcome: playing, finished, interrupted, stopped, …).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ...schemas import (
    BulletinLevel,
    Content,
    Device,
    PlayCommand,
    PlayEvent,
    PlayPhase,
    SetVolumeCommand,
    StopCommand,
)
from ...simulators.base import Fault
from ..context import CaseContext, Truth, describe, ok
from ..environment import AREA
from . import implements
from .delivery import on_schedule, schedule, schedule_lead


async def play_command(ctx: CaseContext, item: Content,
                       level: BulletinLevel | None = None) -> PlayCommand:
    """What the dispatcher would send for ``item``: media by signed URL and approval token."""
    playable = await ctx.env.hub.content.playable(item, AREA)
    return PlayCommand(content_id=item.id, media=playable.media, signature=playable.signature,
                       level=level or item.level)


def plays_of(ctx: CaseContext, truth: Truth, command_id: str) -> list[dict[str, Any]]:
    return [p for p in ctx.since(truth.get("plays", []), key="started_at")
            if p.get("command_id") == command_id]


def outcome_of(ctx: CaseContext, truth: Truth, command_id: str) -> str | None:
    plays = plays_of(ctx, truth, command_id)
    return str(plays[-1].get("outcome")) if plays else None


async def _stop(ctx: CaseContext, device: Device) -> None:
    """Leave the speaker silent for the next case (not a check)."""
    result = await ctx.execute(device, StopCommand())
    if not ok(result):
        ctx.note(f"stopping after the case: {describe(result)}")


@implements("TC-AUDIO-001")
async def plays_approved_audio(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    item = ctx.env.bulletins.short  # type: ignore[union-attr]
    command = await play_command(ctx, item)
    result = await ctx.execute(device, command)
    ctx.require("the result is accepted or done", ok(result), describe(result))
    await ctx.observe("the device played that bulletin", dut,
                      lambda t: any(p.get("content_id") == item.id
                                    for p in plays_of(ctx, t, command.id)),
                      f"Did the device play the short test bulletin '{item.title}'?",
                      timeout=ctx.env.patience(device))


@implements("TC-AUDIO-002")
async def stop_ends_play(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    command = await play_command(ctx, ctx.env.bulletins.long)  # type: ignore[union-attr]
    result = await ctx.execute(device, command)
    ctx.require("the long bulletin starts", ok(result), describe(result))
    if dut.truth() is not None:
        await ctx.wait(lambda: outcome_of(ctx, dut.truth() or {}, command.id) == "playing",
                       ctx.env.patience(device))
    stop = await ctx.execute(device, StopCommand())
    ctx.check("the stop result is accepted or done", ok(stop), describe(stop))
    await ctx.observe("the bulletin ended as stopped", dut,
                      lambda t: outcome_of(ctx, t, command.id) == "stopped",
                      "Did the long bulletin stop at once?", timeout=ctx.env.patience(device),
                      explain=lambda t: f"outcome {outcome_of(ctx, t, command.id)}")


@implements("TC-AUDIO-003")
async def volume(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    sup = ctx.env.hub.supervisors[device.id]
    value = 41 if sup.status is None or sup.status.volume != 41 else 58
    result = await ctx.execute(device, SetVolumeCommand(volume=value))
    ctx.require("the result is done", ok(result), describe(result))
    await ctx.observe(f"the device's volume is {value}", dut,
                      lambda t: [v for _, v in ctx.since(t.get("volume_changes", []))][-1:]
                      == [value],
                      f"Is the speaker's volume now {value}?", timeout=ctx.env.patience(device))
    ctx.check(f"the hub's status shows volume {value}",
              await ctx.wait(lambda: sup.status is not None and sup.status.volume == value,
                             ctx.env.patience(device)),
              f"status volume {sup.status.volume if sup.status else None}")


@implements("TC-AUDIO-004")
async def preemption(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    bulletins = ctx.env.bulletins
    assert bulletins is not None
    normal = await play_command(ctx, bulletins.long, BulletinLevel.NORMAL)
    result = await ctx.execute(device, normal)
    ctx.require("the normal bulletin starts", ok(result), describe(result))
    if dut.truth() is not None:
        await ctx.wait(lambda: outcome_of(ctx, dut.truth() or {}, normal.id) == "playing",
                       ctx.env.patience(device))
    emergency = await play_command(ctx, bulletins.emergency, BulletinLevel.EMERGENCY)
    result = await ctx.execute(device, emergency)
    ctx.require("the emergency is accepted", ok(result), describe(result))
    await ctx.observe(
        "the normal bulletin was interrupted and the emergency plays", dut,
        lambda t: outcome_of(ctx, t, normal.id) == "interrupted"
        and outcome_of(ctx, t, emergency.id) == "playing",
        "Did the emergency cut the normal bulletin and play at once?",
        timeout=ctx.env.patience(device),
        explain=lambda t: f"normal {outcome_of(ctx, t, normal.id)}, emergency "
        f"{outcome_of(ctx, t, emergency.id)}")
    later = await play_command(ctx, bulletins.short, BulletinLevel.NORMAL)
    answer = await ctx.execute(device, later)
    ctx.note(f"a normal bulletin during the emergency: {describe(answer)}")
    await ctx.observe(
        "the later normal bulletin did not interrupt the emergency", dut,
        lambda t: outcome_of(ctx, t, emergency.id) == "playing",
        "Did the emergency go on playing (the normal bulletin did not cut it)?", timeout=1.0,
        explain=lambda t: f"emergency {outcome_of(ctx, t, emergency.id)}, later normal "
        f"{outcome_of(ctx, t, later.id)}")
    await _stop(ctx, device)


@implements("TC-AUDIO-005")
async def proof_of_play(ctx: CaseContext) -> None:
    device = await ctx.device()
    mark = len(ctx.env.events)
    item = ctx.env.bulletins.short  # type: ignore[union-attr]
    command = await play_command(ctx, item)
    result = await ctx.execute(device, command)
    ctx.require("the result is accepted or done", ok(result), describe(result))

    def phases() -> list[PlayEvent]:
        return [e for e in ctx.env.events[mark:] if isinstance(e, PlayEvent)
                and e.command_id == command.id and e.device_id == device.id]

    finished = await ctx.wait(lambda: any(e.phase is PlayPhase.FINISHED for e in phases()),
                              ctx.env.patience(device) + 2)
    seen = [e.phase.value for e in phases()]
    ctx.check("the hub received 'started' and 'finished' for the command",
              finished and PlayPhase.STARTED.value in seen, f"phases seen: {seen}")
    ctx.check("the events arrived in order", seen[:1] == ["started"] and seen[-1:] == ["finished"],
              f"phases seen: {seen}")
    ctx.check("the events name the content", all(e.content_id == item.id for e in phases()),
              f"content ids {[e.content_id for e in phases()]}")


@implements("TC-AUDIO-006")
async def stream(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    command = PlayCommand(stream_url="http://127.0.0.1:9/conformance/live.mp3")
    result = await ctx.execute(device, command)
    ctx.require("the result is accepted or done", ok(result), describe(result))
    await ctx.observe("the device played the stream", dut,
                      lambda t: bool(plays_of(ctx, t, command.id)),
                      "Did the device play the stream?", timeout=ctx.env.patience(device))
    await _stop(ctx, device)



@implements("TC-AUDIO-007")
async def own_schedule(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    item = ctx.env.bulletins.short  # type: ignore[union-attr]
    mark = len(ctx.env.events)
    lead = schedule_lead(ctx, device)
    at = datetime.now(UTC) + timedelta(seconds=lead)
    broadcast_id, refusal = await schedule(ctx, item, device.id, lead)
    ctx.require("the bulletin can be scheduled", refusal is None, refusal)
    clock = f"{at.astimezone(ZoneInfo('Asia/Ho_Chi_Minh')):%H:%M:%S}"
    await ctx.observe("the bulletin is on the device's schedule before its time", dut,
                      lambda t: on_schedule(t, item.id, ctx),
                      f"Does the station's schedule list '{item.title}' at {clock}?",
                      timeout=max(0.1, (at - datetime.now(UTC)).total_seconds() - 0.3))
    await ctx.inject(dut, Fault.OFFLINE)
    # what did not happen yet can only be seen once its time has come: wait past the slot
    end = at + timedelta(seconds=(item.media.duration if item.media and item.media.duration
                                  else 1.0) + 1.0)
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))

    def plays(truth: Truth) -> list[dict[str, Any]]:
        return [p for p in ctx.since(truth.get("plays", []), key="started_at")
                if p.get("broadcast_id") == broadcast_id]

    await ctx.observe(
        "the device played it at its time, not before, while it was off the network", dut,
        lambda t: any(datetime.fromisoformat(p["started_at"]) >= at
                      and datetime.fromisoformat(p["started_at"]) <= end
                      for p in plays(t)),
        f"While the station was off the network, did it play '{item.title}' at {clock}?",
        timeout=ctx.env.patience(device),
        explain=lambda t: f"plays of the broadcast: {_when(plays(t))}, slot {at.isoformat()}")
    await ctx.clear(dut, Fault.OFFLINE)

    def phases() -> list[PlayEvent]:
        return [e for e in ctx.env.events[mark:] if isinstance(e, PlayEvent)
                and e.broadcast_id == broadcast_id and e.device_id == device.id]

    done = await ctx.wait(lambda: {PlayPhase.STARTED, PlayPhase.FINISHED}
                          <= {e.phase for e in phases()}, ctx.env.patience(device) + 4)
    ctx.check("once the device is back the hub has its proof of play (started, finished)",
              done, f"phases seen: {[e.phase.value for e in phases()]}")
    ctx.check("the proof of play names the content", bool(phases())
              and all(e.content_id == item.id for e in phases()),
              f"content ids {[e.content_id for e in phases()]}")


def _when(plays: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(p.get("started_at"), p.get("outcome")) for p in plays]
