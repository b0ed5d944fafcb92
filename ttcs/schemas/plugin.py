"""What a plugin declares about itself; the hub validates it before loading any driver."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import Field, field_validator

from .base import Identifier, Model
from .device import Capability, DeviceKind


class IotClass(StrEnum):
    """How the device talks to the hub (Home Assistant's term)."""

    PUSH = "push"  # the device sends status/events on its own (MQTT)
    POLL = "poll"  # the hub asks periodically (Modbus, SNMP, HTTP)
    DEVICE_PULL = "device_pull"  # the device connects out and polls the hub (boards behind NAT)


class Protocol(StrEnum):
    MQTT = "mqtt"
    MODBUS_TCP = "modbus_tcp"
    SNMP = "snmp"
    HTTP = "http"


class PluginManifest(Model):
    id: Identifier = Field(description="unique plugin id, used in device records")
    name: str = Field(min_length=1, max_length=200)
    vendor: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=50)
    sdk: str = Field(description="PEP 440 specifier of the SDK versions supported, e.g. '>=1.0,<2'")
    device_kinds: list[DeviceKind] = Field(min_length=1)
    capabilities: list[Capability] = Field(default_factory=list)
    protocols: list[Protocol] = Field(min_length=1)
    iot_class: IotClass
    config_schema: dict[str, Any] = Field(default_factory=dict,
                                          description="JSON Schema of the device config")
    description: str | None = Field(default=None, max_length=2000)
    homepage: str | None = None

    @field_validator("sdk")
    @classmethod
    def _specifier(cls, value: str) -> str:
        try:
            SpecifierSet(value)
        except InvalidSpecifier as exc:
            raise ValueError(f"'{value}' is not a version range such as '>=1.0,<2'") from exc
        return value
