"""What every simulator shares: ground truth, fault injection, and the fleet it runs in.

A simulator speaks its vendor's real wire protocol on a real socket. Beside that it keeps a
*ground truth* — what it actually played, showed, refused — that tests read to check the hub
end to end, and it accepts *faults* that make it misbehave the way field devices do.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """Faults every simulator understands (each simulator documents what it does with them)."""

    OFFLINE = "offline"  # leaves the network cleanly and stays away until cleared
    SLOW = "slow"  # answers late: params {"delay": seconds}
    GARBAGE = "garbage"  # answers with bytes that are not the protocol
    DROP_CONNECTION = "drop_connection"  # the link breaks (no goodbye); comes back by itself
    POWER_LOSS = "power_loss"  # mains gone, no battery: dead until cleared
    POWER_LOSS_BATTERY = "power_loss_battery"  # mains gone, runs on battery
    REBOOT = "reboot"  # restarts, optionally with params {"firmware": "2.0.0"}; one-shot
    WRONG_CREDENTIALS = "wrong_credentials"  # uses a wrong password until cleared
    HANG = "hang"  # accepts connections but never answers (a hung TCP stack)
    PLAYBACK_ERROR = "playback_error"  # items start but fail part-way (amplifier/decoder fault)
    TAMPER = "tamper"  # the cabinet is open: a device that raises alarms raises 'tamper'
    ANTENNA = "antenna"  # FM antenna or feeder damaged: reflected power (VSWR) rises;
    #                     params {"vswr": 3.0}


#: faults that happen once and clear themselves
ONE_SHOT = frozenset({Fault.REBOOT, Fault.DROP_CONNECTION})


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PlayRecord:
    """One item the device really played (or started to)."""

    started_at: datetime
    content_id: str | None = None
    command_id: str | None = None
    broadcast_id: str | None = None
    level: str = "normal"
    volume: int | None = None
    source: str | None = None
    ended_at: datetime | None = None
    outcome: str = "playing"  # playing, finished, interrupted, stopped, power_lost, failed

    @property
    def seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass
class Rejection:
    at: datetime
    command: str
    command_id: str | None
    code: str
    reason: str


@dataclass
class GroundTruth:
    """What the simulated device actually did. Tests compare the hub's view against this."""

    plays: list[PlayRecord] = field(default_factory=list)
    shown: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)  # every command received
    volume_changes: list[tuple[datetime, int]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)  # injected and cleared

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class SimulatedDevice(abc.ABC):
    """One simulated device. Subclasses speak the protocol and honour the faults."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.truth = GroundTruth()
        self.faults: dict[Fault, dict[str, Any]] = {}

    @abc.abstractmethod
    async def start(self) -> None:
        """Power on and connect (or listen)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Power off cleanly."""

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """The device's current state (volume, power, what plays), JSON-friendly."""

    @abc.abstractmethod
    def connection_info(self) -> dict[str, Any]:
        """What a client needs to reach this device (address, ids, credentials)."""

    def registration(self) -> dict[str, Any]:
        """How to register this device with its plugin, as data (the conformance kit and the
        tests use it): ``{"plugin": ID, "kind": KIND, "config": {...}}``. The config holds
        whatever the plugin needs, credentials included (this is a simulator)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its registration")

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """How to register the devices reached only through this one (a controller's lines,
        a transmitter's receiver clusters) once it is registered as ``parent_id``:
        ``[{"plugin", "kind", "parent_id", "config"}]``. A device without children: ``[]``."""
        return []

    async def inject(self, fault: Fault, **params: Any) -> None:
        """Start a fault. Subclasses extend :meth:`on_fault` to act on it."""
        self.truth.faults.append({"at": now(), "fault": fault.value, "params": params,
                                  "action": "inject"})
        if fault not in ONE_SHOT:
            self.faults[fault] = params
        await self.on_fault(fault, params, active=True)

    async def clear(self, fault: Fault | None = None) -> None:
        """End one fault (or all of them)."""
        for f in [fault] if fault else list(self.faults):
            if f in self.faults:
                self.faults.pop(f)
                self.truth.faults.append({"at": now(), "fault": f.value, "action": "clear"})
                await self.on_fault(f, {}, active=False)

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        """React to a fault being injected (``active``) or cleared. Default: nothing."""
        return

    def has(self, fault: Fault) -> bool:
        return fault in self.faults

    async def slow_down(self) -> None:
        """Sleep as long as the SLOW fault asks, if it is active."""
        if Fault.SLOW in self.faults:
            await asyncio.sleep(float(self.faults[Fault.SLOW].get("delay", 3.0)))

    def snapshot(self) -> dict[str, Any]:
        return {"serial": self.serial, "state": _jsonable(self.state()),
                "faults": {f.value: p for f, p in self.faults.items()},
                "connection": self.connection_info()}


@dataclass
class SimOptions:
    """Options of ``ttcs sim run``; ``extra`` holds simulator-specific ``--option k=v``."""

    count: int = 1
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick free ports
    broker: str | None = None
    serial_prefix: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Fleet:
    """Simulated devices run together, addressed by serial."""

    def __init__(self, devices: list[SimulatedDevice], *,
                 on_stop: Callable[[], Awaitable[None]] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.devices = {d.serial: d for d in devices}
        self._on_stop = on_stop
        self.info = info or {}

    def __getitem__(self, serial: str) -> SimulatedDevice:
        return self.devices[serial]

    async def start(self) -> None:
        await asyncio.gather(*(d.start() for d in self.devices.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(d.stop() for d in self.devices.values()), return_exceptions=True)
        if self._on_stop is not None:
            await self._on_stop()


@dataclass(frozen=True)
class SimulatorSpec:
    """A simulator as listed by ``ttcs sim list`` and started by ``ttcs sim run NAME``."""

    name: str
    kinds: tuple[str, ...]
    protocol: str
    description: str
    #: builds a fleet (not yet started) from the command-line options
    build: Callable[[SimOptions], Awaitable[Fleet]]
