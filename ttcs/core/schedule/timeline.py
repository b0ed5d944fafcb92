"""Resolving one device's schedule: the same inputs always give the same timeline, and every
placement carries the reason for it.

Order of precedence, applied to the occurrences of every broadcast that targets the device:

1. *emergency* items first, at their requested time; two overlapping emergencies play one
   after the other (the one created first, first);
2. *priority* items next, in the commune's own order (``rank``), then by requested time;
3. *normal* items the commune accepted, by requested time.

A non-emergency item that collides with something already placed moves later, but never out
of the session window it asked for, past its validity, or past a policy limit (minutes per
session, sessions per day, weekdays, quiet hours) — it is then left out, with the reason.
Emergencies are exempt from policy. Ties break on creation time, then on the key, so the
result never depends on input order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ...schemas import BulletinLevel
from .policy import TZ, Policy, Slot, violations, window_of


@dataclass(frozen=True)
class Occurrence:
    """One requested play of a broadcast on a device."""

    key: str
    broadcast_id: str
    level: BulletinLevel
    start: datetime
    seconds: float
    created_at: datetime
    rank: int = 0  # the commune's order among its priority items (lower plays first)
    latest_end: datetime | None = None  # end of the broadcast's validity window
    label: str = ""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Placement:
    occurrence: Occurrence
    start: datetime | None
    end: datetime | None
    reason: str

    @property
    def placed(self) -> bool:
        return self.start is not None


def precedence(o: Occurrence) -> tuple[int, int, datetime, datetime, str]:
    rank = o.rank if o.level is BulletinLevel.PRIORITY else 0
    return (-o.level.rank, rank, o.start, o.created_at, o.key)


def resolve(occurrences: Iterable[Occurrence], policy: Policy | None = None) -> list[Placement]:
    """Place every occurrence (or explain why not); result sorted by time."""
    placed: list[Placement] = []
    results: list[Placement] = []
    for occ in sorted(occurrences, key=precedence):
        result = (_place_emergency(occ, placed) if occ.level is BulletinLevel.EMERGENCY
                  else _place_regular(occ, placed, policy))
        results.append(result)
        if result.placed:
            placed.append(result)
    return sorted(results, key=lambda p: (p.start or p.occurrence.start, precedence(
        p.occurrence)))


def _conflicts(placed: list[Placement], start: datetime, end: datetime) -> list[Placement]:
    return [p for p in placed if p.start is not None and p.end is not None
            and p.start < end and start < p.end]


def _place_emergency(occ: Occurrence, placed: list[Placement]) -> Placement:
    start, after = occ.start, None
    duration = timedelta(seconds=occ.seconds)
    while clash := _conflicts(placed, start, start + duration):
        last = max(clash, key=lambda p: p.end or start)
        assert last.end is not None
        start, after = last.end, last
    if after is None:
        return Placement(occ, start, start + duration, "emergency: plays at once, preempting "
                                                      "anything of lower level")
    return Placement(occ, start, start + duration,
                     f"emergency: after emergency {after.occurrence.label or after.occurrence.key}"
                     f" that was created first ({_hm(occ.start)}→{_hm(start)})")


def _place_regular(occ: Occurrence, placed: list[Placement], policy: Policy | None
                   ) -> Placement:
    duration = timedelta(seconds=occ.seconds)
    window_end: datetime | None = None
    if policy is not None and policy.session_windows is not None:
        held = window_of(policy, occ.start, occ.start + duration)
        if held is None:
            return Placement(occ, None, None, "left out: not inside a session window")
        window_end = held[2]
    start, pushed_by = occ.start, None
    for _ in range(10_000):
        end = start + duration
        if occ.latest_end is not None and end > occ.latest_end:
            return Placement(occ, None, None, f"left out: no room before its validity ends "
                                              f"({_hm(occ.latest_end)})" + _by(pushed_by))
        if window_end is not None and end > window_end:
            return Placement(occ, None, None, f"left out: its session is full until "
                                              f"{_hm(window_end)}" + _by(pushed_by))
        clash = _conflicts(placed, start, end)
        if clash:
            pushed_by = max(clash, key=lambda p: p.end or start)
            assert pushed_by.end is not None
            start = pushed_by.end
            continue
        if policy is not None:
            regular = [Slot(p.start, p.end) for p in placed if p.start and p.end
                       and p.occurrence.level is not BulletinLevel.EMERGENCY]
            broken = violations(policy, "", start, occ.seconds, regular)
            if broken:
                return Placement(occ, None, None, "left out: " + "; ".join(
                    f"{v.rule}: {v.message}" for v in broken))
        if pushed_by is None:
            return Placement(occ, start, end, f"{occ.level.value}: at the requested time")
        return Placement(occ, start, end, f"{occ.level.value}: moved {_hm(occ.start)}→"
                                          f"{_hm(start)}" + _by(pushed_by))
    return Placement(occ, None, None, "left out: the schedule is too crowded")


def _by(p: Placement | None) -> str:
    if p is None:
        return ""
    o = p.occurrence
    return f", after {o.level.value} item {o.label or o.key}"


def _hm(moment: datetime) -> str:
    return f"{moment.astimezone(TZ):%H:%M:%S}"
