"""Helpers the display-board plugins share: how a ``show`` becomes a timed playlist item."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

from ..core.errors import ProtocolError
from ..schemas import CommandResult, ShowCommand

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def time_of_day(value: str | None) -> str | None:
    """Normalise ``H:MM``/``HH:MM`` to ``HH:MM`` (``None``/empty stays ``None``)."""
    if value in (None, ""):
        return None
    hours, _, minutes = str(value).partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"'{value}' is not a time of day HH:MM")
    return f"{int(hours):02d}:{int(minutes):02d}"


def show_window(command: ShowCommand, dwell: float, at: datetime
                ) -> tuple[float, datetime | None, datetime | None]:
    """(duration, valid_from, valid_until) of the board item a ``show`` command stands for.

    With ``seconds`` the item shows that long per turn and its validity ends that long after
    it starts (so it shows for ``seconds`` and goes); without, it rotates every ``dwell``
    seconds until cleared or until ``valid_until``.
    """
    valid_from, valid_until = command.valid_from, command.valid_until
    if command.seconds is None:
        return dwell, valid_from, valid_until
    start = max(at, valid_from) if valid_from else at
    end = start + timedelta(seconds=command.seconds)
    return command.seconds, valid_from, min(end, valid_until) if valid_until else end


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; anything else is :class:`ProtocolError`."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ProtocolError(f"screenshot is not a PNG: {png[:16]!r}")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def remembered(result: CommandResult) -> CommandResult:
    """The copy of a result kept for answering a repeated idempotency key: without the
    screenshot's PNG, which is too big to keep hundreds of per board."""
    if "png_base64" not in result.data:
        return result
    data = {k: v for k, v in result.data.items() if k != "png_base64"}
    return result.model_copy(update={"data": {**data, "png_dropped": True}})


__all__ = ["PNG_SIGNATURE", "png_size", "remembered", "show_window", "time_of_day"]
