"""Helpers shared by the board end-to-end tests."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from ttcs.core.hub import Hub
from ttcs.schemas import CommandResult, Device, parse_command


async def run(hub: Hub, device: Device, **command: Any) -> CommandResult:
    """Send one command (as a dict) to ``device`` through the hub."""
    return await hub.execute(device.id, parse_command(command))


def picture(result: CommandResult) -> Image.Image:
    """The screenshot a command result carries, decoded (and checked to be a PNG)."""
    assert result.data["mime"] == "image/png"
    png = base64.b64decode(result.data["png_base64"])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    image.load()
    return image


def brightest(image: Image.Image) -> int:
    """The highest channel value anywhere on the screen (0: all dark)."""
    return max(high for _, high in image.convert("RGB").getextrema())


def has_colour(image: Image.Image, predicate: Any) -> bool:
    """Whether any pixel satisfies ``predicate((r, g, b))``."""
    rgb = image.convert("RGB")
    return any(predicate(rgb.getpixel((x, y)))  # type: ignore[arg-type]
               for x in range(0, rgb.width, 2) for y in range(0, rgb.height, 2))


def green(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return g > 60 and g > 2 * r and g > 2 * b


def at(seconds: float) -> str:
    """An ISO timestamp ``seconds`` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def shown_ids(truth: Any) -> list[str]:
    return [entry["item_id"] for entry in truth.shown]
