"""RecentResults: a repeated idempotency key is answered from memory, never acted on twice."""

from __future__ import annotations

import asyncio

import pytest

from ttcs.core.errors import DeviceTimeout
from ttcs.core.idempotency import RecentResults
from ttcs.schemas import CommandResult, CommandStatus, SetVolumeCommand


def volume(key: str) -> SetVolumeCommand:
    return SetVolumeCommand(volume=30, idempotency_key=key)


class Device:
    """Counts what it is asked to do; answers ``status`` after ``gate`` opens."""

    def __init__(self, status: CommandStatus = CommandStatus.DONE) -> None:
        self.acted = 0
        self.status = status
        self.gate = asyncio.Event()
        self.gate.set()

    async def act(self, command: SetVolumeCommand) -> CommandResult:
        self.acted += 1
        await self.gate.wait()
        return CommandResult(command_id=command.id, status=self.status)


async def test_a_repeated_key_gets_the_first_result_under_the_new_command_id() -> None:
    results, device = RecentResults(), Device()
    first, again = volume("k"), volume("k")
    a = await results.run(first, lambda: device.act(first))
    b = await results.run(again, lambda: device.act(again))
    assert device.acted == 1 and (a.command_id, b.command_id) == (first.id, again.id)
    assert b.status is CommandStatus.DONE


async def test_a_repeat_arriving_while_the_first_runs_waits_for_it_instead_of_acting() -> None:
    results, device = RecentResults(), Device()
    device.gate.clear()
    first, again = volume("k"), volume("k")
    running = asyncio.create_task(results.run(first, lambda: device.act(first)))
    waiting = asyncio.create_task(results.run(again, lambda: device.act(again)))
    for _ in range(5):  # let both tasks run up to where they wait
        await asyncio.sleep(0)
    assert device.acted == 1 and not waiting.done()
    device.gate.set()
    assert (await running).ok and (await waiting).command_id == again.id
    assert device.acted == 1


async def test_failures_and_errors_are_not_remembered_so_a_retry_acts_again() -> None:
    results, device = RecentResults(), Device(CommandStatus.FAILED)
    command = volume("k")
    await results.run(command, lambda: device.act(command))

    async def timeout() -> CommandResult:
        raise DeviceTimeout("no answer")

    with pytest.raises(DeviceTimeout):
        await results.run(command, timeout)
    device.status = CommandStatus.DONE
    assert (await results.run(command, lambda: device.act(command))).ok
    assert device.acted == 2 and results.get("k") is not None


async def test_only_the_last_keys_are_kept() -> None:
    results, device = RecentResults(keep=3), Device()
    for n in range(5):
        command = volume(f"k{n}")
        await results.run(command, lambda c=command: device.act(c))
    assert len(results) == 3 and results.get("k0") is None and results.get("k4") is not None
