"""Generate the JSON Schema files and the AsyncAPI document in ``docs/spec/``.

``python -m ttcs.schemas.export docs/spec`` (or ``make spec``) writes them; the test suite
regenerates them in memory and fails when the committed files differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from . import native
from .area import Area
from .broadcast import Broadcast
from .command import COMMAND_ADAPTER, CommandResult
from .content import Content
from .device import Device, DeviceInfo, DeviceSpec, DeviceStatus, DiscoveredDevice, Group
from .event import EVENT_ADAPTER
from .plugin import PluginManifest

#: file stem -> model (or type adapter for unions)
SCHEMAS: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
    "area": Area,
    "device": Device,
    "device-spec": DeviceSpec,
    "device-info": DeviceInfo,
    "device-status": DeviceStatus,
    "discovered-device": DiscoveredDevice,
    "group": Group,
    "command": COMMAND_ADAPTER,
    "command-result": CommandResult,
    "content": Content,
    "broadcast": Broadcast,
    "event": EVENT_ADAPTER,
    "plugin-manifest": PluginManifest,
    "native-birth": native.Birth,
    "native-presence": native.Presence,
    "native-device-event": native.DeviceEvent,
}

SPEC_BASE = "https://ttcs-hub.example/spec/"


def json_schema(stem: str) -> dict[str, Any]:
    target = SCHEMAS[stem]
    if isinstance(target, TypeAdapter):
        schema = target.json_schema(mode="validation")
    else:
        schema = target.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SPEC_BASE}{stem}.schema.json", **schema}


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0 description of the native device protocol (see :mod:`ttcs.schemas.native`)."""
    ref = {stem: {"$ref": f"./{stem}.schema.json"} for stem in SCHEMAS}
    leaves = {
        "birth": ("device", "native-birth", "Device identity, published retained on connect."),
        "conn": ("device", "native-presence",
                 "Retained presence; the broker publishes online=false as the device's will."),
        "status": ("device", "device-status", "Status on change and at every heartbeat."),
        "event": ("device", "native-device-event", "Proof of play and alarms."),
        "ack": ("device", "command-result", "The result of each command, by command id."),
        "cmd": ("hub", "command", "A command for the device (discriminated on 'type')."),
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for leaf, (sender, stem, text) in leaves.items():
        messages[leaf] = {"name": leaf, "contentType": "application/json", "summary": text,
                          "payload": ref[stem]}
        channels[leaf] = {
            "address": f"{native.PREFIX}/{{serial}}/{leaf}",
            "parameters": {"serial": {"description": "the device serial (its identity)"}},
            "messages": {leaf: {"$ref": f"#/components/messages/{leaf}"}},
        }
        # Written from the device's point of view: it sends what it originates.
        operations[f"{leaf}"] = {
            "action": "send" if sender == "device" else "receive",
            "channel": {"$ref": f"#/channels/{leaf}"},
            "summary": text,
            "bindings": {"mqtt": {"qos": 1, "retain": leaf in ("birth", "conn")}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "TTCS native device protocol",
            "version": native.PROTOCOL_VERSION,
            "description": (native.__doc__ or "").strip(),
        },
        "defaultContentType": "application/json",
        "servers": {"hub": {"host": "broker.example:8883", "protocol": "mqtts",
                            "description": "the hub's MQTT broker; username/password over TLS"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> dict[str, str]:
    """Every spec file name and its exact text."""
    files = {f"{stem}.schema.json": _dump(json_schema(stem)) for stem in SCHEMAS}
    files["native-asyncapi.json"] = _dump(asyncapi())
    return files


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/spec")):
        print(path)
