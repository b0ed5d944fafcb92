"""What the kit certifies against: simulated devices, or a real device with a person beside it.

Cases only see :class:`DeviceUnderTest`: its registration (plugin, kind, config), faults to
inject and clear, and its ground truth. A simulator does all three itself (through the plugin's
:class:`~ttcs.simulators.base.SimulatorSpec`, exactly as ``ttcs sim run`` starts it). At a real
device there is no ground truth and no fault injection: a person is asked to do the fault and
to confirm what the device did — or, in a run without a person, those steps are *not run*.
"""

from __future__ import annotations

import abc
import asyncio
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import TTCSError
from ..schemas import DeviceKind
from ..schemas.errors import explain
from ..simulators.base import Fault, Fleet, SimOptions, SimulatorSpec
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


class DeviceFileError(TTCSError):
    """The ``--device-config`` file is missing or invalid."""


class DeviceEntry(BaseModel):
    """One real device in a ``--device-config`` file."""

    model_config = ConfigDict(extra="forbid")

    plugin: str
    kind: DeviceKind
    config: dict[str, Any] = Field(default_factory=dict)
    serial: str | None = Field(default=None, description="the serial on the device's label, "
                               "if the certifier wants it checked")


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
    """A simulated device from one fleet of the plugin's simulator."""

    mode = "simulator"

    def __init__(self, fleet: Fleet, config_overrides: dict[str, Any], port: int,
                 prefix: str) -> None:
        self.fleet = fleet
        [self.sim] = list(fleet.devices.values())
        self.port = port
        self.prefix = prefix
        self._overrides = config_overrides

    def registration(self) -> dict[str, Any]:
        try:
            reg = copy.deepcopy(self.sim.registration())
        except NotImplementedError as exc:
            raise NotRun(f"the simulator cannot say how to register its device: {exc}") from exc
        reg["config"] = {**reg.get("config", {}), **self._overrides}
        return reg

    @property
    def expected_serial(self) -> str:
        return self.sim.serial

    async def inject(self, fault: Fault, **params: Any) -> None:
        await self.sim.inject(fault, **params)

    async def clear(self, fault: Fault | None = None) -> None:
        await self.sim.clear(fault)

    def truth(self) -> dict[str, Any]:
        data: dict[str, Any] = self.sim.truth.to_json()
        return data

    def state(self) -> dict[str, Any]:
        return self.sim.state()

    async def stop(self) -> None:
        await self.fleet.stop()


class RealUnderTest(DeviceUnderTest):
    """A real device, with a person beside it or not."""

    mode = "device"

    def __init__(self, entry: DeviceEntry, person: Person | None) -> None:
        self.entry = entry
        self.person = person

    def registration(self) -> dict[str, Any]:
        return {"plugin": self.entry.plugin, "kind": self.entry.kind.value,
                "config": dict(self.entry.config)}

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
                 config: dict[str, Any] | None = None, host: str = "127.0.0.1") -> None:
        self.spec = spec
        self.broker_url = broker_url
        self.options = dict(options or {})
        self.config = dict(config or {})
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
        """A fresh one-device fleet (its serial follows ``prefix``)."""
        port = port or free_port()
        fleet = await self.spec.build(SimOptions(
            count=1, host=self.host, port=port, broker=broker or self.broker_url,
            serial_prefix=prefix, extra={**self.options, **(options or {})}))
        if len(fleet.devices) != 1:
            await fleet.stop()
            raise NotRun(f"simulator {self.spec.name} built {len(fleet.devices)} devices for "
                         "--count 1")
        await fleet.start()
        dut = SimulatedUnderTest(fleet, {**self.config, **(config or {})}, port, prefix)
        self._all.append(dut)
        return dut

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


__all__ = ["MANUAL_FAULTS", "ConsolePerson", "DeviceEntry", "DeviceFile", "DeviceFileError",
           "DeviceTarget", "DeviceUnderTest", "Person", "RealUnderTest", "SimulatedUnderTest",
           "SimulatorTarget", "Target"]
