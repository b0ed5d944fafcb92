"""Harmless commands whose effect the kit can see, whatever the device family.

Several cases need "a command that changes something observable": the volume of a speaker,
the brightness of a board, a line of a wired station, the RF of a transmitter, the power. Each
:class:`Effect` knows its command, where a simulator records it in the ground truth, and where
the hub's status shows it. Simulators record effects under these ground-truth keys:

=================  ===============================  ==========================
ground truth key   entry                            hub status
=================  ===============================  ==========================
volume_changes     ``[at, volume]``                 ``status.volume``
brightness_changes ``{"at", "level"}``              ``status.brightness``
zone_changes       ``{"at", "zones": {id: on}}``    ``telemetry["zone.<id>"]``
rf_changes         ``{"at", "on"}``                 ``telemetry["rf_on"]``
power_changes      ``{"at", "on"}``                 (none)
=================  ===============================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..schemas import (
    Capability,
    Command,
    DeviceStatus,
    PowerCommand,
    SetBrightnessCommand,
    SetRfCommand,
    SetVolumeCommand,
    SwitchZonesCommand,
)

ZONE_PREFIX = "zone."


def zones_in(status: DeviceStatus | None) -> list[str]:
    """Zone ids a device reports in its telemetry (``zone.<id>``: bool), sorted."""
    if status is None:
        return []
    return sorted(k[len(ZONE_PREFIX):] for k, v in status.telemetry.items()
                  if k.startswith(ZONE_PREFIX) and isinstance(v, bool))


@dataclass(frozen=True)
class Effect:
    """A setting the kit can change and watch."""

    capability: Capability
    name: str
    truth_key: str
    #: two different values, for A-B-A sequences
    values: tuple[Any, Any]
    make: Callable[[Any, str | None], Command]
    from_truth: Callable[[Any, str | None], Any]
    from_status: Callable[[DeviceStatus, str | None], Any] | None = None

    def command(self, value: Any, zone: str | None = None, **fields: Any) -> Command:
        command = self.make(value, zone)
        return command.model_copy(update=fields) if fields else command

    def observed(self, entries: list[Any], zone: str | None = None) -> list[Any]:
        """The values the device took, in order, repeats collapsed (a device may record the
        same value twice, e.g. when its power source changes)."""
        seen: list[Any] = []
        for entry in entries:
            value = self.from_truth(entry, zone)
            if value is not None and (not seen or seen[-1] != value):
                seen.append(value)
        return seen

    def reported(self, status: DeviceStatus, zone: str | None = None) -> Any:
        return None if self.from_status is None else self.from_status(status, zone)

    @property
    def harmless(self) -> Any:
        """The value a single command sets (power: on)."""
        return self.values[1]

    def distinct_from(self, current: Any) -> tuple[Any, Any]:
        """Two values to set, the first different from ``current`` (an A-B-A sequence ends
        on the second, so power ends switched on)."""
        a, b = self.values
        return (b, a) if current == a else (a, b)


def _zone_value(entry: Any, zone: str | None) -> Any:
    zones = entry.get("zones") if isinstance(entry, dict) else None
    return zones.get(zone) if isinstance(zones, dict) and zone is not None else None


EFFECTS: tuple[Effect, ...] = (
    Effect(Capability.AUDIO_VOLUME, "volume", "volume_changes", (37, 52),
           lambda v, _: SetVolumeCommand(volume=v),
           lambda e, _: e[1] if isinstance(e, list) else None,
           lambda s, _: s.volume),
    Effect(Capability.DISPLAY_BRIGHTNESS, "brightness", "brightness_changes", (37, 52),
           lambda v, _: SetBrightnessCommand(brightness=v),
           lambda e, _: e.get("level") if isinstance(e, dict) else None,
           lambda s, _: s.brightness),
    Effect(Capability.ZONES_SWITCH, "zone", "zone_changes", (False, True),
           lambda v, z: SwitchZonesCommand(zones={str(z): v}),
           _zone_value,
           lambda s, z: s.telemetry.get(f"{ZONE_PREFIX}{z}")),
    Effect(Capability.FM_RF, "RF", "rf_changes", (False, True),
           lambda v, _: SetRfCommand(on=v),
           lambda e, _: e.get("on") if isinstance(e, dict) else None,
           lambda s, _: s.telemetry.get("rf_on")),
    Effect(Capability.POWER, "power", "power_changes", (False, True),
           lambda v, _: PowerCommand(on=v),
           lambda e, _: e.get("on") if isinstance(e, dict) else None),
)


def effect_for(capabilities: set[Capability] | list[Capability]) -> Effect | None:
    """The first effect the device has (volume, brightness, zone, RF, power), if any."""
    caps = set(capabilities)
    return next((e for e in EFFECTS if e.capability in caps), None)


def reversible_effect_for(capabilities: set[Capability] | list[Capability]) -> Effect | None:
    """An effect other than power (a device switched off would disturb what follows)."""
    caps = set(capabilities) - {Capability.POWER}
    return effect_for(caps)


__all__ = ["EFFECTS", "ZONE_PREFIX", "Effect", "effect_for", "reversible_effect_for",
           "zones_in"]
