"""Text-to-speech: the engine contract, the espeak-ng default, regional voices, WAV handling.

An engine turns text into WAV bytes in a named voice. The default, espeak-ng, runs offline
and ships the three Vietnamese voices the plans ask for: Northern (``vi``), Central
(``vi-vn-x-central``) and Southern (``vi-vn-x-south``). A vendor's cloud engine plugs in
through the ``ttcs_register_tts`` hook and is chosen by name (``tts_engine`` setting, or
``ENGINE:VOICE`` in ``tts_voices``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ...aio import wait_for
from ..errors import TtsError


class Region(StrEnum):
    """The three dialect regions a Vietnamese voice is chosen by."""

    NORTH = "north"
    CENTRAL = "central"
    SOUTH = "south"


#: Region of each of the 34 provinces and cities (official codes since 1 July 2025), by the
#: macro-regions Bắc Bộ / Trung Bộ (with Bắc Trung Bộ and Tây Nguyên) / Nam Bộ. An area
#: inherits the region of the province above it; ``tts_voices`` overrides it per area.
PROVINCE_REGIONS: dict[str, Region] = {
    "1": Region.NORTH,  # Thành phố Hà Nội
    "4": Region.NORTH,  # Cao Bằng
    "8": Region.NORTH,  # Tuyên Quang
    "11": Region.NORTH,  # Điện Biên
    "12": Region.NORTH,  # Lai Châu
    "14": Region.NORTH,  # Sơn La
    "15": Region.NORTH,  # Lào Cai
    "19": Region.NORTH,  # Thái Nguyên
    "20": Region.NORTH,  # Lạng Sơn
    "22": Region.NORTH,  # Quảng Ninh
    "24": Region.NORTH,  # Bắc Ninh
    "25": Region.NORTH,  # Phú Thọ
    "31": Region.NORTH,  # Thành phố Hải Phòng
    "33": Region.NORTH,  # Hưng Yên
    "37": Region.NORTH,  # Ninh Bình
    "38": Region.CENTRAL,  # Thanh Hóa (Bắc Trung Bộ)
    "40": Region.CENTRAL,  # Nghệ An
    "42": Region.CENTRAL,  # Hà Tĩnh
    "44": Region.CENTRAL,  # Quảng Trị
    "46": Region.CENTRAL,  # Thành phố Huế
    "48": Region.CENTRAL,  # Thành phố Đà Nẵng
    "51": Region.CENTRAL,  # Quảng Ngãi
    "52": Region.CENTRAL,  # Gia Lai
    "56": Region.CENTRAL,  # Khánh Hòa
    "66": Region.CENTRAL,  # Đắk Lắk
    "68": Region.CENTRAL,  # Lâm Đồng
    "75": Region.SOUTH,  # Đồng Nai
    "79": Region.SOUTH,  # Thành phố Hồ Chí Minh
    "80": Region.SOUTH,  # Tây Ninh
    "82": Region.SOUTH,  # Đồng Tháp
    "86": Region.SOUTH,  # Vĩnh Long
    "91": Region.SOUTH,  # An Giang
    "92": Region.SOUTH,  # Thành phố Cần Thơ
    "96": Region.SOUTH,  # Cà Mau
}


def province_region(code: str) -> Region | None:
    """The region of a province code ("46", also "046"), or None for any other code."""
    return PROVINCE_REGIONS.get(str(int(code)) if code.isdigit() else code)


@dataclass(frozen=True)
class Voice:
    """One voice of an engine."""

    name: str
    language: str  # BCP 47 primary tag, e.g. "vi"
    region: Region | None = None
    description: str = ""


@runtime_checkable
class TtsEngine(Protocol):
    """A text-to-speech engine.

    ``name`` identifies it in settings and in the render cache (so two engines must not share
    a name); ``voices`` lists what ``synthesize`` accepts. ``synthesize`` returns a complete
    WAV file (RIFF/PCM); it may take seconds (a cloud call) and must not block the event loop.
    Raise :class:`~ttcs.core.errors.TtsError` on failure.
    """

    name: str
    voices: Sequence[Voice]

    async def synthesize(self, text: str, voice: str) -> bytes: ...


class EspeakEngine:
    """espeak-ng in a subprocess (``apt-get install espeak-ng``): offline, fast, robotic."""

    name = "espeak-ng"
    voices: Sequence[Voice] = (
        Voice("vi", "vi", Region.NORTH, "Vietnamese (Northern)"),
        Voice("vi-vn-x-central", "vi", Region.CENTRAL, "Vietnamese (Central)"),
        Voice("vi-vn-x-south", "vi", Region.SOUTH, "Vietnamese (Southern)"),
    )

    def __init__(self, binary: str = "espeak-ng", *, words_per_minute: int | None = None,
                 timeout: float = 120.0) -> None:
        self.binary = binary
        self.words_per_minute = words_per_minute
        self.timeout = timeout

    async def synthesize(self, text: str, voice: str) -> bytes:
        if voice not in {v.name for v in self.voices}:
            raise TtsError(f"espeak-ng has no voice '{voice}' here (voices: "
                           f"{', '.join(v.name for v in self.voices)})")
        binary = shutil.which(self.binary)
        if binary is None:
            raise TtsError(f"'{self.binary}' is not installed (apt-get install espeak-ng)")
        args = [binary, "-v", voice, "-b", "1", "--stdin", "--stdout"]
        if self.words_per_minute:
            args += ["-s", str(self.words_per_minute)]
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await wait_for(proc.communicate(text.encode("utf-8")),
                                              self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise TtsError(f"espeak-ng took longer than {self.timeout:.0f} s") from None
        if proc.returncode != 0 or not out:
            why = err.decode("utf-8", "replace").strip()[:300] or f"exit code {proc.returncode}"
            raise TtsError(f"espeak-ng failed: {why}")
        # writing to a pipe, espeak-ng cannot seek back to fill in the sizes
        return fix_wav_sizes(out)


# -- WAV -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_rate: int
    bits_per_sample: int
    byte_rate: int
    data_size: int

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.data_size / self.byte_rate if self.byte_rate else 0.0


def _chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(id, offset of body, declared size) of each RIFF chunk; the last may be truncated."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TtsError("not a WAV file (no RIFF/WAVE header)")
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((cid, pos + 8, size))
        if cid == b"data":
            break
        pos += 8 + size + (size & 1)
    return chunks


def parse_wav(data: bytes, total_size: int | None = None) -> WavInfo:
    """Format and length of a WAV file from its header. ``data`` may be only the head of a
    file of ``total_size`` bytes; the data chunk's size is clamped to the bytes present."""
    total = len(data) if total_size is None else total_size
    fmt = data_size = None
    for cid, body, size in _chunks(data):
        if cid == b"fmt " and size >= 16 and body + 16 <= len(data):
            fmt = struct.unpack_from("<HHIIHH", data, body)
        elif cid == b"data":
            data_size = max(0, min(size, total - body))
    if fmt is None or data_size is None:
        raise TtsError("WAV file without a 'fmt ' or 'data' chunk")
    _tag, channels, rate, byte_rate, _align, bits = fmt
    if not channels or not rate or not byte_rate:
        raise TtsError("WAV file with an empty format (0 channels, rate or byte rate)")
    return WavInfo(channels, rate, bits, byte_rate, data_size)


def fix_wav_sizes(data: bytes) -> bytes:
    """The WAV with its RIFF and data chunk sizes set to the bytes present (streamed WAVs
    carry placeholders such as 0x7FFFFFFF, which some players refuse)."""
    chunks = _chunks(data)
    last = chunks[-1] if chunks else None
    if last is None or last[0] != b"data":
        raise TtsError("WAV file without a 'data' chunk")
    real = len(data) - last[1]
    if last[2] <= real and struct.unpack_from("<I", data, 4)[0] <= len(data) - 8:
        return data  # sizes fit (chunks after 'data' are allowed)
    fixed = bytearray(data)
    struct.pack_into("<I", fixed, 4, len(data) - 8)
    struct.pack_into("<I", fixed, last[1] - 4, real)
    return bytes(fixed)
