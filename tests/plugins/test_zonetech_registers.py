"""ZoneTech register decoding: what the simulator encodes, the driver decodes to the same
values, and registers no controller could send are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcs.plugins.zonetech import registers as reg
from ttcs.plugins.zonetech.station import decode_amplifier, decode_identity
from ttcs.simulators.zonetech_controller import ZoneController


def blocks(sim: ZoneController) -> tuple[list[int], list[int], list[int]]:
    return (sim.input_registers(*reg.IDENTITY_BLOCK), sim.input_registers(
        *reg.TELEMETRY_BLOCK), sim.input_registers(*reg.LINE_BLOCK))


@settings(max_examples=60, deadline=None)
@given(lines=st.integers(1, 8), relays=st.lists(st.booleans(), min_size=8, max_size=8),
       volumes=st.lists(st.integers(0, 100), min_size=8, max_size=8),
       ambient=st.floats(-20, 60).map(lambda t: round(t, 1)), mains=st.booleans(),
       battery=st.integers(0, 100), line_faults=st.lists(st.booleans(), min_size=8,
                                                          max_size=8))
def test_what_the_simulator_encodes_the_driver_decodes(
        lines: int, relays: list[bool], volumes: list[int], ambient: float, mains: bool,
        battery: int, line_faults: list[bool]) -> None:
    sim = ZoneController("ZT-PROP", lines=lines, firmware="3.12.5", ambient=ambient)
    sim.relays, sim.volumes = relays[:lines], volumes[:lines]
    sim.mains, sim.battery, sim.line_faults = mains, battery, line_faults[:lines]
    identity_words, telemetry_words, line_words = blocks(sim)
    identity = decode_identity(identity_words)
    assert (identity.serial, identity.lines, identity.firmware, identity.model) == (
        "ZT-PROP", lines, "3.12.5", f"ZA-{lines}")
    amp = decode_amplifier(telemetry_words, line_words, lines)
    truth = sim.telemetry()
    assert amp.temperature == truth["temperature"]
    assert amp.supply_voltage == truth["supply_voltage"]
    assert amp.output_current == pytest.approx(truth["output_current"], abs=0.001 * lines)
    assert amp.line_currents == truth["line_currents"]
    assert amp.on_battery is (not mains) and amp.battery == battery
    assert amp.line_faults == line_faults[:lines]
    assert ("line_fault" in amp.faults) is any(line_faults[:lines])


def test_an_impossible_line_count_or_empty_serial_is_refused() -> None:
    words, _, _ = blocks(ZoneController("ZT-1"))
    with pytest.raises(ValueError, match="lines"):
        decode_identity([*words[:8], 12, *words[9:]])
    with pytest.raises(ValueError, match="empty serial"):
        decode_identity([0] * 8 + words[8:])


def test_a_battery_charge_over_100_is_refused() -> None:
    _, telemetry, line_block = blocks(ZoneController("ZT-1"))
    telemetry[reg.BATTERY_CHARGE - reg.TELEMETRY_BLOCK[0]] = 250
    with pytest.raises(ValueError, match="percentage"):
        decode_amplifier(telemetry, line_block, 8)
