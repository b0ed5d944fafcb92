"""A third-party Modbus master (mbpoll) against the ZoneTech controller simulator: the
registers documented in docs/plugins/zonetech.md hold what they say, in the word order they
say, and a coil written by mbpoll switches the line."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator

import pytest

from ttcs.adapters.registers import text_from_words
from ttcs.simulators.zonetech_controller import ZoneController

pytestmark = pytest.mark.skipif(shutil.which("mbpoll") is None,
                                reason="mbpoll is not installed (scripts/ensure-system.sh)")


@pytest.fixture
async def controller() -> AsyncIterator[ZoneController]:
    c = ZoneController("ZT-MB01", lines=8, firmware="2.4.17")
    await c.start()
    yield c
    await c.stop()


async def mbpoll(c: ZoneController, *args: str, write: list[str] | None = None
                 ) -> dict[int, int]:
    """Run mbpoll once (PDU addressing, -0) and return {reference: value}."""
    proc = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-p", str(c.port), "-a", str(c.unit), "-0", "-1", "-o", "2",
        *args, c.host, *(write or []),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    text = out.decode()
    assert proc.returncode == 0, text
    return {int(ref): int(value) for ref, value in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", text,
                                                              re.MULTILINE)}


async def test_identity_registers_hold_serial_lines_and_firmware(controller: ZoneController
                                                                 ) -> None:
    words = await mbpoll(controller, "-t", "3", "-r", "0", "-c", "11")
    assert text_from_words([words[n] for n in range(8)]) == "ZT-MB01"
    assert (words[8], words[9], words[10]) == (8, 204, 17)  # 8 lines, firmware 2.04 build 17


async def test_telemetry_scaling_and_low_word_first_order(controller: ZoneController) -> None:
    controller.relays[0] = True
    # mbpoll's 32-bit default is little-endian word order, which is ZoneTech's
    longs = await mbpoll(controller, "-t", "3:int", "-r", "21", "-c", "2")
    truth = controller.telemetry()
    assert longs[21] == round(truth["supply_voltage"] * 1000) == 230400  # mV
    assert longs[23] == round(truth["output_current"] * 1000)  # mA
    words = await mbpoll(controller, "-t", "3", "-r", "20", "-c", "1")
    assert words[20] == round(truth["temperature"] * 10)  # 0.1 °C
    swapped = await mbpoll(controller, "-t", "3:int", "-B", "-r", "21", "-c", "1")
    assert swapped[21] != 230400  # read high word first, the value is wrong: the order matters


async def test_volumes_are_holding_registers(controller: ZoneController) -> None:
    controller.volumes[2] = 45
    words = await mbpoll(controller, "-t", "4", "-r", "0", "-c", "8")
    assert [words[n] for n in range(8)] == controller.volumes
    assert (await mbpoll(controller, "-t", "4", "-r", "16"))[16] == 80
    await mbpoll(controller, "-t", "4", "-r", "16", write=["55"])
    assert controller.master == 55


async def test_a_coil_written_by_mbpoll_switches_the_line(controller: ZoneController) -> None:
    await mbpoll(controller, "-t", "0", "-r", "2", write=["1"])
    assert controller.relays == [False, False, True] + [False] * 5
    assert controller.truth.relays[-1]["line"] == 3
    coils = await mbpoll(controller, "-t", "0", "-r", "0", "-c", "8")
    assert [coils[n] for n in range(8)] == [0, 0, 1, 0, 0, 0, 0, 0]
    inputs = await mbpoll(controller, "-t", "1", "-r", "0", "-c", "3")
    assert (inputs[0], inputs[1], inputs[2]) == (1, 0, 0)  # mains, not on battery, no fault
