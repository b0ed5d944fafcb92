"""`make run`'s hub comes up with its simulated fleet online; a native device that announces
itself is discovered and waits to be adopted."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path

from tests.support.net import free_port
from tests.support.wait import eventually
from ttcs.core.hub import Hub
from ttcs.schemas import Connectivity
from ttcs.simulators.native_speaker import NativeSpeaker


def _health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]
    except OSError:
        return None


async def test_demo_hub_starts_with_real_areas_and_its_speakers_online(tmp_path: Path) -> None:
    api, mqtt = free_port(), free_port()
    env = {**os.environ, "TTCS_HOME": str(tmp_path / "var"),
           "TTCS_MQTT_URL": f"mqtt://127.0.0.1:{mqtt}"}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("ttcs")), "serve", "--demo", "--demo-devices", "4",
        "--port", str(api), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        health = await eventually(
            lambda: asyncio.to_thread(lambda: (h := _health(api)) and
                                      h["devices"]["online"] == 4 and h), timeout=30)
        assert health["devices"]["total"] == 4
        assert health["plugins"]["native"] == "loaded"
        from ttcs.core.config import Settings

        hub = Hub(Settings(home=tmp_path / "var"))
        await hub.open()
        communes = await hub.registry.list_areas(parent="46")
        await hub.stop()
        assert len(communes) == 40  # Huế's official communes and wards since July 2025
        assert {"Phường Thuận An", "Xã Phú Vinh"} <= {a.name for a in communes}
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_an_announcing_device_is_discovered_not_adopted_until_an_integrator_does(
        hub: Hub) -> None:
    speaker = NativeSpeaker("NEW-0001", hub.settings.mqtt_url)
    await speaker.start()
    try:
        found = await eventually(hub.registry.list_discovered)
        assert [d.info.serial for d in found] == ["NEW-0001"]
        assert await hub.registry.list_devices() == []
        device = await hub.registry.adopt("NEW-0001", "20101", "integrator",
                                          village_code="20101-01")
        assert (device.area_code, device.village_code) == ("20101", "20101-01")
        assert await hub.registry.list_discovered() == []
        sup = await hub.supervise(device)
        await eventually(lambda: sup.connectivity is Connectivity.ONLINE)
    finally:
        await speaker.stop()
