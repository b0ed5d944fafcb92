"""The CLI alone: run a simulator, register it, read status, command it — and the same with
`mosquitto_pub`/`mosquitto_sub` standing in for the device."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import Mosquitto

TTCS = str(Path(sys.executable).with_name("ttcs"))

AREAS_CSV = """code,name,type,parent_code
46,Thành phố Huế,municipality,
19900,Phường Thuận An,ward,46
19900-01,Tổ dân phố 1,residential_group,19900
"""


class Cli:
    def __init__(self, home: Path, broker: str) -> None:
        self.env = {**os.environ, "TTCS_HOME": str(home), "TTCS_MQTT_URL": broker}

    async def run(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            TTCS, *args, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        code = proc.returncode or 0
        if ok and code != 0:
            raise AssertionError(f"ttcs {' '.join(args)} failed ({code}): {err.decode()}")
        return code, out.decode(), err.decode()

    async def json(self, *args: str) -> Any:
        return json.loads((await self.run(*args, "--json"))[1])


@pytest.fixture
async def cli(tmp_path: Path, mosquitto: Mosquitto) -> Cli:
    c = Cli(tmp_path / "var", mosquitto.url())
    areas = tmp_path / "areas.csv"
    areas.write_text(AREAS_CSV, encoding="utf-8")
    await c.run("areas", "import", str(areas))
    return c


@pytest.fixture
async def simulator(mosquitto: Mosquitto) -> AsyncIterator[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        TTCS, "sim", "run", "native", "--broker", mosquitto.url(), "--count", "2",
        "--serial-prefix", f"CLI{os.getpid()}", stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    yield json.loads(line)
    proc.terminate()
    await proc.wait()


async def test_register_status_and_command_a_simulated_speaker_through_the_cli_alone(
        cli: Cli, simulator: dict[str, Any]) -> None:
    serial = simulator["devices"][0]["serial"]
    device = await cli.json("devices", "add", "--plugin", "native", "--kind", "ip_speaker",
                            "--area", "19900", "--village", "19900-01",
                            "--config", f"serial={serial}")
    assert device["serial"] == serial
    before = await cli.json("devices", "status", device["id"])
    assert before["connectivity"] == "online"
    assert before["volume"] == 60
    result = await cli.json("devices", "command", device["id"],
                            '{"type": "set_volume", "volume": 25}')
    assert result["status"] == "done"
    after = await cli.json("devices", "status", device["id"])
    assert after["volume"] == 25
    listed = await cli.json("devices", "list", "--area", "46")
    assert [d["id"] for d in listed] == [device["id"]]
    _, out, _ = await cli.run("audit", "verify")
    assert "hash chain verified" in out


async def test_errors_exit_non_zero_with_one_line(cli: Cli) -> None:
    code, _, err = await cli.run("devices", "command", "nope", '{"type": "stop"}', ok=False)
    assert code == 1
    assert err.strip() == "error: no device 'nope' (see `ttcs devices list`)"
    code, _, err = await cli.run("devices", "add", "--plugin", "native", "--kind",
                                 "ip_speaker", "--area", "19900", "--config", "serial=GHOST",
                                 ok=False)
    assert code == 1
    assert err.count("\n") == 1
    assert "announced nothing" in err


@pytest.mark.skipif(not shutil.which("mosquitto_pub"), reason="needs mosquitto-clients "
                    "(make test installs them)")
async def test_a_device_made_of_mosquitto_pub_and_sub_is_registered_and_commanded(
        cli: Cli, mosquitto: Mosquitto) -> None:
    serial = f"HAND-{os.getpid()}"
    base = f"ttcs/v1/dev/{serial}"
    birth = {"protocol": "ttcs-native/1", "info": {
        "serial": serial, "vendor": "Handmade", "model": "shell", "firmware": "0.1",
        "kind": "ip_speaker", "capabilities": ["audio.play", "audio.volume"]}}
    pub = ["mosquitto_pub", "-p", str(mosquitto.port), "-h", "127.0.0.1", "-q", "1"]
    for leaf, payload in (("birth", birth), ("conn", {"online": True}),
                          ("status", {"volume": 50})):
        await _run(*pub, "-r", "-t", f"{base}/{leaf}", "-m", json.dumps(payload))
    device = await cli.json("devices", "add", "--plugin", "native", "--kind", "ip_speaker",
                            "--area", "19900", "--config", f"serial={serial}")
    assert (device["vendor"], device["firmware"]) == ("Handmade", "0.1")

    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-p", str(mosquitto.port), "-h", "127.0.0.1", "-q", "1", "-C", "1",
        "-t", f"{base}/cmd", stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(0.3)  # let mosquitto_sub subscribe before the command is sent
    command = asyncio.create_task(cli.json("devices", "command", device["id"],
                                           '{"type": "set_volume", "volume": 70}'))
    assert sub.stdout is not None
    received = json.loads(await asyncio.wait_for(sub.stdout.readline(), 20))
    assert (received["type"], received["volume"]) == ("set_volume", 70)
    ack = {"command_id": received["id"], "status": "done", "code": "ok"}
    await _run(*pub, "-t", f"{base}/ack", "-m", json.dumps(ack))
    result = await command
    assert (result["status"], result["command_id"]) == ("done", received["id"])
    await _run(*pub, "-r", "-t", f"{base}/status", "-m", json.dumps({"volume": 70}))
    status = await cli.json("devices", "status", device["id"])
    assert status["volume"] == 70
    for leaf in ("birth", "conn", "status"):  # leave the shared broker clean
        await _run(*pub, "-r", "-n", "-t", f"{base}/{leaf}")


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv)
    assert await proc.wait() == 0


@pytest.fixture
async def saokhue_sim(mosquitto: Mosquitto) -> AsyncIterator[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        TTCS, "sim", "run", "saokhue", "--broker", mosquitto.url(),
        "--serial-prefix", f"SKRCLI{os.getpid()}", "--option", "stream_seconds=60",
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    yield json.loads(line)
    proc.terminate()
    await proc.wait()


async def _truth(control: str, serial: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http, \
            http.get(f"{control}/devices/{serial}/truth") as response:
        data: dict[str, Any] = await response.json()
        return data


async def test_a_sao_khue_station_is_registered_and_commanded_through_the_cli_alone(
        cli: Cli, saokhue_sim: dict[str, Any]) -> None:
    station = saokhue_sim["devices"][0]
    assert saokhue_sim["simulator"] == "saokhue" and station["protocol"] == "skr-mqtt/2"
    device = await cli.json("devices", "add", "--plugin", "saokhue", "--kind", "ip_speaker",
                            "--area", "19900", "--config", f"serial={station['serial']}")
    assert (device["serial"], device["vendor"]) == (station["serial"], "Sao Khuê Radio")
    play = await cli.json("devices", "command", device["id"], json.dumps({
        "type": "play", "stream_url": "http://127.0.0.1:9/live", "content_id": "ct-cli"}))
    assert play["status"] == "accepted"
    volume = await cli.json("devices", "command", device["id"],
                            '{"type": "set_volume", "volume": 25}')
    assert volume["status"] == "done"
    status = await cli.json("devices", "status", device["id"])
    assert (status["connectivity"], status["volume"], status["activity"]) == (
        "online", 25, "playing")
    stop = await cli.json("devices", "command", device["id"], '{"type": "stop"}')
    assert stop["status"] == "done"
    truth = await _truth(saokhue_sim["control"], station["serial"])
    assert [(p["content_id"], p["outcome"]) for p in truth["plays"]] == [("ct-cli", "stopped")]
    assert [v for _, v in truth["volume_changes"]] == [25]
    # (a CLI process that has not heard a heartbeat yet asks for one: hoi_tt)
    assert [c["type"] for c in truth["commands"] if c["type"] != "hoi_tt"] == [
        "phat", "am_luong", "dung"]
