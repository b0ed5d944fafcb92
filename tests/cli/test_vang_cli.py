"""A VangTech speaker through the CLI alone: `ttcs sim run vang`, then `ttcs devices add`,
`status` and `command` (play, volume, stop, test tone); the simulator's ground truth, read
over its control plane, agrees with what the CLI said."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cli.test_board_cli import add_args, simulator
from tests.cli.test_cli import AREAS_CSV, Cli


@pytest.fixture
async def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path / "var", "mqtt://127.0.0.1:9")  # no MQTT here: the speaker speaks HTTP
    areas = tmp_path / "areas.csv"
    areas.write_text(AREAS_CSV, encoding="utf-8")
    await c.run("areas", "import", str(areas))
    return c


async def truth(control: str, serial: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{control}/devices/{serial}/truth") as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


async def test_a_vang_speaker_through_the_cli_alone(cli: Cli) -> None:
    proc, sim = await simulator("vang", "--count", "2", "--serial-prefix",
                                f"VTCLI{os.getpid()}", "--option", "stream_seconds=60")
    try:
        first, second = sim["devices"]
        device = await cli.json(*add_args(first["add"]))
        assert (device["serial"], device["vendor"], device["kind"]) == (
            first["serial"], "VangTech", "ip_speaker")
        assert device["config"]["secret"] == "**********"  # masked, never printed
        status = await cli.json("devices", "status", device["id"])
        assert (status["connectivity"], status["volume"], status["activity"]) == (
            "online", 60, "idle")

        play = {"type": "play", "stream_url": "http://127.0.0.1:9/live.mp3",
                "content_id": "ct-cli", "level": "priority", "volume": 70}
        played = await cli.json("devices", "command", device["id"], json.dumps(play))
        assert played["status"] == "accepted"
        status = await cli.json("devices", "status", device["id"])
        assert (status["activity"], status["current_item"]) == ("playing", "ct-cli")
        louder = await cli.json("devices", "command", device["id"],
                                '{"type": "set_volume", "volume": 35}')
        stopped = await cli.json("devices", "command", device["id"], '{"type": "stop"}')
        assert (louder["status"], stopped["status"]) == ("done", "done")
        status = await cli.json("devices", "status", device["id"])
        assert (status["activity"], status["volume"]) == ("idle", 35)

        seen = await truth(sim["control"], first["serial"])
        [record] = seen["plays"]
        assert (record["content_id"], record["level"], record["volume"], record["outcome"]) == (
            "ct-cli", "priority", 70, "stopped")
        assert record["command_id"] == played["command_id"]
        assert [level for _, level in seen["volume_changes"]] == [35]
        assert [c["path"] for c in seen["commands"]] == [
            "/api/v1/play", "/api/v1/volume", "/api/v1/stop"]
        assert seen["rejections"] == []
        untouched = await truth(sim["control"], second["serial"])
        assert untouched["plays"] == untouched["commands"] == []
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_wrong_secret_is_refused_at_registration_with_one_line(cli: Cli) -> None:
    proc, sim = await simulator("vang", "--serial-prefix", f"VTBAD{os.getpid()}")
    try:
        [speaker] = sim["devices"]
        args = [a.replace("secret=vang-secret", "secret=guessed") for a in
                add_args(speaker["add"])]
        code, _, err = await cli.run(*args, ok=False)
        assert code == 1 and err.count("\n") == 1
        assert "refused our signature (bad_signature" in err and "guessed" not in err
        seen = await truth(sim["control"], speaker["serial"])
        assert [r["code"] for r in seen["rejections"]] == ["bad_signature"]
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_secret_read_from_a_file_registers_the_speaker(cli: Cli, tmp_path: Path
                                                                ) -> None:
    proc, sim = await simulator("vang", "--serial-prefix", f"VTFILE{os.getpid()}")
    try:
        [speaker] = sim["devices"]
        args = add_args(speaker["add"])
        [given] = [a for a in args if a.startswith("secret=")]
        secret = tmp_path / "vt.secret"
        secret.write_text(given.removeprefix("secret=") + "\n", encoding="utf-8")
        device = await cli.json(*[f"secret=@{secret}" if a == given else a for a in args])
        assert device["serial"] == speaker["serial"]  # probed with the secret from the file
        assert device["config"]["secret"] == "**********"
        missing = [f"secret=@{tmp_path / 'nope'}" if a == given else a for a in args]
        code, _, err = await cli.run(*missing, ok=False)
        assert code != 0 and "cannot read" in err and "nope" in err
    finally:
        proc.terminate()
        await proc.wait()
