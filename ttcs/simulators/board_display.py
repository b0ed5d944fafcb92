"""The face of a simulated LED/LCD board: playlist rotation, validity, brightness, power.

Both board simulators (the push board and the pull board) drive one :class:`BoardDisplay`.
It decides what is on the screen at every moment, the way board firmware does:

- items rotate in playlist order, each for its ``duration`` seconds;
- an item is shown only inside its validity window (``valid_from`` … ``valid_until``); items
  that are not valid yet wait, expired items are dropped, and both are noted in the ground
  truth as *skipped*;
- while any valid item has priority 2 (an emergency), only such items are shown;
- a new item put on the playlist is shown at once if it is valid;
- the screen is dark when switched off, outside the power schedule, or without power; on
  battery the brightness is capped to save energy.

Every change of what is visible is recorded in :class:`BoardTruth` (``shown``: what, from
when, until when, at what brightness, why it ended), and :meth:`BoardDisplay.render_png`
draws the screen — current item, its text and image — into a real PNG whose text chunks also
name the item, so a test can check it exactly and a person can look at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ..aio import cancel_and_wait, wait_event
from .base import GroundTruth, now

#: boards in Vietnam keep local time for their power schedules
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

#: brightness cap while running on battery
BATTERY_BRIGHTNESS_CAP = 30

#: priority of an emergency item (it preempts every other item while valid)
EMERGENCY = 2


@dataclass
class BoardTruth(GroundTruth):
    """What a simulated board really did, beyond the common :class:`GroundTruth`.

    ``shown`` entries: ``{"at", "until", "item_id", "kind", "text", "media", "brightness",
    "outcome"}`` (``until``/``outcome`` filled when the item leaves the screen).
    """

    brightness_changes: list[dict[str, Any]] = field(default_factory=list)
    power_changes: list[dict[str, Any]] = field(default_factory=list)
    power_schedules: list[dict[str, Any]] = field(default_factory=list)
    playlists: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    screenshots: int = 0


@dataclass
class BoardItem:
    """One playlist item as the board stores it."""

    id: str
    text: str | None = None
    media: str | None = None  # sha256 of an image/video asset
    media_mime: str | None = None
    duration: float = 10.0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    priority: int = 0

    @property
    def kind(self) -> str:
        if self.media is None:
            return "text"
        return "video" if (self.media_mime or "").startswith("video/") else "image"

    def valid_at(self, t: datetime) -> bool:
        return ((self.valid_from is None or self.valid_from <= t)
                and (self.valid_until is None or t < self.valid_until))

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text, "media": self.media,
                "duration": self.duration, "priority": self.priority,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None}


@dataclass(frozen=True)
class PowerSchedule:
    """Daily on/off times in local time; ``on > off`` spans midnight (on 05:30, off 22:00)."""

    on: time
    off: time

    @classmethod
    def parse(cls, on: str, off: str) -> PowerSchedule:
        return cls(time.fromisoformat(on), time.fromisoformat(off))

    def lit_at(self, t: datetime) -> bool:
        local = t.astimezone(LOCAL_TZ).time()
        if self.on == self.off:
            return True
        if self.on < self.off:
            return self.on <= local < self.off
        return local >= self.on or local < self.off

    def next_change(self, t: datetime) -> datetime:
        local = t.astimezone(LOCAL_TZ)
        candidates = []
        for day in (0, 1):
            for moment in (self.on, self.off):
                at = datetime.combine(local.date() + timedelta(days=day), moment, LOCAL_TZ)
                if at > local:
                    candidates.append(at)
        return min(candidates)

    def to_json(self) -> dict[str, str]:
        return {"on": self.on.strftime("%H:%M"), "off": self.off.strftime("%H:%M")}


class BoardDisplay:
    """The screen of one simulated board. Call :meth:`start` once; every setter re-evaluates."""

    def __init__(self, truth: BoardTruth, *, width: int, height: int, led: bool,
                 assets: Callable[[str], bytes | None],
                 clock: Callable[[], datetime] = now) -> None:
        self.truth = truth
        self.width, self.height, self.led = width, height, led
        self._assets = assets
        self._clock = clock
        self.items: list[BoardItem] = []
        self.brightness = 80
        self.switched_on = True
        self.powered = True  # mains or battery present
        self.on_battery = False
        self.schedule: PowerSchedule | None = None
        self.current: BoardItem | None = None
        self.current_since: datetime | None = None
        self._record: dict[str, Any] | None = None
        self._jump_to: str | None = None
        self._skipped_seen: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="board-display")

    async def stop(self, outcome: str = "stopped") -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task, "board display")
        self._leave(outcome)

    # -- state --------------------------------------------------------------------------------

    @property
    def effective_brightness(self) -> int:
        return min(self.brightness, BATTERY_BRIGHTNESS_CAP) if self.on_battery else self.brightness

    def dark_reason(self, t: datetime | None = None) -> str | None:
        """Why the screen is dark now (``None``: it is lit)."""
        if not self.powered:
            return "power_lost"
        if not self.switched_on:
            return "switched_off"
        if self.schedule is not None and not self.schedule.lit_at(t or self._clock()):
            return "schedule_off"
        return None

    def set_playlist(self, items: list[BoardItem], version: str | int) -> None:
        old = {i.id for i in self.items}
        self.items = list(items)
        self.truth.playlists.append({"at": self._clock(), "version": version,
                                     "items": [i.summary() for i in items]})
        new = [i for i in items if i.id not in old]
        self._jump_to = new[0].id if new else None
        t = self._clock()
        for item in items:
            if item.valid_from is not None and item.valid_from > t:
                self._skip(item, "not_yet_valid")
        self.refresh()

    def set_brightness(self, level: int, source: str = "api") -> None:
        self.brightness = level
        self.truth.brightness_changes.append({"at": self._clock(), "level": level,
                                              "effective": self.effective_brightness,
                                              "source": source})
        self.refresh()

    def set_battery(self, on_battery: bool) -> None:
        self.on_battery = on_battery
        self.truth.brightness_changes.append({"at": self._clock(), "level": self.brightness,
                                              "effective": self.effective_brightness,
                                              "source": "battery" if on_battery else "mains"})
        self.refresh()

    def switch(self, on: bool, reason: str = "api") -> None:
        self.switched_on = on
        self.truth.power_changes.append({"at": self._clock(), "on": on, "reason": reason})
        self.refresh()

    def set_power(self, powered: bool) -> None:
        """Mains and battery gone (``False``) or back; the playlist survives (flash)."""
        self.powered = powered
        self.truth.power_changes.append({"at": self._clock(), "on": powered,
                                         "reason": "power_restored" if powered else "power_lost"})
        self.refresh()

    def set_schedule(self, schedule: PowerSchedule | None) -> None:
        if schedule == self.schedule:
            return
        self.schedule = schedule
        self.truth.power_schedules.append({"at": self._clock(), "schedule":
                                           schedule.to_json() if schedule else None})
        self.refresh()

    def refresh(self) -> None:
        """Re-evaluate what is shown (now, and the rotation task's next deadline)."""
        self._evaluate()
        self._wake.set()

    def snapshot(self) -> dict[str, Any]:
        """What is on the screen, for status answers and the simulator's state."""
        item = self.current
        return {"lit": self.dark_reason() is None, "dark_reason": self.dark_reason(),
                "item_id": item.id if item else None, "kind": item.kind if item else None,
                "text": item.text if item else None, "media": item.media if item else None,
                "since": self.current_since.isoformat() if item and self.current_since else None,
                "brightness": self.effective_brightness}

    # -- rotation -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            self._evaluate()
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(
                0.0, (deadline - self._clock()).total_seconds())
            await wait_event(self._wake, timeout)

    def _eligible(self, t: datetime) -> list[BoardItem]:
        expired = [i for i in self.items if i.valid_until is not None and i.valid_until <= t]
        for item in expired:
            self._skip(item, "expired")
        if expired:
            self.items = [i for i in self.items if i not in expired]
        valid = [i for i in self.items if i.valid_at(t)]
        urgent = [i for i in valid if i.priority >= EMERGENCY]
        return urgent or valid

    def _evaluate(self) -> None:
        t = self._clock()
        eligible = self._eligible(t)
        dark = self.dark_reason(t)
        if dark is not None:
            self._show(None, t, outcome=dark)
            return
        if not eligible:
            self._show(None, t, outcome="ended")
            return
        jump = next((i for i in eligible if i.id == self._jump_to), None)
        if jump is not None:
            self._jump_to = None
            self._show(jump, t, outcome="replaced")
            return
        current = self.current
        if current is not None:
            same = next((i for i in eligible if i.id == current.id), None)
            if same is not None:
                if same != current:  # edited in place: show the new content
                    self._show(same, t, outcome="replaced")
                    return
                assert self.current_since is not None
                if (t - self.current_since).total_seconds() < current.duration:
                    return
        # rotate: the item after the current one in playlist order
        order = [i.id for i in eligible]
        index = order.index(current.id) + 1 if current and current.id in order else 0
        following = eligible[index % len(eligible)]
        if current is not None and following.id == current.id:
            self.current_since = t  # alone on the playlist: keeps showing
            return
        self._show(following, t, outcome="rotated")

    def _show(self, item: BoardItem | None, t: datetime, *, outcome: str) -> None:
        if item is None and self.current is None:
            return
        self._leave(outcome, t)
        self.current, self.current_since = item, (t if item else None)
        if item is not None:
            self._record = {"at": t, "until": None, "item_id": item.id, "kind": item.kind,
                            "text": item.text, "media": item.media,
                            "brightness": self.effective_brightness, "outcome": "showing"}
            self.truth.shown.append(self._record)

    def _leave(self, outcome: str, t: datetime | None = None) -> None:
        if self._record is not None:
            self._record["until"] = t or self._clock()
            self._record["outcome"] = outcome
            self._record = None
        if outcome in ("power_lost", "stopped"):
            self.current, self.current_since = None, None

    def _skip(self, item: BoardItem, reason: str) -> None:
        if (item.id, reason) in self._skipped_seen:
            return
        self._skipped_seen.add((item.id, reason))
        self.truth.skipped.append({"at": self._clock(), "item_id": item.id, "reason": reason,
                                   "valid_from": item.valid_from, "valid_until": item.valid_until})

    def _next_deadline(self) -> datetime | None:
        t = self._clock()
        moments: list[datetime] = []
        if self.current is not None and self.current_since is not None:
            moments.append(self.current_since + timedelta(seconds=self.current.duration))
        for item in self.items:
            for moment in (item.valid_from, item.valid_until):
                if moment is not None and moment > t:
                    moments.append(moment)
        if self.schedule is not None:
            moments.append(self.schedule.next_change(t))
        return min(moments) if moments else None

    # -- rendering ----------------------------------------------------------------------------

    def render_png(self) -> bytes:
        """Draw the screen as it looks now into a PNG (dark when off; dimmed by brightness).

        Text chunks ``ttcs:item``, ``ttcs:text``, ``ttcs:kind``, ``ttcs:state`` and
        ``ttcs:brightness`` repeat what is drawn, for tests and for people with an image viewer.
        """
        from PIL import Image, ImageDraw, PngImagePlugin

        image = Image.new("RGB", (self.width, self.height), (0, 0, 0))
        item = self.current
        dark = self.dark_reason()
        if dark is None and item is not None:
            draw = ImageDraw.Draw(image)
            text_top = 0
            if item.media is not None:
                area_h = self.height if not item.text else self.height * 2 // 3
                self._draw_media(image, draw, item, area_h)
                text_top = area_h
            if item.text:
                self._draw_text(draw, item.text, text_top)
            level = self.effective_brightness / 100
            image = image.point(lambda v: int(v * level))
        info = PngImagePlugin.PngInfo()
        info.add_itxt("ttcs:item", item.id if item and dark is None else "")
        info.add_itxt("ttcs:text", (item.text or "") if item and dark is None else "")
        info.add_itxt("ttcs:kind", item.kind if item and dark is None else "")
        info.add_itxt("ttcs:state", dark or ("showing" if item else "blank"))
        info.add_itxt("ttcs:brightness", str(self.effective_brightness))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=info, optimize=False)
        self.truth.screenshots += 1
        return buffer.getvalue()

    def _draw_media(self, image: Any, draw: Any, item: BoardItem, area_h: int) -> None:
        from PIL import Image, UnidentifiedImageError

        data = self._assets(item.media) if item.media else None
        if item.kind == "image" and data:
            try:
                picture = Image.open(io.BytesIO(data)).convert("RGB")
                picture.thumbnail((self.width, area_h))
                x = (self.width - picture.width) // 2
                y = (area_h - picture.height) // 2
                image.paste(picture, (x, y))
                return
            except (UnidentifiedImageError, OSError, ValueError):
                pass  # unreadable picture: the board shows a placeholder, as firmware does
        draw.rectangle((0, 0, self.width - 1, area_h - 1), fill=(10, 30, 90))
        label = f"{'VIDEO' if item.kind == 'video' else 'IMAGE'} {(item.media or '')[:8]}"
        draw.text((4, 4), label, fill=(220, 220, 255), font=_font(max(10, area_h // 6)))

    def _draw_text(self, draw: Any, text: str, top: int) -> None:
        colour = (255, 176, 0) if self.led else (255, 255, 255)
        height = self.height - top
        size = max(10, min(height // 2, self.height // 5))
        while True:
            font = _font(size)
            lines = _wrap(draw, text, font, self.width - 8)
            line_h = size + 2
            if len(lines) * line_h <= height or size <= 10:
                break
            size -= 2
        y = top + max(0, (height - len(lines) * line_h) // 2)
        for line in lines:
            if y + line_h > self.height + line_h // 2:
                break
            draw.text((4, y), line, fill=colour, font=font)
            y += line_h


@lru_cache(maxsize=32)
def _font(size: int) -> Any:
    from PIL import ImageFont

    # DejaVu covers Vietnamese; Pillow's own font is the fallback on a bare system
    for name in ("DejaVuSans.ttf", "DejaVuSansCondensed.ttf", "NotoSans-Regular.ttf"):
        with contextlib.suppress(OSError):
            return ImageFont.truetype(name, size)
    return ImageFont.load_default(size)


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


__all__ = ["BATTERY_BRIGHTNESS_CAP", "EMERGENCY", "LOCAL_TZ", "BoardDisplay", "BoardItem",
           "BoardTruth", "PowerSchedule"]
