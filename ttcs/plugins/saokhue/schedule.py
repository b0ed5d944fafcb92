"""The hub's schedule as the Sao Khuê schedule table, and the table's slots back in time.

The hub sends a device its resolved timeline: a list of :class:`ScheduleEntry` with absolute
start times. The firmware stores *rows* instead — one media item with a date range, a list of
weekdays and a list of local times — and holds at most :data:`~.protocol.MAX_ITEMS` of them.
:func:`to_items` packs entries into as few rows as it can without changing a single slot;
:func:`slots` expands a row back into its slots (the simulator plays from it, the tests
check ``slots(to_items(entries)) == entries``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone

from ...schemas import ScheduleEntry
from .protocol import ScheduleItem, wire_id

LEVEL_TO_PRIORITY = {"normal": 1, "priority": 2, "emergency": 3}
PRIORITY_TO_LEVEL = {v: k for k, v in LEVEL_TO_PRIORITY.items()}


def device_zone(offset_hours: int) -> timezone:
    return timezone(timedelta(hours=offset_hours))


def weekday_number(day: date) -> int:
    """Vietnamese weekday number: 2 = Monday … 7 = Saturday, 8 = Sunday."""
    return day.weekday() + 2


def _local_second(at: datetime, zone: timezone) -> datetime:
    """``at`` in the device's zone, rounded *up* to the second (the table has no fractions,
    and a slot must never fire before the hub meant it to)."""
    local = at.astimezone(zone)
    if local.microsecond:
        local = local.replace(microsecond=0) + timedelta(seconds=1)
    return local


def _what(entry: ScheduleEntry) -> tuple[object, ...]:
    """What plays, apart from when: entries equal in this can share a row."""
    media = entry.media
    return (entry.content_id, entry.broadcast_id, str(media.url), media.sha256, media.size,
            media.duration, entry.level.value, entry.volume, entry.repeat)


def to_items(entries: Iterable[ScheduleEntry], offset_hours: int = 7) -> list[ScheduleItem]:
    """Pack ``entries`` into schedule rows; the rows' slots are exactly the entries' starts."""
    zone = device_zone(offset_hours)
    groups: dict[tuple[object, ...], list[ScheduleEntry]] = defaultdict(list)
    for entry in entries:
        groups[_what(entry)].append(entry)
    items: list[ScheduleItem] = []
    for key, group in sorted(groups.items(), key=lambda kv: min(e.start for e in kv[1])):
        times_by_date: dict[date, set[time]] = defaultdict(set)
        for entry in group:
            local = _local_second(entry.start, zone)
            times_by_date[local.date()].add(local.time())
        dates_by_times: dict[frozenset[time], list[date]] = defaultdict(list)
        for day, day_times in times_by_date.items():
            dates_by_times[frozenset(day_times)].append(day)
        first = group[0]
        for times, days in sorted(dates_by_times.items(), key=lambda kv: min(kv[1])):
            for first_day, last_day, weekdays in _runs(sorted(days)):
                clock = sorted(t.strftime("%H:%M:%S") for t in times)
                row_key = json.dumps([repr(key), first_day.isoformat(), last_day.isoformat(),
                                      weekdays, clock])
                items.append(ScheduleItem(
                    ma_lich="lc-" + hashlib.sha256(row_key.encode()).hexdigest()[:16],
                    ma_nd=wire_id(first.content_id, "nd-"),
                    ma_ct=wire_id(first.broadcast_id, "ct-"),
                    url=str(first.media.url), sha256=first.media.sha256,
                    kich_thuoc=first.media.size,
                    thoi_luong=first.media.duration if first.media.duration is not None else 0,
                    uu_tien=LEVEL_TO_PRIORITY[first.level.value], vol=first.volume,
                    lap=first.repeat, tu_ngay=first_day.isoformat(),
                    den_ngay=last_day.isoformat(), thu=weekdays, gio=clock))
    return items


def _runs(days: list[date]) -> Iterator[tuple[date, date, list[int]]]:
    """Split sorted dates into (first, last, weekdays) runs such that the dates from first to
    last whose weekday is listed are exactly the dates given — greedily, longest first."""
    i = 0
    while i < len(days):
        j = i
        weekdays = {weekday_number(days[i])}
        while j + 1 < len(days):
            wider = weekdays | {weekday_number(days[j + 1])}
            if _covers_exactly(days[i:j + 2], wider):
                weekdays, j = wider, j + 1
            else:
                break
        yield days[i], days[j], sorted(weekdays)
        i = j + 1


def _covers_exactly(days: list[date], weekdays: set[int]) -> bool:
    first, last = days[0], days[-1]
    wanted = set(days)
    span = (last - first).days
    return all(((first + timedelta(n)) in wanted)
               == (weekday_number(first + timedelta(n)) in weekdays) for n in range(span + 1))


def slots(item: ScheduleItem, offset_hours: int = 7, *, after: datetime | None = None,
          until: datetime | None = None) -> Iterator[datetime]:
    """The row's slots in time order, as aware datetimes, within (``after``, ``until``]."""
    zone = device_zone(offset_hours)
    day = date.fromisoformat(item.tu_ngay)
    last = date.fromisoformat(item.den_ngay)
    if after is not None:
        day = max(day, after.astimezone(zone).date())
    clock = sorted(time.fromisoformat(t) for t in item.gio)
    while day <= last:
        if until is not None and datetime.combine(day, time(), zone) > until:
            return
        if weekday_number(day) in item.thu:
            for t in clock:
                at = datetime.combine(day, t, zone)
                if (after is None or at > after) and (until is None or at <= until):
                    yield at
        day += timedelta(days=1)


def next_slot(items: Iterable[ScheduleItem], after: datetime, offset_hours: int = 7
              ) -> tuple[datetime, ScheduleItem] | None:
    """The first slot of any row strictly after ``after``."""
    best: tuple[datetime, ScheduleItem] | None = None
    for item in items:
        found = next(slots(item, offset_hours, after=after), None)
        if found is not None and (best is None or found < best[0]):
            best = (found, item)
    return best
