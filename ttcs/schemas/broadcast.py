"""Broadcasts: a content item, where it goes, and when."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from .base import AwareDatetime, Identifier, Model, Percent, utcnow
from .content import BulletinLevel
from .device import DeviceKind


class Targets(Model):
    """Any mix of areas (any level), groups, device ids and device kinds.

    Areas, groups and devices are united; ``kinds``, when given, narrows the result.
    """

    areas: list[Identifier] = Field(default_factory=list)
    groups: list[Identifier] = Field(default_factory=list)
    devices: list[Identifier] = Field(default_factory=list)
    kinds: list[DeviceKind] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Targets:
        if not (self.areas or self.groups or self.devices):
            raise ValueError("targets need at least one area, group or device")
        return self


class ScheduleKind(StrEnum):
    NOW = "now"
    AT = "at"
    RECURRING = "recurring"


class Schedule(Model):
    """When a broadcast plays: now, at a time, or by an RFC 5545 RRULE in local time."""

    kind: ScheduleKind = ScheduleKind.NOW
    at: AwareDatetime | None = Field(default=None, description="start, for 'at' and first "
                                     "occurrence of 'recurring'")
    rrule: str | None = Field(default=None, max_length=500,
                              examples=["FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=6;BYMINUTE=30"])
    timezone: Literal["Asia/Ho_Chi_Minh"] | str = "Asia/Ho_Chi_Minh"

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if self.kind is ScheduleKind.AT and self.at is None:
            raise ValueError("a schedule of kind 'at' needs 'at'")
        if self.kind is ScheduleKind.RECURRING and not self.rrule:
            raise ValueError("a recurring schedule needs 'rrule' (RFC 5545)")
        return self


class BroadcastState(StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    DONE = "done"
    CANCELLED = "cancelled"


class Broadcast(Model):
    id: Identifier
    content_id: Identifier
    targets: Targets
    schedule: Schedule = Field(default_factory=Schedule)
    level: BulletinLevel | None = Field(default=None,
                                        description="defaults to the content's level")
    volume: Percent | None = None
    repeat: int = Field(default=1, ge=1, le=100)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    state: BroadcastState = BroadcastState.SCHEDULED
    created_by: str | None = None
    created_at: AwareDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _window(self) -> Broadcast:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self
