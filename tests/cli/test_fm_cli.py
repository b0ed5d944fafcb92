"""An FM station through the CLI alone: `ttcs sim run radivina`, then register the transmitter
and its receiver clusters, read status, switch RF, switch zones and play with `ttcs devices`;
the simulator's control plane says what really happened on the air."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cli.test_board_cli import add_args, simulator
from tests.cli.test_cli import AREAS_CSV, Cli
from tests.support.brokers import Mosquitto
from tests.support.media import MediaServer


@pytest.fixture
async def cli(tmp_path: Path, mosquitto: Mosquitto) -> Cli:
    c = Cli(tmp_path / "var", mosquitto.url())
    (tmp_path / "areas.csv").write_text(AREAS_CSV, encoding="utf-8")
    await c.run("areas", "import", str(tmp_path / "areas.csv"))
    return c


async def sim_state(control: str, serial: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{control}/devices/{serial}") as r:
        return (await r.json())["state"]  # type: ignore[no-any-return]


async def test_fm_station_through_the_cli_alone(media: MediaServer, cli: Cli) -> None:
    proc, sim = await simulator("radivina", "--serial-prefix", f"RVCLI{os.getpid()}",
                                "--option", "thermal_tau=0")
    try:
        transmitter = next(d for d in sim["devices"] if d.get("decoder"))
        serial, control = transmitter["serial"], sim["control"]
        tx = await cli.json(*add_args(transmitter["add"]))
        assert (tx["serial"], tx["kind"], tx["vendor"]) == (serial, "fm_transmitter",
                                                            "RadiVina")
        receivers = [await cli.json("devices", "add", "--plugin", "radivina", "--kind",
                                    "fm_receiver", "--area", "19900", "--parent", tx["id"],
                                    "--config", f"zone={zone}") for zone in (2, 3)]
        assert [r["serial"] for r in receivers] == [f"{serial}-Z2", f"{serial}-Z3"]

        status = await cli.json("devices", "status", tx["id"])
        state = await sim_state(control, serial)
        telemetry = status["telemetry"]
        assert status["connectivity"] == "online"
        assert (telemetry["forward_power_w"], telemetry["reflected_power_w"],
                telemetry["vswr"], telemetry["pa_temperature"]) == (
            state["forward_w"], state["reflected_w"], state["vswr"], state["pa_temperature"])
        assert telemetry["frequency_mhz"] * 1000 == state["frequency_khz"]

        off = await cli.json("devices", "command", tx["id"], '{"type": "set_rf", "on": false}')
        assert off["status"] == "done" and not (await sim_state(control, serial))["carrier"]
        assert (await cli.json("devices", "status", tx["id"]))["activity"] == "off"
        await cli.json("devices", "command", tx["id"], '{"type": "set_rf", "on": true}')

        switched = await cli.json("devices", "command", tx["id"], json.dumps(
            {"type": "switch_zones", "zones": {"2": True}}))
        assert switched["status"] == "done"
        zones = {z["index"]: z["on"] for z in (await sim_state(control, serial))["zones"]}
        assert zones == {1: False, 2: True, 3: False, 4: False}
        rx_status = await cli.json("devices", "status", receivers[0]["id"])
        assert (rx_status["activity"], rx_status["telemetry"]["zone_on"]) == ("idle", True)

        play = {"type": "play", "stream_url": media.live("cli"), "content_id": "ct-cli-fm"}
        played = await cli.json("devices", "command", receivers[1]["id"], json.dumps(play))
        assert played["status"] == "accepted"
        state = await sim_state(control, serial)
        [aired] = state["on_air"]
        assert (aired["source"], aired["label"], aired["zones"]) == (
            media.live("cli"), "ct-cli-fm", [2, 3])
        rx_status = await cli.json("devices", "status", receivers[1]["id"])
        assert rx_status["activity"] == "playing"
        stopped = await cli.json("devices", "command", tx["id"], '{"type": "stop"}')
        assert stopped["status"] == "done"
        assert (await sim_state(control, serial))["audio_source"] is None
    finally:
        proc.terminate()
        await proc.wait()
