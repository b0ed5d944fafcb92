"""Commands the hub sends to devices, and their results.

Every command carries an ``idempotency_key``: a device (or driver) that sees the same key twice
must not act twice. That is what lets the hub retry after a crash without a speaker playing a
bulletin twice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AnyUrl, Field, TypeAdapter, model_validator

from .base import AwareDatetime, Identifier, Model, Percent, new_id, utcnow
from .content import BulletinLevel, MediaRef
from .device import Capability


class _CommandBase(Model):
    id: Identifier = Field(default_factory=lambda: new_id("cmd"))
    idempotency_key: str = Field(default="", max_length=200,
                                 description="same key = same command; empty means use the id")
    issued_at: AwareDatetime = Field(default_factory=utcnow)
    expires_at: AwareDatetime | None = None

    #: Capability a device must have for this command; checked before the driver sees it.
    capability: ClassVar[Capability | None] = None

    @model_validator(mode="after")
    def _default_key(self) -> _CommandBase:
        if not self.idempotency_key:
            self.idempotency_key = self.id
        return self


class PlayCommand(_CommandBase):
    """Play approved audio (a media file or a live stream) now."""

    type: Literal["play"] = "play"
    content_id: Identifier | None = None
    broadcast_id: Identifier | None = None
    media: MediaRef | None = None
    stream_url: AnyUrl | None = None
    level: BulletinLevel = BulletinLevel.NORMAL
    volume: Percent | None = None
    repeat: int = Field(default=1, ge=1, le=100)
    signature: str | None = Field(default=None,
                                  description="approval signature, for devices that verify it")
    capability: ClassVar[Capability | None] = Capability.AUDIO_PLAY

    @model_validator(mode="after")
    def _has_source(self) -> PlayCommand:
        if self.media is None and self.stream_url is None:
            raise ValueError("play needs 'media' or 'stream_url'")
        return self


class StopCommand(_CommandBase):
    """Stop what plays (only ``content_id`` if given)."""

    type: Literal["stop"] = "stop"
    content_id: Identifier | None = None
    capability: ClassVar[Capability | None] = Capability.AUDIO_PLAY


class SetVolumeCommand(_CommandBase):
    type: Literal["set_volume"] = "set_volume"
    volume: Percent
    capability: ClassVar[Capability | None] = Capability.AUDIO_VOLUME


class PowerCommand(_CommandBase):
    type: Literal["power"] = "power"
    on: bool
    capability: ClassVar[Capability | None] = Capability.POWER


class RebootCommand(_CommandBase):
    type: Literal["reboot"] = "reboot"
    capability: ClassVar[Capability | None] = Capability.REBOOT


class TestToneCommand(_CommandBase):
    type: Literal["test_tone"] = "test_tone"
    seconds: float = Field(default=3.0, gt=0, le=60)
    frequency: int = Field(default=1000, ge=20, le=20000)
    capability: ClassVar[Capability | None] = Capability.AUDIO_TEST_TONE


class ShowCommand(_CommandBase):
    """Show text and/or media on a board."""

    type: Literal["show"] = "show"
    content_id: Identifier | None = None
    broadcast_id: Identifier | None = None
    text: str | None = Field(default=None, max_length=5000)
    media: MediaRef | None = None
    level: BulletinLevel = BulletinLevel.NORMAL
    seconds: float | None = Field(default=None, gt=0, description="how long; None = until cleared")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    signature: str | None = None
    capability: ClassVar[Capability | None] = Capability.DISPLAY_TEXT

    @model_validator(mode="after")
    def _has_body(self) -> ShowCommand:
        if not self.text and self.media is None:
            raise ValueError("show needs 'text' or 'media'")
        return self


class ClearCommand(_CommandBase):
    type: Literal["clear"] = "clear"
    capability: ClassVar[Capability | None] = Capability.DISPLAY_TEXT


class SetBrightnessCommand(_CommandBase):
    type: Literal["set_brightness"] = "set_brightness"
    brightness: Percent
    capability: ClassVar[Capability | None] = Capability.DISPLAY_BRIGHTNESS


class ScreenshotCommand(_CommandBase):
    type: Literal["screenshot"] = "screenshot"
    capability: ClassVar[Capability | None] = Capability.DISPLAY_SCREENSHOT


class SwitchZonesCommand(_CommandBase):
    """Switch loudspeaker lines (wired) or receiver clusters (FM) on or off by zone id."""

    type: Literal["switch_zones"] = "switch_zones"
    zones: dict[str, bool] = Field(min_length=1, description="zone id -> on")
    capability: ClassVar[Capability | None] = Capability.ZONES_SWITCH


class SetRfCommand(_CommandBase):
    type: Literal["set_rf"] = "set_rf"
    on: bool
    capability: ClassVar[Capability | None] = Capability.FM_RF


class TuneCommand(_CommandBase):
    type: Literal["tune"] = "tune"
    frequency_mhz: float = Field(ge=54.0, le=68.0, description="FM band for TTCS: 54-68 MHz")
    capability: ClassVar[Capability | None] = Capability.FM_TUNE


class ScheduleEntry(Model):
    """One item of a schedule kept on the device itself."""

    id: Identifier
    content_id: Identifier | None = None
    broadcast_id: Identifier | None = Field(
        default=None, description="the broadcast it belongs to, for the device's proof of play")
    media: MediaRef
    start: AwareDatetime
    level: BulletinLevel = BulletinLevel.NORMAL
    volume: Percent | None = None
    repeat: int = Field(default=1, ge=1, le=100)
    signature: str | None = None


class SyncScheduleCommand(_CommandBase):
    """Replace the device's local schedule with ``entries`` (for devices with schedule.local)."""

    type: Literal["sync_schedule"] = "sync_schedule"
    entries: list[ScheduleEntry] = Field(default_factory=list)
    capability: ClassVar[Capability | None] = Capability.SCHEDULE_LOCAL


Command = Annotated[
    PlayCommand | StopCommand | SetVolumeCommand | PowerCommand | RebootCommand
    | TestToneCommand | ShowCommand | ClearCommand | SetBrightnessCommand | ScreenshotCommand
    | SwitchZonesCommand | SetRfCommand | TuneCommand | SyncScheduleCommand,
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def parse_command(data: Any) -> Command:
    """Validate a command from a dict or JSON text (raises ``pydantic.ValidationError``)."""
    if isinstance(data, str | bytes):
        return COMMAND_ADAPTER.validate_json(data)
    return COMMAND_ADAPTER.validate_python(data)


class CommandStatus(StrEnum):
    ACCEPTED = "accepted"  # taken, will complete later (an event follows)
    DONE = "done"
    REJECTED = "rejected"  # the device refused it (bad input, not allowed); do not retry
    FAILED = "failed"  # it tried and failed


class CommandResult(Model):
    command_id: Identifier
    status: CommandStatus
    code: str = Field(default="ok", max_length=100, description="machine-readable reason")
    detail: str | None = Field(default=None, max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict, description="e.g. a screenshot")
    at: AwareDatetime = Field(default_factory=utcnow)

    @property
    def ok(self) -> bool:
        return self.status in (CommandStatus.ACCEPTED, CommandStatus.DONE)
