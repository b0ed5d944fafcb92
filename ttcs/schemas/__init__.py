"""The common device and content schema: one set of pydantic v2 models for the whole hub.

Everything that crosses a boundary (API, device, file, plugin) is validated by these models;
JSON Schema files generated from them live in ``docs/spec/`` for vendors who write firmware in
other languages (``make spec``).
"""

from .area import COMMUNE_LEVEL, VILLAGE_LEVEL, Area, AreaType
from .base import AwareDatetime, Identifier, Model, new_id, utcnow
from .broadcast import Broadcast, BroadcastState, Schedule, ScheduleKind, Targets
from .command import (
    COMMAND_ADAPTER,
    ClearCommand,
    Command,
    CommandResult,
    CommandStatus,
    PlayCommand,
    PowerCommand,
    RebootCommand,
    ScheduleEntry,
    ScreenshotCommand,
    SetBrightnessCommand,
    SetRfCommand,
    SetVolumeCommand,
    ShowCommand,
    StopCommand,
    SwitchZonesCommand,
    SyncScheduleCommand,
    TestToneCommand,
    TuneCommand,
    parse_command,
)
from .content import (
    Approval,
    ApprovalState,
    BulletinLevel,
    Content,
    ContentKind,
    IssuingLevel,
    MediaRef,
)
from .device import (
    Activity,
    Capability,
    Connectivity,
    Device,
    DeviceChanges,
    DeviceInfo,
    DeviceKind,
    DeviceSpec,
    DeviceStatus,
    DiscoveredDevice,
    Group,
    GroupChanges,
    Location,
    PowerSource,
)
from .event import (
    EVENT_ADAPTER,
    AlarmEvent,
    AlarmSeverity,
    AuditEvent,
    CommandResultEvent,
    ConnectivityEvent,
    DeviceDiscoveredEvent,
    DeviceStatusEvent,
    Event,
    PlayEvent,
    PlayPhase,
)
from .plugin import IotClass, PluginManifest, Protocol

__all__ = [
    "COMMAND_ADAPTER", "COMMUNE_LEVEL", "EVENT_ADAPTER", "VILLAGE_LEVEL",
    "Activity", "AlarmEvent", "AlarmSeverity", "Approval", "ApprovalState", "Area", "AreaType",
    "AuditEvent", "AwareDatetime", "Broadcast", "BroadcastState", "BulletinLevel", "Capability",
    "ClearCommand", "Command", "CommandResult", "CommandResultEvent", "CommandStatus",
    "Connectivity", "ConnectivityEvent", "Content", "ContentKind", "Device",
    "DeviceChanges", "DeviceDiscoveredEvent", "DeviceInfo", "DeviceKind", "DeviceSpec",
    "DeviceStatus",
    "DeviceStatusEvent", "DiscoveredDevice", "Event", "Group", "GroupChanges", "Identifier",
    "IotClass",
    "IssuingLevel", "Location", "MediaRef", "Model", "PlayCommand", "PlayEvent", "PlayPhase",
    "PluginManifest", "PowerCommand", "PowerSource", "Protocol", "RebootCommand", "Schedule",
    "ScheduleEntry", "ScheduleKind", "ScreenshotCommand", "SetBrightnessCommand",
    "SetRfCommand", "SetVolumeCommand", "ShowCommand", "StopCommand", "SwitchZonesCommand",
    "SyncScheduleCommand", "Targets", "TestToneCommand", "TuneCommand", "new_id",
    "parse_command", "utcnow",
]
