"""Against a real device (``--device-config``): steps that need a person become prompts, or are
not run when nobody is there, and the report says so. A simulated LEDViet board stands in for
the device in the field here: the kit is only given its address and token, as a certifier
would be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance.support import run
from ttcs.conformance.cases import Profile, by_id
from ttcs.conformance.outcome import Status
from ttcs.conformance.targets import MANUAL_FAULTS, Person
from ttcs.simulators.base import Fault
from ttcs.simulators.ledviet_board import LedVietBoard
from ttcs.testing.net import free_port


@pytest.fixture
async def board(tmp_path: Path) -> Any:
    device = LedVietBoard("LV-FIELD-7", port=free_port(), token="field-token-4411")
    await device.start()
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump({"plugin": "ledviet", "kind": "led_board",
                                    "serial": "LV-FIELD-7",
                                    "config": {"url": device.url, "token": device.token,
                                               "poll_interval": 0.3}}))
    yield device, path
    await device.stop()


async def test_without_a_person_fault_steps_are_not_run_and_the_report_says_so(
        board: tuple[LedVietBoard, Path]) -> None:
    _, path = board
    report = await run("ledviet", profiles=[Profile.CORE], device_file=path)
    statuses = {c.id: c.status for c in report.cases}
    assert Status.FAILED not in statuses.values()
    for case_id in ("TC-CORE-007", "TC-CORE-008"):  # they do something to the device
        assert by_id()[case_id].faults
        assert statuses[case_id] is Status.NOT_RUN
    assert statuses["TC-CORE-002"] is Status.PASSED  # the label's serial is checked
    assert statuses["TC-CORE-005"] is Status.NOT_RUN  # only the device can show its effect
    assert report.target["mode"] == "device"
    assert any("not run (the run was not interactive)" in n for n in report.notes)
    assert report.profiles["core"] == "incomplete"
    assert report.level.name == "not certified"


class Technician(Person):
    """A person at the device who does what the kit asks (here: on the stand-in board)."""

    def __init__(self, device: LedVietBoard) -> None:
        self.device = device
        self.asked: list[str] = []

    async def act(self, instruction: str) -> None:
        self.asked.append(instruction)
        for fault, (start, end) in MANUAL_FAULTS.items():
            if instruction.startswith(start):
                await self.device.inject(fault)
            elif end and instruction == end:
                await self.device.clear(fault)

    async def confirm(self, question: str) -> bool:
        self.asked.append(question)
        return True


async def test_with_a_person_the_fault_steps_are_asked_and_run(
        board: tuple[LedVietBoard, Path]) -> None:
    device, path = board
    person = Technician(device)
    report = await run("ledviet", profiles=[Profile.CORE], device_file=path, person=person)
    statuses = {c.id: c.status for c in report.cases}
    assert statuses["TC-CORE-007"] is Status.PASSED  # the hub saw the battery
    assert statuses["TC-CORE-008"] is Status.PASSED
    assert MANUAL_FAULTS[Fault.POWER_LOSS_BATTERY][0] in person.asked
    [effect] = [c for c in report.cases if c.id == "TC-CORE-005"]
    assert [k.by for k in effect.checks if k.status is Status.PASSED][-1] == "person"
