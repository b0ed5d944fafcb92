"""The ZoneTech wired station through the CLI alone: `ttcs sim run zonetech`, then register
the controller and its lines (`--parent`), read their status and switch zones and play with
`ttcs devices ...`; the simulator's control plane says what really happened."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.cli.test_board_cli import add_args, cli, simulator
from tests.cli.test_cli import Cli
from tests.support.media import MediaServer

__all__ = ["cli"]  # the fixture, shared with the board CLI test


@pytest.fixture
async def media() -> AsyncIterator[MediaServer]:
    server = await MediaServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def station() -> AsyncIterator[dict[str, Any]]:
    proc, sim = await simulator("zonetech", "--serial-prefix", f"ZTCLI{os.getpid()}",
                                "--option", "lines=4")
    yield sim
    proc.terminate()
    await proc.wait()


async def control(sim: dict[str, Any], path: str) -> Any:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{sim['control']}{path}") as response:
        assert response.status == 200
        return await response.json()


async def test_wired_station_through_the_cli_alone(cli: Cli, station: dict[str, Any],
                                                   media: MediaServer) -> None:
    [controller] = [d for d in station["devices"] if "add_zone" in d]
    [decoder] = [d for d in station["devices"] if d["serial"] == controller["decoder"]]
    device = await cli.json(*add_args(controller["add"]))
    assert (device["serial"], device["kind"], device["model"]) == (
        controller["serial"], "wired_zone_controller", "ZA-4")
    assert decoder["api_key"] not in json.dumps(device)  # the decoder's key is never shown
    zones = [await cli.json(*add_args(controller["add_zone"].replace(
        "CONTROLLER_ID", device["id"]).replace("line=N", f"line={n}"))) for n in (1, 2)]
    assert [(z["serial"], z["parent_id"]) for z in zones] == [
        (f"{controller['serial']}-L1", device["id"]), (f"{controller['serial']}-L2",
                                                       device["id"])]

    switched = await cli.json("devices", "command", device["id"],
                              '{"type": "switch_zones", "zones": {"2": true, "3": true}}')
    assert switched["status"] == "done" and switched["data"]["lines_on"] == [2, 3]
    state = (await control(station, f"/devices/{controller['serial']}"))["state"]
    assert state["relays"] == [False, True, True, False]

    status, zone2 = await asyncio.gather(
        cli.json("devices", "status", device["id"]),
        cli.json("devices", "status", zones[1]["id"]))
    state = (await control(station, f"/devices/{controller['serial']}"))["state"]
    assert status["connectivity"] == "online" and status["power_source"] == "mains"
    assert status["temperature"] == state["temperature"]
    assert status["telemetry"]["supply_voltage_v"] == state["supply_voltage"]
    assert status["telemetry"]["output_current_a"] == state["output_current"]
    assert status["telemetry"]["lines_on"] == "2,3" and status["volume"] == state[
        "master_volume"]
    assert zone2["telemetry"]["relay_on"] is True
    assert zone2["telemetry"]["line_current_a"] == state["line_currents"][1]

    url = media.live("vov")
    played = await cli.json("devices", "command", zones[0]["id"], json.dumps(
        {"type": "play", "stream_url": url, "content_id": "ct-cli"}))
    assert played["status"] == "done" and played["data"]["lines_on"] == [1, 2, 3]
    decoder_state = (await control(station, f"/devices/{decoder['serial']}"))["state"]
    assert (decoder_state["state"], decoder_state["url"], decoder_state["label"]) == (
        "playing", url, "ct-cli")
    truth = await control(station, f"/devices/{controller['serial']}/truth")
    assert sorted(a["line"] for a in truth["zone_audio"]) == [1, 2, 3]
    zone1 = await cli.json("devices", "status", zones[0]["id"])
    assert (zone1["activity"], zone1["current_item"]) == ("playing", "ct-cli")

    stopped = await cli.json("devices", "command", device["id"], '{"type": "stop"}')
    assert stopped["status"] == "done"
    state = (await control(station, f"/devices/{controller['serial']}"))["state"]
    assert state["relays"] == [False] * 4
    assert (await control(station, f"/devices/{decoder['serial']}"))["state"]["state"] == "idle"
