"""Devices, what they can do, and how they are doing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, SecretStr, field_serializer, model_validator

from .base import AwareDatetime, Identifier, Model, Percent, utcnow


class DeviceKind(StrEnum):
    """What a device is, independent of its vendor."""

    IP_SPEAKER = "ip_speaker"  # IP/4G loudspeaker cluster (truyền thanh ứng dụng CNTT-VT)
    WIRED_ZONE_CONTROLLER = "wired_zone_controller"  # wired station amplifier + relays
    WIRED_ZONE = "wired_zone"  # one loudspeaker line of a wired station
    FM_TRANSMITTER = "fm_transmitter"  # 54-68 MHz, <= 30 W
    FM_RECEIVER = "fm_receiver"  # receiver cluster switched by in-band codes
    LED_BOARD = "led_board"
    LCD_BOARD = "lcd_board"


class Capability(StrEnum):
    """Something a driver can do with a device. Commands name the capability they need."""

    AUDIO_PLAY = "audio.play"
    AUDIO_STREAM = "audio.stream"
    AUDIO_VOLUME = "audio.volume"
    AUDIO_TEST_TONE = "audio.test_tone"
    POWER = "power"
    REBOOT = "reboot"
    DISPLAY_TEXT = "display.text"
    DISPLAY_MEDIA = "display.media"
    DISPLAY_BRIGHTNESS = "display.brightness"
    DISPLAY_SCREENSHOT = "display.screenshot"
    SCHEDULE_LOCAL = "schedule.local"
    FM_TUNE = "fm.tune"
    FM_RF = "fm.rf"
    ZONES_SWITCH = "zones.switch"


class Connectivity(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class Activity(StrEnum):
    IDLE = "idle"
    PLAYING = "playing"
    DISPLAYING = "displaying"
    OFF = "off"
    FAULT = "fault"


class PowerSource(StrEnum):
    MAINS = "mains"
    BATTERY = "battery"
    SOLAR = "solar"
    UNKNOWN = "unknown"


class Location(Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)


class DeviceInfo(Model):
    """What a device says about itself when probed. Identity is ``serial`` (or ``mac``)."""

    serial: Identifier
    mac: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    vendor: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    firmware: str = Field(default="unknown", max_length=100)
    kind: DeviceKind
    capabilities: list[Capability] = Field(default_factory=list)
    address: str | None = Field(default=None, description="where it was last reached (IP, host)"
                                " — informative only, never identity")
    extra: dict[str, Any] = Field(default_factory=dict)


class DeviceStatus(Model):
    """Latest known state of a device, as reported by its driver."""

    connectivity: Connectivity = Connectivity.UNKNOWN
    activity: Activity = Activity.IDLE
    volume: Percent | None = None
    brightness: Percent | None = None
    power_source: PowerSource = PowerSource.UNKNOWN
    battery: Percent | None = Field(default=None, description="battery charge, percent")
    signal: int | None = Field(default=None, description="radio signal, dBm (4G/Wi-Fi)")
    temperature: float | None = Field(default=None, description="degrees Celsius")
    firmware: str | None = None
    faults: list[str] = Field(default_factory=list)
    current_item: str | None = Field(default=None, description="content id playing or shown")
    telemetry: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="family-specific readings (VSWR, forward power, ...)")
    reported_at: AwareDatetime = Field(default_factory=utcnow)


def _mask_secrets(config: dict[str, Any]) -> dict[str, Any]:
    return {k: ("**********" if isinstance(v, SecretStr) else v) for k, v in config.items()}


class DeviceSpec(Model):
    """What an integrator gives to register a device; identity comes from probing it."""

    plugin: Identifier
    kind: DeviceKind
    area_code: Identifier
    village_code: Identifier | None = None
    name: str | None = Field(default=None, max_length=200)
    location: Location | None = None
    parent_id: Identifier | None = None
    groups: list[Identifier] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict, description="plugin-specific settings; "
                                   "validated against the plugin's config schema")

    @field_serializer("config")
    def _ser_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return _mask_secrets(config)


class DeviceChanges(Model):
    """What may change on a registered device (identity never does). Only the fields given
    change; ``config`` is merged into the current config."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    area_code: Identifier | None = None
    village_code: Identifier | None = None
    location: Location | None = None
    config: dict[str, Any] | None = Field(default=None, description="settings to change; "
                                          "validated against the plugin's config schema")

    @field_serializer("config")
    def _ser_config(self, config: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if config is None else _mask_secrets(config)


class Device(Model):
    """A registered device. ``config`` secrets are ``SecretStr`` and serialise masked."""

    id: Identifier
    name: str = Field(max_length=200)
    kind: DeviceKind
    vendor: str
    model: str
    serial: Identifier
    mac: str | None = None
    firmware: str = "unknown"
    plugin: Identifier
    area_code: Identifier
    village_code: Identifier | None = None
    location: Location | None = None
    parent_id: Identifier | None = None
    groups: list[Identifier] = Field(default_factory=list)
    capabilities: list[Capability] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    created_at: AwareDatetime = Field(default_factory=utcnow)

    @field_serializer("config")
    def _ser_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return _mask_secrets(config)

    @model_validator(mode="after")
    def _not_own_parent(self) -> Device:
        if self.parent_id == self.id:
            raise ValueError("a device cannot be its own parent (parent_id == id)")
        return self


class DiscoveredDevice(Model):
    """A device that announced itself and waits for an integrator to adopt it."""

    plugin: Identifier
    info: DeviceInfo
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="plugin config that reaches it (no secrets)")
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)


class Group(Model):
    """A named set of devices, usable as a broadcast target."""

    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    area_code: Identifier | None = Field(default=None, description="owning area, for scoping")
    description: str | None = None


class GroupChanges(Model):
    """What may change on a group: its name and description (not its id, nor its owning
    area, which decides who may use it). Only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
