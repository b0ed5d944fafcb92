"""Packing the hub's timeline into Sao Khuê schedule rows loses and adds no slot."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ttcs.plugins.saokhue.schedule import device_zone, slots, to_items, weekday_number
from ttcs.schemas import ScheduleEntry

BASE = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SHA = {"a": "a" * 64, "b": "b" * 64}


def entry(start: datetime, content: str = "a", volume: int | None = None) -> ScheduleEntry:
    return ScheduleEntry(id=f"e{start.timestamp():.0f}{content}", content_id=f"ct-{content}",
                         broadcast_id=f"bc-{content}", start=start, volume=volume,
                         media={"url": f"http://hub/media/{content}", "sha256": SHA[content],
                                "size": 10, "duration": 30})


def expanded(entries: list[ScheduleEntry]) -> Counter[tuple[str | None, int | None, datetime]]:
    return Counter((row.ma_nd, row.vol, at) for row in to_items(entries)
                   for at in slots(row))


def wanted(entries: list[ScheduleEntry]) -> Counter[tuple[str | None, int | None, datetime]]:
    """Each distinct (item, second) once: the device plays a slot once however often the
    timeline named it."""
    zone = device_zone(7)
    out = set()
    for e in entries:
        local = e.start.astimezone(zone)
        if local.microsecond:
            local = local.replace(microsecond=0) + timedelta(seconds=1)
        out.add((e.content_id, e.volume, local))
    return Counter(out)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20 * 24 * 3600 * 1000), st.sampled_from("ab"),
                          st.sampled_from([None, 40, 80])), max_size=40))
def test_rows_hold_exactly_the_entries_slots(raw: list[tuple[int, str, int | None]]) -> None:
    entries = [entry(BASE + timedelta(milliseconds=ms), content, volume)
               for ms, content, volume in raw]
    assert expanded(entries) == wanted(entries)


def test_the_same_times_on_consecutive_days_are_one_row() -> None:
    entries = [entry(BASE + timedelta(days=d, hours=h)) for d in range(14) for h in (0, 10)]
    (row,) = to_items(entries)
    assert row.thu == [2, 3, 4, 5, 6, 7, 8] and len(row.gio) == 2
    assert (row.tu_ngay, row.den_ngay) == ("2026-03-02", "2026-03-15")


def test_weekdays_only_become_one_row_with_a_weekday_list() -> None:
    days = [BASE + timedelta(days=d) for d in range(14) if (BASE + timedelta(days=d)).weekday()
            < 5]
    (row,) = to_items([entry(d - timedelta(minutes=30)) for d in days])  # 06:30 at UTC+7
    assert row.thu == [2, 3, 4, 5, 6] and row.gio == ["06:30:00"]


def test_vietnamese_weekday_numbers_run_from_monday_2_to_sunday_8() -> None:
    assert [weekday_number(date(2026, 3, 2) + timedelta(days=n)) for n in range(7)] == [
        2, 3, 4, 5, 6, 7, 8]


def test_a_slot_is_rounded_up_to_the_second_never_early() -> None:
    (row,) = to_items([entry(BASE + timedelta(seconds=5, microseconds=1))])
    assert row.gio == ["07:00:06"]
