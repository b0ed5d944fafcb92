"""What one read of a ZoneTech station says: amplifier telemetry, relays, volumes, decoder.

Decoding is pure (registers in, values out), so it is tested without a device and shared by
the controller and its zones. Units: °C, V, A, %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...adapters.registers import (
    bits_from_word,
    i16_from_word,
    scaled,
    text_from_words,
    u32_from_words,
)
from ..audio_decoder import DecoderState
from . import registers as reg


@dataclass(frozen=True)
class Identity:
    serial: str
    lines: int
    firmware: str

    @property
    def model(self) -> str:
        return f"ZA-{self.lines}"


def decode_identity(words: Sequence[int]) -> Identity:
    """The identity block (input registers 0-10)."""
    if len(words) != reg.IDENTITY_BLOCK[1]:
        raise ValueError(f"identity block has {len(words)} registers, not "
                         f"{reg.IDENTITY_BLOCK[1]}")
    serial = text_from_words(words[reg.SERIAL:reg.SERIAL + reg.SERIAL_WORDS]).strip()
    if not serial:
        raise ValueError("the controller reports an empty serial number")
    lines = words[reg.LINE_COUNT]
    if not 1 <= lines <= reg.MAX_LINES:
        raise ValueError(f"the controller reports {lines} lines (a ZA has 1-{reg.MAX_LINES})")
    version = words[reg.FIRMWARE]
    firmware = f"{version // 100}.{version % 100}.{words[reg.FIRMWARE_BUILD]}"
    return Identity(serial=serial, lines=lines, firmware=firmware)


@dataclass(frozen=True)
class Amplifier:
    """The amplifier's telemetry (input registers 20-29 and 40-48)."""

    temperature: float
    supply_voltage: float
    output_current: float
    faults: list[str]
    power: list[str]
    battery: int
    uptime: int
    line_currents: list[float]
    line_faults: list[bool]

    @property
    def on_battery(self) -> bool:
        return "on_battery" in self.power


def decode_amplifier(telemetry: Sequence[int], line_block: Sequence[int], lines: int
                     ) -> Amplifier:
    """Decode the telemetry block (20-29) and the line block (40-48) for ``lines`` lines."""
    if len(telemetry) != reg.TELEMETRY_BLOCK[1] or len(line_block) != reg.LINE_BLOCK[1]:
        raise ValueError("telemetry blocks of the wrong size")

    def at(block: Sequence[int], start: int, address: int, n: int = 1) -> Sequence[int]:
        return block[address - start:address - start + n]

    t0, l0 = reg.TELEMETRY_BLOCK[0], reg.LINE_BLOCK[0]
    battery = at(telemetry, t0, reg.BATTERY_CHARGE)[0]
    if battery > 100:
        raise ValueError(f"battery charge {battery} % is not a percentage")
    mask = at(line_block, l0, reg.LINE_FAULTS)[0]
    return Amplifier(
        temperature=scaled(i16_from_word(at(telemetry, t0, reg.TEMPERATURE)[0]),
                           reg.TEMPERATURE_SCALE, digits=1),
        supply_voltage=scaled(u32_from_words(at(telemetry, t0, reg.SUPPLY_VOLTAGE, 2),
                                             reg.WORD_ORDER), reg.VOLTAGE_SCALE),
        output_current=scaled(u32_from_words(at(telemetry, t0, reg.OUTPUT_CURRENT, 2),
                                             reg.WORD_ORDER), reg.CURRENT_SCALE),
        faults=bits_from_word(at(telemetry, t0, reg.FAULT_BITS)[0], reg.FAULTS),
        power=bits_from_word(at(telemetry, t0, reg.POWER_BITS)[0], reg.POWER),
        battery=battery,
        uptime=u32_from_words(at(telemetry, t0, reg.UPTIME, 2), reg.WORD_ORDER),
        line_currents=[scaled(w, reg.CURRENT_SCALE)
                       for w in at(line_block, l0, reg.LINE_CURRENT, lines)],
        line_faults=[bool(mask >> n & 1) for n in range(lines)],
    )


@dataclass(frozen=True)
class StationSnapshot:
    """One consistent read of the whole station, shared by the controller and its zones."""

    taken_at: float  # time.monotonic()
    identity: Identity
    relays: list[bool]
    volumes: list[int]
    master_volume: int
    amplifier: Amplifier
    decoder: DecoderState | None
    decoder_error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: when the decoder was asked (monotonic): a play it confirmed later is not in its answer
    decoder_asked_at: float = 0.0

    def lines_on(self) -> list[int]:
        return [n + 1 for n, on in enumerate(self.relays) if on]

    @property
    def audio(self) -> bool:
        """Programme reaches the lines: the decoder plays and the amplifier is not muted."""
        return (self.decoder is not None and self.decoder.playing
                and "protection" not in self.amplifier.faults)


__all__ = ["Amplifier", "Identity", "StationSnapshot", "decode_amplifier", "decode_identity"]
