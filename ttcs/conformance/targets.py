"""What the kit certifies against: simulated devices, or a real device with a person beside it.

Cases only see :class:`DeviceUnderTest`: its registration (plugin, kind, config), the
registrations of the children reached through it, faults to inject and clear, and its ground
truth. A simulator does all of it itself (through the plugin's
:class:`~ttcs.simulators.base.SimulatorSpec`, exactly as ``ttcs sim run`` starts it). At a real
device there is no ground truth and no fault injection: a person is asked to do the fault and
to confirm what the device did — or, in a run without a person, those steps are *not run*.

A station may be several boxes: a wired zone controller or an FM transmitter with the audio
decoder that feeds it. A simulator builds them as one fleet; the kit certifies the one box
that can say how it is registered, and treats the others as its *parts*: a fault is done to
the whole station (every box), and the ground truth is the station's (every box's, merged in
time order).
"""

from __future__ import annotations

import abc
import asyncio
import copy
import errno
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import TTCSError
from ..schemas import DeviceKind
from ..schemas.errors import explain
from ..simulators.base import Fault, Fleet, SimOptions, SimulatedDevice, SimulatorSpec
from ..testing.net import free_port
from .outcome import NotRun

#: what a person does at a real device for each fault, and to end it
MANUAL_FAULTS: dict[Fault, tuple[str, str]] = {
    Fault.OFFLINE: ("Take the device off the network (unplug its network cable, or switch off "
                    "its 4G router).", "Connect the device to the network again."),
    Fault.POWER_LOSS: ("Switch off the device's mains power and disconnect its battery.",
                       "Restore the device's power."),
    Fault.POWER_LOSS_BATTERY: ("Switch off the device's mains power; leave its battery "
                               "connected.", "Restore the mains power."),
    Fault.WRONG_CREDENTIALS: ("Change the device's password or token so that it no longer "
                              "matches the one registered in the hub.",
                              "Set the device's password or token back."),
    Fault.REBOOT: ("Upgrade the device's firmware to another version and wait until it has "
                   "restarted.", ""),
}


#: starts of a simulator tried when its free port turns out to be taken
BIND_ATTEMPTS = 3


class DeviceFileError(TTCSError):
    """The ``--device-config`` file is missing or invalid."""


class ChildEntry(BaseModel):
    """A device reached only through the device above it (a wired line, an FM receiver
    cluster): registered with the parent's id as ``parent_id``."""

    model_config = ConfigDict(extra="forbid")

    kind: DeviceKind
    config: dict[str, Any] = Field(default_factory=dict)


class DeviceEntry(BaseModel):
    """One real device in a ``--device-config`` file."""

    model_config = ConfigDict(extra="forbid")

    plugin: str
    kind: DeviceKind
    config: dict[str, Any] = Field(default_factory=dict)
    serial: str | None = Field(default=None, description="the serial on the device's label, "
                               "if the certifier wants it checked")
    children: list[ChildEntry] = Field(default_factory=list, description="devices reached "
                                       "through this one, registered after it")


class DeviceFile(BaseModel):
    """``--device-config FILE``: the device under test, and optionally a second one of the
    same plugin (for TC-RES-003)."""

    model_config = ConfigDict(extra="forbid")

    devices: list[DeviceEntry] = Field(min_length=1, max_length=2)

    @classmethod
    def read(cls, path: Path) -> DeviceFile:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise DeviceFileError(f"cannot read device file {path}: {exc}") from exc
        if isinstance(raw, dict) and "devices" not in raw:
            raw = {"devices": [raw]}  # a file for one device needs no list
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise DeviceFileError(f"device file {path}: {explain(exc)}") from exc


class Person(abc.ABC):
    """Someone at the real device, asked to act and to confirm."""

    @abc.abstractmethod
    async def act(self, instruction: str) -> None:
        """Do ``instruction``; return when done."""

    @abc.abstractmethod
    async def confirm(self, question: str) -> bool:
        """Answer yes or no."""


class ConsolePerson(Person):
    """A person at the console running ``ttcs certify`` (interactive runs)."""

    def __init__(self, out: TextIO | None = None, read: Callable[[], str] | None = None) -> None:
        self._out = out or sys.stdout
        self._read = read or sys.stdin.readline

    async def act(self, instruction: str) -> None:
        print(f"\n>>> {instruction}\n    Press Enter when done.", file=self._out, flush=True)
        await asyncio.to_thread(self._read)

    async def confirm(self, question: str) -> bool:
        print(f"\n>>> {question} [y/n]", file=self._out, flush=True)
        answer = await asyncio.to_thread(self._read)
        return answer.strip().lower() in ("y", "yes", "c", "co", "có")


class DeviceUnderTest(abc.ABC):
    """One device the kit exercises."""

    #: "simulator" or "device"
    mode: str

    @abc.abstractmethod
    def registration(self) -> dict[str, Any]:
        """``{"plugin", "kind", "config"}`` to register it with."""

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """Registrations (``{"plugin", "kind", "parent_id", "config"}``) of the devices
        reached through this one once it is registered as ``parent_id`` (none by default)."""
        return []

    @property
    @abc.abstractmethod
    def expected_serial(self) -> str | None:
        """The serial the device must report (None: not known to the kit)."""

    @abc.abstractmethod
    async def inject(self, fault: Fault, **params: Any) -> None:
        """Make the fault happen (raises :class:`NotRun` if nobody can)."""

    @abc.abstractmethod
    async def clear(self, fault: Fault | None = None) -> None:
        """End the fault (or all)."""

    @abc.abstractmethod
    def truth(self) -> dict[str, Any] | None:
        """The ground truth (None at a real device)."""

    def state(self) -> dict[str, Any] | None:
        """The device's own state as its simulator tells it (None at a real device)."""
        return None

    async def confirm(self, question: str) -> bool | None:
        """Ask the person at the device (None: nobody to ask)."""
        return None

    async def stop(self) -> None:  # noqa: B027 - nothing to stop at a real device
        """Release the device (stop a simulator)."""


class SimulatedUnderTest(DeviceUnderTest):
    """A simulated device (and the boxes it is composed with) from one fleet of the plugin's
    simulator."""

    mode = "simulator"

    def __init__(self, fleet: Fleet, config_overrides: dict[str, Any], port: int,
                 prefix: str, child_overrides: dict[str, Any] | None = None) -> None:
        self.fleet = fleet
        self.sim, self.parts = station_of(fleet)
        self.port = port
        self.prefix = prefix
        self._overrides = config_overrides
        self._child_overrides = dict(child_overrides or {})

    @property
    def boxes(self) -> list[SimulatedDevice]:
        """Every box of the station: the device under test first, then its parts."""
        return [self.sim, *self.parts]

    def registration(self) -> dict[str, Any]:
        try:
            reg = copy.deepcopy(self.sim.registration())
        except NotImplementedError as exc:
            raise NotRun(f"the simulator cannot say how to register its device: {exc}") from exc
        reg["config"] = {**reg.get("config", {}), **self._overrides}
        return reg

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        children = copy.deepcopy(self.sim.children(parent_id))
        for child in children:
            child["config"] = {**child.get("config", {}), **self._child_overrides}
        return children

    @property
    def expected_serial(self) -> str:
        return self.sim.serial

    async def inject(self, fault: Fault, **params: Any) -> None:
        await asyncio.gather(*(box.inject(fault, **params) for box in self.boxes))

    async def clear(self, fault: Fault | None = None) -> None:
        await asyncio.gather(*(box.clear(fault) for box in self.boxes))

    def truth(self) -> dict[str, Any]:
        return merged_truth([box.truth.to_json() for box in self.boxes])

    def state(self) -> dict[str, Any]:
        return self.sim.state()

    async def stop(self) -> None:
        await self.fleet.stop()


def registrable(device: SimulatedDevice) -> bool:
    """Whether ``device`` says how it is registered (a decoder feeding a station does not)."""
    try:
        device.registration()
    except NotImplementedError:
        return False
    return True


def station_of(fleet: Fleet) -> tuple[SimulatedDevice, list[SimulatedDevice]]:
    """The device under test of a one-station fleet and the boxes it is composed with."""
    devices = list(fleet.devices.values())
    main = [d for d in devices if registrable(d)]
    if len(devices) == 1:
        return devices[0], []
    if len(main) != 1:
        raise NotRun(f"the simulator built {len(devices)} devices for one station, "
                     f"{len(main)} of which describe their registration (the kit needs one)")
    return main[0], [d for d in devices if d is not main[0]]


def _entry_time(entry: Any) -> str | None:
    """When a ground-truth entry happened (ISO text), if it says."""
    if isinstance(entry, dict):
        for key in ("at", "started_at", "from"):
            if isinstance(entry.get(key), str):
                return str(entry[key])
        return None
    if isinstance(entry, list | tuple) and entry and isinstance(entry[0], str):
        return entry[0]
    return None


def merged_truth(truths: list[dict[str, Any]]) -> dict[str, Any]:
    """One ground truth for a station of several boxes: lists under the same key are joined
    in time order (entries that do not say when keep their box's order); anything else is the
    first box's."""
    if len(truths) == 1:
        return truths[0]
    merged: dict[str, Any] = {}
    for truth in truths:
        for key, value in truth.items():
            if key not in merged:
                merged[key] = list(value) if isinstance(value, list) else value
            elif isinstance(value, list) and isinstance(merged[key], list):
                merged[key].extend(value)
    for value in merged.values():
        if isinstance(value, list) and all(_entry_time(e) is not None for e in value):
            value.sort(key=lambda e: datetime.fromisoformat(str(_entry_time(e))))
    return merged


class RealUnderTest(DeviceUnderTest):
    """A real device, with a person beside it or not."""

    mode = "device"

    def __init__(self, entry: DeviceEntry, person: Person | None) -> None:
        self.entry = entry
        self.person = person

    def registration(self) -> dict[str, Any]:
        return {"plugin": self.entry.plugin, "kind": self.entry.kind.value,
                "config": dict(self.entry.config)}

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        return [{"plugin": self.entry.plugin, "kind": c.kind.value, "parent_id": parent_id,
                 "config": dict(c.config)} for c in self.entry.children]

    @property
    def expected_serial(self) -> str | None:
        return self.entry.serial

    async def inject(self, fault: Fault, **params: Any) -> None:
        instruction = MANUAL_FAULTS.get(fault)
        if instruction is None or not instruction[0]:
            raise NotRun(f"fault '{fault.value}' cannot be produced by hand at a real device; "
                         "run this case against the simulator")
        if self.person is None:
            raise NotRun(f"needs a person at the device ({instruction[0]}); the run is not "
                         "interactive")
        text = instruction[0]
        if fault is Fault.REBOOT and params.get("firmware"):
            text += " (any version other than the current one)"
        await self.person.act(text)

    async def clear(self, fault: Fault | None = None) -> None:
        if self.person is None or fault is None:
            return
        instruction = MANUAL_FAULTS.get(fault)
        if instruction and instruction[1]:
            await self.person.act(instruction[1])

    def truth(self) -> None:
        return None

    async def confirm(self, question: str) -> bool | None:
        return None if self.person is None else await self.person.confirm(question)


class Target(abc.ABC):
    """Where devices under test come from."""

    mode: str

    @abc.abstractmethod
    async def device(self, role: str) -> DeviceUnderTest:
        """The device for ``role`` ("primary", "second", "tls", …); raises NotRun if none."""

    async def moved(self, dut: DeviceUnderTest) -> DeviceUnderTest:
        """The same device at a new network address (raises NotRun if that cannot be done)."""
        raise NotRun("moving the device to a new address needs a person")

    async def stop(self) -> None:  # noqa: B027
        """Stop every device this target started."""


class SimulatorTarget(Target):
    """Devices built by the plugin's simulator, one fleet of one device per role."""

    mode = "simulator"

    def __init__(self, spec: SimulatorSpec, *, broker_url: str,
                 options: dict[str, str] | None = None,
                 config: dict[str, Any] | None = None,
                 child_config: dict[str, Any] | None = None, host: str = "127.0.0.1") -> None:
        self.spec = spec
        self.broker_url = broker_url
        self.options = dict(options or {})
        self.config = dict(config or {})
        self.child_config = dict(child_config or {})
        self.host = host
        self._devices: dict[str, SimulatedUnderTest] = {}
        self._all: list[SimulatedUnderTest] = []

    async def device(self, role: str) -> DeviceUnderTest:
        if role not in self._devices:
            prefix = "CERT" if role == "primary" else f"CERT{role.upper()}"
            self._devices[role] = await self.build(prefix)
        return self._devices[role]

    async def build(self, prefix: str, *, options: dict[str, str] | None = None,
                    config: dict[str, Any] | None = None, broker: str | None = None,
                    port: int | None = None) -> SimulatedUnderTest:
        """A fresh one-device fleet (its serial follows ``prefix``). On a port chosen here,
        a start that finds the port taken (another process got the same free port between
        the check and the bind) is tried again on another."""
        for attempt in range(1, BIND_ATTEMPTS + 1):
            chosen = port or free_port()
            fleet = await self.spec.build(SimOptions(
                count=1, host=self.host, port=chosen, broker=broker or self.broker_url,
                serial_prefix=prefix, extra={**self.options, **(options or {})}))
            try:
                dut = SimulatedUnderTest(fleet, {**self.config, **(config or {})}, chosen,
                                         prefix, self.child_config)
            except NotRun:
                await fleet.stop()
                raise
            try:
                await fleet.start()
            except OSError as exc:
                await fleet.stop()
                if exc.errno != errno.EADDRINUSE or port is not None or \
                        attempt == BIND_ATTEMPTS:
                    raise
                continue
            self._all.append(dut)
            return dut
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def moved(self, dut: DeviceUnderTest) -> DeviceUnderTest:
        """Stop the simulator and start it again with the same serial on a new port."""
        assert isinstance(dut, SimulatedUnderTest)
        await dut.stop()
        moved = await self.build(dut.prefix)
        for role, existing in self._devices.items():
            if existing is dut:
                self._devices[role] = moved
        return moved

    async def stop(self) -> None:
        await asyncio.gather(*(d.stop() for d in self._all), return_exceptions=True)


class DeviceTarget(Target):
    """Real devices from a ``--device-config`` file."""

    mode = "device"

    def __init__(self, devices: DeviceFile, person: Person | None) -> None:
        self.entries = devices.devices
        self.person = person
        self._roles = {"primary": 0, "second": 1}
        self._devices: dict[int, RealUnderTest] = {}

    async def device(self, role: str) -> DeviceUnderTest:
        index = self._roles.get(role)
        if index is None:
            raise NotRun(f"a '{role}' device is made by the simulator; not available at a real "
                         "device")
        if index >= len(self.entries):
            raise NotRun("needs a second device of the same plugin: list two in the device file")
        if index not in self._devices:
            self._devices[index] = RealUnderTest(self.entries[index], self.person)
        return self._devices[index]


__all__ = ["MANUAL_FAULTS", "ChildEntry", "ConsolePerson", "DeviceEntry", "DeviceFile",
           "DeviceFileError", "DeviceTarget", "DeviceUnderTest", "Person", "RealUnderTest",
           "SimulatedUnderTest", "SimulatorTarget", "Target", "merged_truth", "station_of"]
