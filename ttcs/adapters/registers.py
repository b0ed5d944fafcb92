"""Values in Modbus registers: 32-bit numbers in two words, signed words, scale factors, text.

A Modbus register is one unsigned 16-bit word; anything wider or signed is a vendor's
convention. These are small pure functions so a plugin states its vendor's convention once
(``WordOrder.LOW_FIRST``, a scale of 0.1 °C) and the simulator encodes with the very same
rules the driver decodes with. They raise :class:`ValueError` on words or values that do not
fit, which :func:`ttcs.adapters.errors.map_decode_errors` turns into a protocol error.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

WORD_MAX = 0xFFFF


class WordOrder(StrEnum):
    """Which register of a 32-bit pair holds the high half (bytes are big-endian in both)."""

    HIGH_FIRST = "high_first"  # "ABCD": the Modbus spec's own order
    LOW_FIRST = "low_first"  # "CDAB": word-swapped, common in PLCs and amplifiers


def _check_words(words: Sequence[int], n: int) -> None:
    if len(words) != n:
        raise ValueError(f"expected {n} registers, got {len(words)}")
    for w in words:
        if not 0 <= w <= WORD_MAX:
            raise ValueError(f"register value {w} is not a 16-bit word")


def u32_from_words(words: Sequence[int], order: WordOrder) -> int:
    """The unsigned 32-bit value held in two registers."""
    _check_words(words, 2)
    high, low = (words[0], words[1]) if order is WordOrder.HIGH_FIRST else (words[1], words[0])
    return (high << 16) | low


def u32_to_words(value: int, order: WordOrder) -> list[int]:
    """Two registers holding the unsigned 32-bit ``value``."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{value} does not fit in 32 bits unsigned")
    high, low = value >> 16, value & WORD_MAX
    return [high, low] if order is WordOrder.HIGH_FIRST else [low, high]


def i32_from_words(words: Sequence[int], order: WordOrder) -> int:
    """The signed (two's complement) 32-bit value held in two registers."""
    raw = u32_from_words(words, order)
    return raw - (1 << 32) if raw & 0x80000000 else raw


def i32_to_words(value: int, order: WordOrder) -> list[int]:
    if not -(1 << 31) <= value < (1 << 31):
        raise ValueError(f"{value} does not fit in 32 bits signed")
    return u32_to_words(value & 0xFFFFFFFF, order)


def i16_from_word(word: int) -> int:
    """A signed 16-bit value (two's complement) from one register."""
    _check_words([word], 1)
    return word - 0x10000 if word & 0x8000 else word


def i16_to_word(value: int) -> int:
    if not -0x8000 <= value <= 0x7FFF:
        raise ValueError(f"{value} does not fit in 16 bits signed")
    return value & WORD_MAX


def scaled(raw: int, scale: float, *, digits: int = 3) -> float:
    """A register's engineering value: ``raw × scale`` (0.1 °C, 1 mV, ...), rounded to
    ``digits`` decimals so that 215 × 0.1 reads 21.5 and not 21.500000000000004."""
    return round(raw * scale, digits)


def unscaled(value: float, scale: float) -> int:
    """The raw integer a device stores for ``value`` at ``scale`` (nearest step)."""
    if scale == 0:
        raise ValueError("scale must not be zero")
    return round(value / scale)


def text_from_words(words: Sequence[int]) -> str:
    """ASCII text, two characters per register (high byte first), NUL padded."""
    _check_words(words, len(words))
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    text = raw.split(b"\x00", 1)[0]
    try:
        return text.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ValueError(f"registers hold non-ASCII text {text!r}") from exc


def text_to_words(text: str, registers: int) -> list[int]:
    """``registers`` words holding ``text`` (ASCII), NUL padded."""
    raw = text.encode("ascii")
    if len(raw) > registers * 2:
        raise ValueError(f"{text!r} does not fit in {registers} registers")
    raw = raw.ljust(registers * 2, b"\x00")
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def bits_from_word(word: int, names: Sequence[str]) -> list[str]:
    """The names of the bits set in ``word`` (bit 0 is ``names[0]``); unnamed bits that are
    set appear as ``bit<N>`` so nothing a device reports is silently dropped."""
    _check_words([word], 1)
    return [(names[n] if n < len(names) else f"bit{n}") for n in range(16) if word >> n & 1]


def word_from_bits(active: Sequence[str], names: Sequence[str]) -> int:
    """The word with the named bits set (the inverse of :func:`bits_from_word`)."""
    word = 0
    for name in active:
        if name in names:
            word |= 1 << names.index(name)
        elif name.startswith("bit") and name[3:].isdigit() and int(name[3:]) < 16:
            word |= 1 << int(name[3:])
        else:
            raise ValueError(f"no bit named {name!r}")
    return word


__all__ = ["WordOrder", "bits_from_word", "i16_from_word", "i16_to_word", "i32_from_words",
           "i32_to_words", "scaled", "text_from_words", "text_to_words", "u32_from_words",
           "u32_to_words", "unscaled", "word_from_bits"]
