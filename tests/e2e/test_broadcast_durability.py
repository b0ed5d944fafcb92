"""The broadcast engine with the real content library, and a hub killed with SIGKILL in the
middle of an emergency fan-out: every device still plays it exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import SAMPLE_AREAS
from tests.support.bulletins import approved_flood_warning
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.hub import Hub
from ttcs.schemas import Broadcast, DeviceSpec, Schedule, Targets, new_id
from ttcs.simulators.native_speaker import NativeSpeaker
from ttcs.testing import Mosquitto
from ttcs.testing.net import free_port

TTCS = str(Path(sys.executable).with_name("ttcs"))
OPEN_POLICY = "name: open\nby_type: {}\n"

async def test_a_text_bulletin_is_approved_spoken_and_plays_in_its_window_on_its_devices(
        settings: Settings, amqtt_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "open.yaml"
    policy.write_text(OPEN_POLICY)
    placement = {"TXT-1": "20101", "TXT-2": "20101", "TXT-3": "19900"}
    sims = {s: NativeSpeaker(s, amqtt_url) for s in placement}
    for sim in sims.values():
        await sim.start()
    api = free_port()
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url, "policy_file": policy,
                                          "api_port": api}),
              dispatch=DispatchSettings(plan_interval=0.2))
    from ttcs.core.http import start_http

    await hub.start()
    runner, _ = await start_http(hub)
    try:
        await hub.registry.import_areas(SAMPLE_AREAS, "test")
        for serial, area in placement.items():
            device = await hub.registry.add_device(DeviceSpec(
                plugin="native", kind="ip_speaker", area_code=area,
                config={"serial": serial}), "test")
            await hub.supervise(device)
        library = hub.content
        await library.approvers.add("Chủ tịch UBND xã Phú Vinh", "commune", "20101", "test")
        item = await library.add(ContentDraft(
            title="Lịch tiêm chủng", kind="text", level="normal", source_level="commune",
            issuer="UBND xã Phú Vinh", area_code="20101",
            text="Kính thưa bà con, sáng mai trạm y tế xã tiêm chủng cho trẻ em."), "clerk")
        await library.submit(item.id, "clerk")
        await library.approve(item.id, "Chủ tịch UBND xã Phú Vinh", "chairman")
        start = datetime.now(UTC) + timedelta(seconds=3)
        assert hub.broadcasts is not None
        plan = await hub.broadcasts.create(Broadcast(
            id=new_id("bc"), content_id=item.id, targets=Targets(areas=["20101"]),
            schedule=Schedule(kind="at", at=start)), "clerk", owner_area="20101")
        assert 1 < plan.seconds < 30  # the spoken text's real duration
        targeted = [sims["TXT-1"], sims["TXT-2"]]
        await eventually(lambda: all(s.truth.plays for s in targeted), timeout=15)
        for sim in targeted:
            [play] = [p for p in sim.truth.plays if p.content_id == item.id]
            assert start <= play.started_at < start + timedelta(seconds=3)
            assert play.level == "normal"
        assert sims["TXT-3"].truth.plays == []
    finally:
        await runner.cleanup()
        await hub.stop()
        for sim in sims.values():
            await sim.stop()

def _truth(control: str, serial: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{control}/devices/{serial}/truth", timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]

def _fault(control: str, serial: str, fault: str, **params: Any) -> None:
    body = json.dumps({"fault": fault, "params": params}).encode()
    request = urllib.request.Request(f"{control}/devices/{serial}/faults", data=body,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass

def _ttcs(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([TTCS, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout

def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False

class Process:
    """A ``ttcs`` command in the background (stderr to ``$TTCS_TEST_LOG`` when set)."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        with open(os.environ.get("TTCS_TEST_LOG", os.devnull), "a") as log:
            self.proc = subprocess.Popen([TTCS, *args], env=env, stdout=subprocess.PIPE,
                                         stderr=log, text=True)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

async def test_a_hub_killed_mid_fan_out_delivers_every_command_exactly_once_after_restart(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    count = 24
    prefix = f"KILL{os.getpid()}"
    api = free_port()
    env = {**os.environ, "TTCS_HOME": str(tmp_path / "var"), "TTCS_MQTT_URL": mosquitto.url(),
           "TTCS_API_PORT": str(api), "TTCS_DISPATCH_CONCURRENCY": "2"}
    sims = Process("sim", "run", "native", "--broker", mosquitto.url(), "--count", str(count),
                   "--serial-prefix", prefix, env=env)
    hub: Process | None = None
    try:
        assert sims.proc.stdout is not None
        info = json.loads(await asyncio.to_thread(sims.proc.stdout.readline))
        control = info["control"]
        serials = [d["serial"] for d in info["devices"]]
        for serial in serials:  # every ack takes 0.25 s: the fan-out takes seconds
            _fault(control, serial, "slow", delay=0.25)

        setup = Hub(Settings(home=tmp_path / "var", mqtt_url=mosquitto.url()))
        await setup.open()
        await setup.registry.import_areas(SAMPLE_AREAS, "test")
        report = await setup.registry.import_devices([DeviceSpec(
            plugin="native", kind="ip_speaker", area_code="20101",
            config={"serial": s}) for s in serials], "test")
        assert report.ok
        content_id = await approved_flood_warning(setup, tmp_path)
        await setup.stop()

        hub = Process("serve", env=env)
        await eventually(lambda: asyncio.to_thread(_healthy, api), timeout=30)
        created = await asyncio.to_thread(
            _ttcs, "broadcast", "create", "--content", content_id, "--area", "46", "--json",
            env=env)
        broadcast_id = json.loads(created)["id"]
        # Kill the hub once some, but not all, devices got the emergency.
        await eventually(lambda: _plays_total(control, serials, content_id) >= 3, timeout=60,
                         interval=0.05)
        hub.kill()
        played_before = _plays_total(control, serials, content_id)
        assert played_before < count, "the fan-out finished before the kill; slow it further"

        hub = Process("serve", env=env)
        await eventually(lambda: _plays_total(control, serials, content_id) >= count,
                         timeout=90, interval=0.2)
        await asyncio.sleep(1.5)  # anything duplicated would show up now
        for serial in serials:
            truth = _truth(control, serial)
            plays = [p for p in truth["plays"] if p["content_id"] == content_id]
            assert len(plays) == 1, f"{serial} played it {len(plays)} times"
        resent = sum(
            sum(c["type"] == "play" for c in _truth(control, s)["commands"]) for s in serials)
        assert resent >= count  # at least once on the wire; once in effect
        status = await asyncio.to_thread(_ttcs, "broadcast", "show", broadcast_id, env=env)
        assert json.loads(status)["deliveries"] == {"done": count}
    finally:
        if hub is not None:
            hub.stop()
        sims.stop()

def _plays_total(control: str, serials: list[str], content_id: str) -> int:
    return sum(sum(p["content_id"] == content_id for p in _truth(control, s)["plays"])
               for s in serials)
