"""`ttcs playlog export` and `ttcs alarms list` read what a hub recorded from real speakers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.rig import SpeakerRig
from tests.support.wait import eventually
from ttcs.core.config import AlarmSettings, Settings
from ttcs.core.playlog import PlayLog
from ttcs.simulators.base import Fault

TTCS = str(Path(sys.executable).with_name("ttcs"))
def today() -> str:
    """Today in Vietnam, asked when the export runs (a module constant went stale when the
    suite crossed local midnight: the plays were recorded on the next day)."""
    return datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()


async def ttcs(settings: Settings, *args: str, ok: bool = True) -> tuple[int, str, str]:
    env = {**os.environ, "TTCS_HOME": str(settings.home)}
    proc = await asyncio.create_subprocess_exec(TTCS, *args, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if ok and proc.returncode:
        raise AssertionError(f"ttcs {' '.join(args)} failed: {err.decode()}")
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def recorded(settings: Settings, amqtt_url: str) -> dict[str, str]:
    """A hub ran: a ward speaker played bc-1, a commune speaker played bc-2 and went on
    battery. Returns the device ids; the hub is stopped again."""
    rig = await SpeakerRig.start(settings.model_copy(update={
        "alarms": AlarmSettings(debounce=0, check_interval=0.05)}), amqtt_url)
    try:
        _, ward = await rig.add("CLI-0001", area="19900", village="19900-01")
        commune_speaker, commune = await rig.add("CLI-0002", area="20101")
        await rig.play(ward.id, "bc-1")
        await rig.play(commune.id, "bc-2")
        await commune_speaker.inject(Fault.POWER_LOSS_BATTERY)
        await eventually(rig.alarms)
        log = PlayLog(rig.hub.store)
        await eventually(lambda: _has(log, 4))
    finally:
        await rig.stop()
    return {"ward": ward.id, "commune": commune.id}


async def _has(log: PlayLog, n: int) -> bool:
    return len(await log.entries()) >= n


async def test_playlog_export_csv_for_an_area_and_month(settings, recorded):  # type: ignore[no-untyped-def]
    day = today()
    _, out, _ = await ttcs(settings, "playlog", "export", "--area", "19900", "--from", day,
                           "--to", day, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["device_id"], r["phase"], r["broadcast_id"]) for r in rows] == [
        (recorded["ward"], "started", "bc-1"), (recorded["ward"], "finished", "bc-1")]
    assert rows[0]["device_time"] and rows[0]["received_at"] and rows[0]["skewed"] == "false"


async def test_playlog_export_json_for_one_broadcast_to_a_file(settings, recorded, tmp_path):  # type: ignore[no-untyped-def]
    target = tmp_path / "bc-2.json"
    _, out, _ = await ttcs(settings, "playlog", "export", "--area", "46", "--broadcast", "bc-2",
                           "--format", "json", "--output", str(target))
    assert "2 play events written" in out
    rows = json.loads(target.read_text(encoding="utf-8"))
    assert {(r["device_id"], r["area_code"]) for r in rows} == {(recorded["commune"], "20101")}


async def test_playlog_export_refuses_a_bad_date_and_an_unknown_area(settings, recorded):  # type: ignore[no-untyped-def]
    code, _, err = await ttcs(settings, "playlog", "export", "--from", "1/11/2026", ok=False)
    assert code == 1 and err.startswith("error:") and "1/11/2026" in err
    code, _, err = await ttcs(settings, "playlog", "export", "--area", "99999", ok=False)
    assert code == 1 and "99999" in err


async def test_alarms_list_shows_the_active_battery_alarm(settings, recorded):  # type: ignore[no-untyped-def]
    _, out, _ = await ttcs(settings, "alarms", "list", "--active", "--area", "46", "--json")
    (alarm,) = json.loads(out)
    assert (alarm["device_id"], alarm["code"], alarm["active"]) == (
        recorded["commune"], "on_battery", True)
    _, table, _ = await ttcs(settings, "alarms", "list", "--area", "19900")
    assert table.strip() == "(none)"
    _, table, _ = await ttcs(settings, "alarms", "list")
    assert "on_battery" in table and "ACTIVE" in table
