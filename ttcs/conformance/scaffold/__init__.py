"""``ttcs plugin new``: a standalone, installable plugin package that passes the core profile.

The package has its own ``pyproject.toml`` (entry point in ``ttcs.plugins``), a manifest, a
config schema (the driver's pydantic model), a driver and a simulator that really speak the
chosen protocol (MQTT, HTTP, Modbus TCP or SNMP), a ``conformance.yaml``, tests and a README.
Templates are files under ``templates/`` (``string.Template``: ``$name`` placeholders), so a
vendor can read what they will get.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ...core.errors import TTCSError
from ...schemas import Capability, DeviceKind
from ..cases import PROFILE_GATES, Profile

PROTOCOLS = ("mqtt", "http", "modbus", "snmp")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ScaffoldError(TTCSError):
    """The package cannot be generated (bad name, kind or protocol; directory not empty)."""


@dataclass(frozen=True)
class Setting:
    """The one device setting a generated plugin changes: which capability, which command."""

    template: str  # model_<template>.py.tmpl
    capability: Capability


SETTINGS: dict[DeviceKind, Setting] = {
    DeviceKind.IP_SPEAKER: Setting("volume", Capability.AUDIO_VOLUME),
    DeviceKind.LED_BOARD: Setting("brightness", Capability.DISPLAY_BRIGHTNESS),
    DeviceKind.LCD_BOARD: Setting("brightness", Capability.DISPLAY_BRIGHTNESS),
    DeviceKind.WIRED_ZONE_CONTROLLER: Setting("zones", Capability.ZONES_SWITCH),
    DeviceKind.FM_TRANSMITTER: Setting("rf", Capability.FM_RF),
    DeviceKind.WIRED_ZONE: Setting("power", Capability.POWER),
    DeviceKind.FM_RECEIVER: Setting("power", Capability.POWER),
}

IOT_CLASS = {"mqtt": "PUSH", "http": "POLL", "modbus": "POLL", "snmp": "POLL"}
PROTOCOL_ENUM = {"mqtt": "MQTT", "http": "HTTP", "modbus": "MODBUS_TCP", "snmp": "SNMP"}
#: what the certification run sets in the declaration (short intervals)
CONFORMANCE_CONFIG = {"mqtt": "{}", "http": "{poll_interval: 0.3}",
                      "modbus": "{poll_interval: 0.3}", "snmp": "{poll_interval: 0.3}"}
EXTRA_DEPENDENCIES = {"mqtt": "", "http": "", "modbus": '\n    "pymodbus>=3.16,<4",',
                      "snmp": '\n    "pysnmp>=7.1,<8",'}


def gated_profiles_of(kind: DeviceKind, setting: Setting) -> set[Profile]:
    """The functional profiles a generated plugin must claim (see ``PROFILE_GATES``)."""
    return {p for p, (cap, kinds) in PROFILE_GATES.items()
            if cap is setting.capability and (not kinds or kind in kinds)}


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def generate(name: str, kind: DeviceKind, protocol: str, directory: Path) -> Path:
    """Write the package ``directory/name`` and return its path."""
    if not _NAME.match(name) or len(name) > 60:
        raise ScaffoldError(f"'{name}' is not a package name: use lower-case letters, digits "
                            "and single hyphens, starting with a letter (e.g. acme-speakers)")
    if protocol not in PROTOCOLS:
        raise ScaffoldError(f"unknown protocol '{protocol}' (choose {', '.join(PROTOCOLS)})")
    root = directory / name
    if root.exists() and any(root.iterdir()):
        raise ScaffoldError(f"{root} exists and is not empty")
    module = name.replace("-", "_")
    setting = SETTINGS[kind]
    values = {
        "name": name, "module": module, "plugin_id": module,
        "title": name.replace("-", " ").title(), "kind": kind.value,
        "kind_enum": kind.name, "protocol": protocol, "protocol_enum": PROTOCOL_ENUM[protocol],
        "iot_class": IOT_CLASS[protocol], "capability": setting.capability.value,
        "capability_enum": setting.capability.name, "setting": setting.template,
        "conformance_config": CONFORMANCE_CONFIG[protocol],
        "extra_dependencies": EXTRA_DEPENDENCIES[protocol],
        "profiles": ", ".join(["core", *sorted(p.value for p in gated_profiles_of(kind,
                                                                                 setting))]),
    }
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"{module}/__init__.py": "plugin.py.tmpl",
        f"{module}/model.py": f"model_{setting.template}.py.tmpl",
        f"{module}/device.py": "device.py.tmpl",
        f"{module}/driver.py": f"driver_{protocol}.py.tmpl",
        f"{module}/simulator.py": f"simulator_{protocol}.py.tmpl",
        f"{module}/conformance.yaml": "conformance.yaml.tmpl",
        f"tests/test_{module}.py": "test_plugin.py.tmpl",
    }
    for target, template in files.items():
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        text = string.Template(_template(template)).substitute(values)
        path.write_text(text, encoding="utf-8")
    return root


__all__ = ["PROTOCOLS", "SETTINGS", "ScaffoldError", "generate"]
