"""Display profile: text, media, clear, brightness, screenshot, validity windows.

Ground truth read here: ``shown`` entries ``{"at", "until", "item_id", "text", "media"}`` (one
per time an item came on the screen; ``until`` set when it left) and ``brightness_changes``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from ...core.errors import DeviceError
from ...schemas import (
    ClearCommand,
    Content,
    Device,
    ScreenshotCommand,
    SetBrightnessCommand,
    ShowCommand,
    new_id,
)
from ..context import CaseContext, Truth, describe, ok
from ..environment import AREA
from . import implements

PNG = b"\x89PNG\r\n\x1a\n"
#: how far a board's own timing may lag a validity boundary (its timer, the loop)
WINDOW_SLACK = timedelta(seconds=1.0)


def show_text(ctx: CaseContext, item: Content, **fields: Any) -> ShowCommand:
    return ShowCommand(content_id=item.id, text=item.text,
                       signature=ctx.env.hub.content.approval_token(item), **fields)


def shown(ctx: CaseContext, truth: Truth, item_id: str | None = None) -> list[dict[str, Any]]:
    entries = ctx.since(truth.get("shown", []))
    return [e for e in entries if item_id is None or e.get("item_id") == item_id]


def on_screen(truth: Truth) -> list[dict[str, Any]]:
    """What is on the screen now: entries that have not left it."""
    return [e for e in truth.get("shown", []) if e.get("until") is None]


async def clear(ctx: CaseContext, device: Device) -> None:
    result = await ctx.execute(device, ClearCommand())
    if not ok(result):
        ctx.note(f"clearing the board before the case: {describe(result)}")


@implements("TC-DISPLAY-001")
async def shows_text(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    item = ctx.env.bulletins.text  # type: ignore[union-attr]
    result = await ctx.execute(device, show_text(ctx, item))
    ctx.require("the result is done", ok(result), describe(result))
    await ctx.observe("the board shows the approved text", dut,
                      lambda t: any(e.get("text") == item.text for e in shown(ctx, t, item.id)),
                      f"Does the board show: «{item.text}»?", timeout=ctx.env.patience(device))


@implements("TC-DISPLAY-002")
async def shows_media(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    item = ctx.env.bulletins.picture  # type: ignore[union-attr]
    playable = await ctx.env.hub.content.playable(item, AREA)
    command = ShowCommand(content_id=item.id, media=playable.media,
                          signature=playable.signature)
    result = await ctx.execute(device, command)
    ctx.require("the result is done", ok(result), describe(result))
    assert item.media is not None
    sha = item.media.sha256
    await ctx.observe("the board shows the picture with the approved SHA-256", dut,
                      lambda t: any(e.get("media") == sha for e in shown(ctx, t, item.id)),
                      "Does the board show the green test picture?",
                      timeout=ctx.env.patience(device))


@implements("TC-DISPLAY-003")
async def clears(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    item = ctx.env.bulletins.text  # type: ignore[union-attr]
    first = await ctx.execute(device, show_text(ctx, item))
    ctx.require("an item is shown first", ok(first), describe(first))
    if dut.truth() is not None:
        await ctx.wait(lambda: bool(on_screen(dut.truth() or {})), ctx.env.patience(device))
    result = await ctx.execute(device, ClearCommand())
    ctx.require("the result is done", ok(result), describe(result))
    await ctx.observe("nothing is shown any more", dut, lambda t: not on_screen(t),
                      "Is the board empty now?", timeout=ctx.env.patience(device),
                      explain=lambda t: f"still on screen: "
                      f"{[e.get('item_id') for e in on_screen(t)]}")
    sup = ctx.env.hub.supervisors[device.id]
    ctx.check("the hub's status shows no current item",
              await ctx.wait(lambda: sup.status is not None and sup.status.current_item is None,
                             ctx.env.patience(device)),
              f"current item {sup.status.current_item if sup.status else None}")


@implements("TC-DISPLAY-004")
async def brightness(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    sup = ctx.env.hub.supervisors[device.id]
    value = 43 if sup.status is None or sup.status.brightness != 43 else 61
    result = await ctx.execute(device, SetBrightnessCommand(brightness=value))
    ctx.require("the result is done", ok(result), describe(result))
    await ctx.observe(f"the board's brightness is {value}", dut,
                      lambda t: [e.get("level") for e in
                                 ctx.since(t.get("brightness_changes", []))][-1:] == [value],
                      f"Is the board's brightness now {value}%?",
                      timeout=ctx.env.patience(device))
    ctx.check(f"the hub's status shows brightness {value}",
              await ctx.wait(lambda: sup.status is not None and sup.status.brightness == value,
                             ctx.env.patience(device)),
              f"status brightness {sup.status.brightness if sup.status else None}")


def _png_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(PNG) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@implements("TC-DISPLAY-005")
async def screenshot(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    item = ctx.env.bulletins.text  # type: ignore[union-attr]
    shown_first = await ctx.execute(device, show_text(ctx, item))
    ctx.require("a known item is shown first", ok(shown_first), describe(shown_first))
    if dut.truth() is not None:
        await ctx.wait(lambda: any(e.get("item_id") == item.id
                                   for e in on_screen(dut.truth() or {})),
                       ctx.env.patience(device))
    result = await ctx.execute(device, ScreenshotCommand())
    ctx.require("the screenshot is taken", ok(result), describe(result))
    assert not isinstance(result, DeviceError)
    try:
        image = base64.b64decode(str(result.data.get("png_base64", "")), validate=True)
    except ValueError:
        image = b""
    size = _png_size(image)
    ctx.check("the result carries a PNG image", size is not None,
              f"{len(image)} bytes starting {image[:8]!r}")
    ctx.check("the PNG's size is the width and height the result states",
              size == (result.data.get("width"), result.data.get("height")),
              f"PNG {size}, stated {result.data.get('width')}x{result.data.get('height')}")
    named = result.data.get("current_item")
    truth = dut.truth()
    if truth is not None:
        now = [e.get("item_id") for e in on_screen(truth)]
        ctx.check("the result names the item the board really shows", named in now,
                  f"result names {named!r}, the board shows {now}")
    else:
        ctx.check("the result names the item shown", named == item.id,
                  f"result names {named!r}, shown {item.id!r}")


@implements("TC-DISPLAY-006")
async def validity(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    await clear(ctx, device)
    item = ctx.env.bulletins.text  # type: ignore[union-attr]
    now = datetime.now(UTC)
    starts, ends = now + timedelta(seconds=1.0), now + timedelta(seconds=2.2)
    command = show_text(ctx, item, valid_from=starts, valid_until=ends)
    result = await ctx.execute(device, command)
    ctx.require("the windowed item is accepted", ok(result), describe(result))

    def in_window(truth: Truth) -> bool:
        entries = shown(ctx, truth, item.id)
        if not entries or any(e.get("until") is None for e in entries):
            return False
        return all(datetime.fromisoformat(e["at"]) >= starts - WINDOW_SLACK / 10
                   and datetime.fromisoformat(e["until"]) <= ends + WINDOW_SLACK
                   for e in entries)

    limit = (ends - datetime.now(UTC)).total_seconds() + ctx.env.patience(device)
    await ctx.observe(
        "the item was shown only inside its window, and is gone after it", dut, in_window,
        "Did the notice appear about a second after it was sent, and go a second later?",
        timeout=max(limit, 1.0),
        explain=lambda t: f"window {starts.time()}–{ends.time()}, shown "
        f"{[(e.get('at'), e.get('until')) for e in shown(ctx, t, item.id)]}")
    impossible = ShowCommand(content_id=item.id, text=item.text, id=new_id("cmd"),
                             signature=ctx.env.hub.content.approval_token(item),
                             valid_from=datetime.now(UTC) + timedelta(seconds=10),
                             valid_until=datetime.now(UTC) + timedelta(seconds=5))
    mark = len(shown(ctx, dut.truth() or {}, item.id))
    answer = await ctx.execute(device, impossible)
    ctx.check("the item whose window ends before it starts is refused",
              not ok(answer), describe(answer))
    await ctx.observe("the impossible item is not shown", dut,
                      lambda t: len(shown(ctx, t, item.id)) == mark and not on_screen(t),
                      "Is the board still empty?", timeout=0.5)
