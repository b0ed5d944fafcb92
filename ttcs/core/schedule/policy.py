"""Broadcast policy per area: which days, how many sessions, which windows, how long.

A policy is a set of optional rules. The *effective* policy of a commune is built in layers,
later layers overriding earlier ones rule by rule:

1. the policy file's defaults for the commune's area type (ward = urban, commune = rural ...);
2. explicit policies set on its ancestors, from the root down;
3. the commune's own explicit policy.

Emergencies are exempt from every rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ...schemas import AreaType, Model
from ...schemas.errors import explain
from ..errors import InvalidInput

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class TimeRange(Model):
    """A daily clock range in local time; ``end < start`` crosses midnight (22:00-05:00)."""

    start: time
    end: time
    name: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> TimeRange:
        if self.start == self.end:
            raise ValueError("a time range needs start != end")
        return self

    def label(self) -> str:
        span = f"{self.start:%H:%M}–{self.end:%H:%M}"
        return f"{self.name} {span}" if self.name else span

    def on(self, day: date) -> tuple[datetime, datetime]:
        """The absolute interval of this range starting on ``day`` (local time)."""
        start = datetime.combine(day, self.start, TZ)
        end = datetime.combine(day, self.end, TZ)
        if end <= start:
            end += timedelta(days=1)
        return start, end


class Policy(Model):
    """Rules for non-emergency broadcasts; ``None`` means "not set at this layer"."""

    weekdays: list[str] | None = Field(default=None, description="allowed days, mon..sun")
    sessions_per_day: int | None = Field(default=None, ge=1, le=24)
    session_windows: list[TimeRange] | None = None
    max_minutes_per_session: float | None = Field(default=None, gt=0, le=24 * 60)
    quiet_hours: list[TimeRange] | None = None

    @field_validator("weekdays")
    @classmethod
    def _days(cls, days: list[str] | None) -> list[str] | None:
        if days is None:
            return None
        bad = [d for d in days if d.lower() not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown weekday(s) {bad}; use {', '.join(WEEKDAYS)}")
        return [d.lower() for d in days]

    def over(self, base: Policy) -> Policy:
        """This policy's rules where set, ``base``'s elsewhere."""
        mine = self.model_dump(exclude_none=True)
        return Policy.model_validate({**base.model_dump(exclude_none=True), **mine})


class PolicyFile(Model):
    name: str
    source: str | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    by_type: dict[AreaType, Policy] = Field(default_factory=dict)


def load_policy_file(path: Path | None = None) -> PolicyFile:
    """The policy file at ``path``, or the shipped Hanoi 2021 sample."""
    try:
        if path is None:
            text = (resources.files("ttcs.data") / "policies" / "hanoi-2021.yaml").read_text(
                encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        return PolicyFile.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        raise InvalidInput(f"policy file {path}: {explain(exc)}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read policy file {path}: {exc}") from exc


@dataclass(frozen=True)
class Violation:
    """One broken rule, named so that an operator knows what to change."""

    rule: str
    area_code: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.area_code}): {self.message}"


@dataclass(frozen=True)
class Slot:
    """An item already in (or entering) a commune's schedule: [start, end)."""

    start: datetime
    end: datetime
    label: str = ""


def window_of(policy: Policy, start: datetime, end: datetime
              ) -> tuple[TimeRange, datetime, datetime] | None:
    """The session window that holds all of [start, end), with its absolute bounds."""
    for window in policy.session_windows or []:
        for day in (start.astimezone(TZ).date() - timedelta(days=1),
                    start.astimezone(TZ).date()):
            w_start, w_end = window.on(day)
            if w_start <= start and end <= w_end:
                return window, w_start, w_end
    return None


def violations(policy: Policy, area_code: str, start: datetime, seconds: float,
               existing: list[Slot]) -> list[Violation]:
    """Every rule that an item [start, start+seconds) would break, given ``existing`` items
    of the same commune. An empty list means it may be scheduled."""
    found: list[Violation] = []
    end = start + timedelta(seconds=seconds)
    local = start.astimezone(TZ)
    day = local.date()

    def broke(rule: str, message: str) -> None:
        found.append(Violation(rule, area_code, message))

    if policy.weekdays is not None and WEEKDAYS[local.weekday()] not in policy.weekdays:
        allowed = ", ".join(WEEKDAY_NAMES[WEEKDAYS.index(d)] for d in policy.weekdays)
        broke("weekdays", f"{WEEKDAY_NAMES[local.weekday()]} {day} is not an allowed day "
                          f"(allowed: {allowed})")
    for quiet in policy.quiet_hours or []:
        for d in (day - timedelta(days=1), day):
            q_start, q_end = quiet.on(d)
            if start < q_end and q_start < end:
                broke("quiet_hours", f"{_span(start, end)} falls in quiet hours {quiet.label()}")
                break
    minutes = seconds / 60
    if policy.max_minutes_per_session is not None and minutes > policy.max_minutes_per_session:
        broke("max_minutes_per_session", f"the item lasts {minutes:.1f} min, more than the "
                                         f"{policy.max_minutes_per_session:g} min a session "
                                         "may last")
    if policy.session_windows is not None:
        held = window_of(policy, start, end)
        if held is None:
            windows = ", ".join(w.label() for w in policy.session_windows)
            broke("session_windows", f"{_span(start, end)} is not inside a session window "
                                     f"({windows})")
        else:
            window, w_start, w_end = held
            same = [s for s in existing if w_start <= s.start < w_end]
            total = minutes + sum((s.end - s.start).total_seconds() / 60 for s in same)
            if (policy.max_minutes_per_session is not None and same
                    and total > policy.max_minutes_per_session):
                broke("max_minutes_per_session",
                      f"with what is already scheduled in the {window.label()} session "
                      f"({len(same)} item(s)), it would last {total:.1f} min, more than "
                      f"{policy.max_minutes_per_session:g}")
            if policy.sessions_per_day is not None:
                used = {_window_key(policy, s) for s in existing
                        if s.start.astimezone(TZ).date() == day}
                used.discard(None)
                used.add(window.label())
                if len(used) > policy.sessions_per_day:
                    broke("sessions_per_day", f"{day} would have {len(used)} sessions "
                                              f"({', '.join(sorted(str(u) for u in used))}), "
                                              f"more than {policy.sessions_per_day}")
    return found


def _window_key(policy: Policy, slot: Slot) -> str | None:
    held = window_of(policy, slot.start, slot.end)
    return held[0].label() if held else None


def _span(start: datetime, end: datetime) -> str:
    a, b = start.astimezone(TZ), end.astimezone(TZ)
    return f"{a:%a %Y-%m-%d %H:%M}–{b:%H:%M}"


def describe(policy: Policy) -> dict[str, Any]:
    """A readable summary of the effective rules (for ``ttcs policy show``)."""
    return policy.model_dump(mode="json", exclude_none=True)
