"""Both board families through the CLI alone: `ttcs sim run`, then register, read status,
show text and an image, set brightness and take a screenshot with `ttcs devices ...`."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.cli.test_cli import AREAS_CSV, Cli
from tests.support.brokers import Mosquitto
from tests.support.media import MediaServer, png_image
from tests.support.net import free_port

TTCS = str(Path(sys.executable).with_name("ttcs"))


@pytest.fixture
async def cli(tmp_path: Path, mosquitto: Mosquitto) -> Cli:
    c = Cli(tmp_path / "var", mosquitto.url())
    areas = tmp_path / "areas.csv"
    areas.write_text(AREAS_CSV, encoding="utf-8")
    await c.run("areas", "import", str(areas))
    return c


async def simulator(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(TTCS, "sim", "run", *args,
                                                stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    return proc, json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))


def add_args(add: str) -> list[str]:
    """The ready-made `ttcs devices add ...` of a simulator, area filled in, as argv."""
    words = add.replace("AREA", "19900").split()
    assert words[:3] == ["ttcs", "devices", "add"]
    return words[1:]


def screenshot(result: dict[str, Any]) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(result["data"]["png_base64"])))
    assert image.format == "PNG"
    return image


async def test_push_board_through_the_cli_alone(cli: Cli, media: MediaServer) -> None:
    proc, sim = await simulator("ledviet", "--serial-prefix", f"LVCLI{os.getpid()}")
    try:
        [board] = sim["devices"]
        device = await cli.json(*add_args(board["add"]))
        assert (device["serial"], device["kind"]) == (board["serial"], "led_board")
        ref = media.ref("notice.png", png_image())
        show = {"type": "show", "text": "Họp dân 19h", "media": ref, "content_id": "ct-cli"}
        shown, dimmed = await asyncio.gather(
            cli.json("devices", "command", device["id"], json.dumps(show)),
            cli.json("devices", "command", device["id"],
                     '{"type": "set_brightness", "brightness": 55}'))
        assert (shown["status"], dimmed["status"]) == ("done", "done")
        shot, status = await asyncio.gather(
            cli.json("devices", "command", device["id"], '{"type": "screenshot"}'),
            cli.json("devices", "status", device["id"]))
        assert screenshot(shot).text["ttcs:item"] == "ct-cli"  # type: ignore[attr-defined]
        assert (status["connectivity"], status["brightness"], status["current_item"]) == (
            "online", 55, "ct-cli")
    finally:
        proc.terminate()
        await proc.wait()


async def test_pull_board_through_the_cli_alone(cli: Cli, media: MediaServer) -> None:
    port = free_port()
    proc, sim = await simulator("pullboard", "--serial-prefix", f"PBCLI{os.getpid()}",
                                "--option", f"hub=http://127.0.0.1:{port}", "--option",
                                "poll=0.3")
    try:
        [board] = sim["devices"]
        # each CLI call is a short-lived hub: it serves the device endpoint while it runs
        args = [*add_args(board["add"]), "--config", "listen_host=127.0.0.1"]
        device = await cli.json(*args)
        assert (device["serial"], device["kind"]) == (board["serial"], "lcd_board")
        ref = media.ref("map.png", png_image())
        show = {"type": "show", "text": "Bản đồ", "media": ref, "content_id": "ct-pull"}
        shown = await cli.json("devices", "command", device["id"], json.dumps(show))
        assert shown["status"] == "done"
        dimmed = await cli.json("devices", "command", device["id"],
                                '{"type": "set_brightness", "brightness": 35}')
        assert dimmed["status"] == "done"
        shot = await cli.json("devices", "command", device["id"], '{"type": "screenshot"}')
        assert screenshot(shot).text["ttcs:item"] == "ct-pull"  # type: ignore[attr-defined]
        status = await cli.json("devices", "status", device["id"])
        assert (status["connectivity"], status["brightness"], status["current_item"]) == (
            "online", 35, "ct-pull")
    finally:
        proc.terminate()
        await proc.wait()
