"""Events: everything that happens in the hub, as typed records on one bus."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from .base import AwareDatetime, Identifier, Model, new_id, utcnow
from .command import CommandResult
from .device import Connectivity, DeviceInfo, DeviceStatus


class _EventBase(Model):
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: AwareDatetime = Field(default_factory=utcnow)
    device_id: Identifier | None = None
    area_code: Identifier | None = None


class DeviceStatusEvent(_EventBase):
    type: Literal["device.status"] = "device.status"
    status: DeviceStatus


class ConnectivityEvent(_EventBase):
    """A device's connectivity changed (after hysteresis)."""

    type: Literal["device.connectivity"] = "device.connectivity"
    previous: Connectivity
    current: Connectivity
    reason: str | None = None
    #: set when the device went offline only because its parent did (the parent's own
    #: offline alarm stands for the whole station; the child raises none of its own)
    via_parent: Identifier | None = None


class DeviceDiscoveredEvent(_EventBase):
    type: Literal["device.discovered"] = "device.discovered"
    plugin: Identifier
    info: DeviceInfo


class CommandResultEvent(_EventBase):
    type: Literal["command.result"] = "command.result"
    result: CommandResult


class PlayPhase(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class PlayEvent(_EventBase):
    """Proof of play: a device reports that an item started, finished, failed or was cut."""

    type: Literal["play"] = "play"
    phase: PlayPhase
    content_id: Identifier | None = None
    command_id: Identifier | None = None
    broadcast_id: Identifier | None = None
    device_time: AwareDatetime | None = Field(default=None,
                                              description="when it happened, by the device clock")
    detail: str | None = None


class AlarmSeverity(StrEnum):
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"


class AlarmEvent(_EventBase):
    """An alarm condition raised or cleared; one per condition, not one per poll."""

    type: Literal["alarm"] = "alarm"
    code: str = Field(max_length=100, examples=["offline_too_long", "on_battery", "high_vswr"])
    raised: bool
    severity: AlarmSeverity = AlarmSeverity.MAJOR
    detail: str | None = None


class AuditEvent(_EventBase):
    type: Literal["audit"] = "audit"
    actor: str
    action: str = Field(examples=["device.add", "area.merge"])
    target: str | None = None
    outcome: Literal["ok", "denied", "failed"] = "ok"
    detail: dict[str, Any] = Field(default_factory=dict)


Event = Annotated[
    DeviceStatusEvent | ConnectivityEvent | DeviceDiscoveredEvent | CommandResultEvent
    | PlayEvent | AlarmEvent | AuditEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

