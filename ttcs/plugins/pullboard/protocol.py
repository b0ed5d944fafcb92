"""The HaLong pull-board protocol: what a board behind 4G NAT and the hub say to each other.

The board connects *out*: every ``poll_interval`` seconds it sends one request, and the
answer carries everything the hub has for it::

    POST {hub}/pullboard/v1/boards/{serial}/poll
    Authorization: Bearer <the board's token>
    Content-Type: application/json

    Heartbeat  →  200 PollReply   (401 wrong token, 404 unknown board, 400 not a heartbeat)

- The :class:`Heartbeat` says who the board is and how it is (firmware, temperature,
  brightness, what it shows, its playlist version), carries the results of the commands it
  carried out since its last successful poll, and, when asked, its whole playlist.
- The :class:`PollReply` carries the commands still waiting for a result (a board must
  recognise a command it already carried out by its ``idempotency_key`` and answer the same
  result again), the playlist when the board's version is not the hub's, the power schedule,
  and the poll interval the hub wants.

Device-to-hub messages ignore unknown fields, so newer firmware can add some.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...schemas import CommandStatus, DeviceKind, MediaRef

PATH = "/pullboard/v1/boards/{serial}/poll"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WireItem(_Wire):
    """One playlist item. Media is fetched by the board itself and checked by SHA-256."""

    id: str = Field(min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=5000)
    media: MediaRef | None = None
    duration: float = Field(default=10.0, ge=0.5, le=86400)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    priority: int = Field(default=0, ge=0, le=2, description="2 = emergency, preempts")


class Playlist(_Wire):
    version: str = Field(max_length=64, description="opaque; the board echoes it back")
    items: list[WireItem] = Field(default_factory=list, max_length=200)


class PowerScheduleWire(_Wire):
    on: str = Field(pattern=r"^\d{2}:\d{2}$")
    off: str = Field(pattern=r"^\d{2}:\d{2}$")


class BoardCommand(_Wire):
    """A command queued for the board (display changes travel in the playlist instead)."""

    id: str
    idempotency_key: str
    type: Literal["set_brightness", "power", "screenshot", "reboot"]
    brightness: int | None = Field(default=None, ge=0, le=100)
    on: bool | None = None


class CommandOutcome(_Wire):
    """The board's result for one command."""

    command_id: str
    idempotency_key: str
    status: CommandStatus
    code: str = "ok"
    detail: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ItemRejection(_Wire):
    """A playlist item the board refused (media altered or unreachable, bad window)."""

    item_id: str
    code: str
    reason: str = ""


class Screen(_Wire):
    lit: bool = True
    dark_reason: str | None = None
    item_id: str | None = None
    kind: str | None = None
    text: str | None = None
    since: datetime | None = None


class Heartbeat(_Wire):
    """One poll from the board."""

    serial: str = Field(min_length=1, max_length=128)
    vendor: str = "HaLong Signage"
    model: str
    firmware: str
    kind: DeviceKind
    mac: str | None = None
    boot_id: str = ""
    uptime: float = 0.0
    temperature: float | None = None
    brightness: int | None = Field(default=None, ge=0, le=100)
    power_on: bool = True
    power_source: Literal["mains", "battery"] = "mains"
    battery: int | None = Field(default=None, ge=0, le=100)
    signal: int | None = Field(default=None, description="4G signal, dBm")
    storage_total: int = 0
    storage_free: int = 0
    screen: Screen = Field(default_factory=Screen)
    playlist_version: str | None = None
    playlist: Playlist | None = None
    rejected: list[ItemRejection] = Field(default_factory=list,
                                          description="refused items of playlist_version")
    results: list[CommandOutcome] = Field(default_factory=list)
    power_schedule: PowerScheduleWire | None = None
    bye: bool = Field(default=False, description="the board is leaving (switched off cleanly)")


class PollReply(_Wire):
    """The hub's answer to a poll."""

    server_time: datetime
    poll_interval: float
    commands: list[BoardCommand] = Field(default_factory=list)
    playlist: Playlist | None = None
    send_playlist: bool = Field(default=False,
                                description="send your whole playlist with the next poll")
    power_schedule: PowerScheduleWire | None = None


__all__ = ["PATH", "BoardCommand", "CommandOutcome", "Heartbeat", "ItemRejection", "Playlist",
           "PollReply", "PowerScheduleWire", "Screen", "WireItem"]
