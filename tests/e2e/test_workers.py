"""Several hub workers (``ttcs serve --worker``, real processes) on a real Mosquitto and a real
PostgreSQL: device traffic is shared, one leader dispatches, a standby takes over."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiomqtt

from tests.conftest import SAMPLE_AREAS
from tests.e2e.test_broadcast_durability import TTCS, Process, _fault, _healthy, _truth, _ttcs
from tests.support.bulletins import approved_flood_warning
from tests.support.wait import eventually
from ttcs.core.broker import EmbeddedBroker
from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.store import Store
from ttcs.core.workers import list_workers
from ttcs.schemas import DeviceInfo, DeviceKind, DeviceSpec, DeviceStatus
from ttcs.schemas.native import Birth, Presence, topic
from ttcs.testing import Mosquitto
from ttcs.testing.net import free_port


def _env(tmp_path: Path, pg_url: str, mqtt_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "TTCS_HOME": str(tmp_path / "var"), "TTCS_DATABASE_URL": pg_url,
            "TTCS_MQTT_URL": mqtt_url, "TTCS_WORKER_HEARTBEAT": "0.3",
            "TTCS_WORKER_TIMEOUT": "2", "TTCS_WORKER_GROUP": f"g{uuid.uuid4().hex[:8]}",
            **extra}


class Workers:
    """``ttcs serve --worker`` processes, each on its own API port; their rows in the
    ``workers`` table read in this process (``ttcs workers list`` is run once per test: a
    CLI process per poll would cost seconds)."""

    def __init__(self, env: dict[str, str], settings: Settings) -> None:
        self.env = env
        self.settings = settings
        self.procs: dict[int, Process] = {}  # pid -> process
        self.store: Store | None = None

    async def start(self, count: int, *, port: int | None = None) -> None:
        ports = []
        for _ in range(count):
            port = port or free_port()
            proc = Process("serve", "--worker", env={**self.env, "TTCS_API_PORT": str(port)})
            self.procs[proc.proc.pid] = proc
            ports.append(port)
            port = None
        for p in ports:
            await eventually(lambda p=p: asyncio.to_thread(_healthy, p), timeout=60)

    async def list(self) -> list[dict[str, Any]]:
        if self.store is None:
            self.store = await Store.open(self.settings, migrate_schema=False)
        return await list_workers(self.store, 2.0)

    async def settled(self, count: int, devices: int = 0) -> list[dict[str, Any]]:
        """Wait until ``count`` workers are alive, one of them leading, each supervising
        ``devices`` devices; returns their rows."""
        async def ready() -> list[dict[str, Any]] | None:
            alive = [w for w in await self.list() if w["alive"]]
            leaders = [w for w in alive if w["role"] == "leader"]
            ok = (len(alive) == count and len(leaders) == 1
                  and all(w["devices"] == devices for w in alive))
            return alive if ok else None

        return await eventually(ready, timeout=60, interval=0.1)  # type: ignore[no-any-return]

    async def stop(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in self.procs.values()))
        if self.store is not None:
            await self.store.close()


def _settings(tmp_path: Path, pg_url: str, mosquitto: Mosquitto) -> Settings:
    return Settings(home=tmp_path / "var", database_url=pg_url, mqtt_url=mosquitto.url())


async def _announce(url: str, serials: list[str]) -> None:
    """Retained birth and presence, as native devices publish them."""
    port = int(url.rsplit(":", 1)[1])
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for serial in serials:
            info = DeviceInfo(serial=serial, vendor="TTCS reference", model="W",
                              firmware="1.0", kind=DeviceKind.IP_SPEAKER)
            await client.publish(topic(serial, "birth"), Birth(info=info).model_dump_json(),
                                 qos=1, retain=True)
            await client.publish(topic(serial, "conn"), Presence(online=True).model_dump_json(),
                                 qos=1, retain=True)


async def _register(settings: Settings, serials: list[str]) -> None:
    setup = Hub(settings)
    await setup.open()
    try:
        if not await setup.registry.list_areas():
            await setup.registry.import_areas(SAMPLE_AREAS, "test")
        report = await setup.registry.import_devices([DeviceSpec(
            plugin="native", kind="ip_speaker", area_code="20101",
            config={"serial": s}) for s in serials], "test")
        assert report.ok, [r.error for r in report.rows if not r.ok][:3]
    finally:
        await setup.stop()


async def test_refused_configurations_say_why(tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    amqtt = EmbeddedBroker("127.0.0.1", port)
    await amqtt.start()
    try:
        base = {**os.environ, "TTCS_HOME": str(tmp_path / "var"), "TTCS_DATABASE_URL": "",
                "TTCS_API_PORT": str(free_port())}
        cases = {
            "PostgreSQL": {**base, "TTCS_MQTT_URL": f"mqtt://127.0.0.1:{port}"},
            "not the embedded one": {**base, "TTCS_DATABASE_URL": pg_url},
            "refused an MQTT 5 connection": {**base, "TTCS_DATABASE_URL": pg_url,
                                             "TTCS_MQTT_URL": f"mqtt://127.0.0.1:{port}"},
        }
        args = {"not the embedded one": ["--embedded-broker"]}

        def run(env: dict[str, str], extra: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run([TTCS, "serve", "--worker", *extra], env=env, check=False,
                                  capture_output=True, text=True, timeout=60)

        done = await asyncio.gather(*(asyncio.to_thread(run, env, args.get(why, []))
                                      for why, env in cases.items()))
        for why, result in zip(cases, done, strict=True):
            assert result.returncode == 1, (why, result.stderr)
            [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
            assert why in line, line
            assert "workers need" in line
    finally:
        await amqtt.stop()


async def test_every_status_is_applied_once_across_workers(
        tmp_path: Path, pg_url: str, mosquitto: Mosquitto) -> None:
    serials = [f"WS{os.getpid()}-{n:02d}" for n in range(20)]
    await _announce(mosquitto.url(), serials)
    env = _env(tmp_path, pg_url, mosquitto.url())
    settings = Settings(home=tmp_path / "var", database_url=pg_url, mqtt_url=mosquitto.url())
    workers = Workers(env, settings)
    try:
        await workers.start(2)
        await workers.settled(2)
        # registered while the workers run: they supervise the devices (registry watch) and
        # have applied nothing yet (births and presence are known, no status was sent)
        await _register(settings, serials)
        rows = await workers.settled(2, devices=len(serials))
        before = sum(w["statuses"] for w in rows)
        per_device = 30
        sent = 0
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for n in range(per_device):
                for serial in serials:
                    status = DeviceStatus(volume=n, signal=-60)
                    await client.publish(topic(serial, "status"), status.model_dump_json(),
                                         qos=1)
                    sent += 1

        async def applied() -> list[int]:
            return [w["statuses"] for w in await workers.list() if w["alive"]]

        async def all_in() -> bool:
            return sum(await applied()) - before >= sent

        await eventually(all_in, timeout=30, interval=0.1)
        await asyncio.sleep(1.0)  # a status applied twice would show by now (3 heartbeats)
        counts = await applied()
        assert sum(counts) - before == sent
        assert all(c > 0 for c in counts), counts  # the broker shared them out
    finally:
        await workers.stop()


async def _emergency_setup(tmp_path: Path, pg_url: str, mosquitto: Mosquitto, count: int,
                           env: dict[str, str]) -> tuple[Process, str, list[str], str]:
    prefix = f"WE{os.getpid()}{uuid.uuid4().hex[:4]}"
    sims = Process("sim", "run", "native", "--broker", mosquitto.url(), "--count", str(count),
                   "--serial-prefix", prefix, env=env)
    assert sims.proc.stdout is not None
    info = json.loads(await asyncio.to_thread(sims.proc.stdout.readline))
    serials = [d["serial"] for d in info["devices"]]
    settings = _settings(tmp_path, pg_url, mosquitto)
    await _register(settings, serials)
    setup = Hub(settings)
    await setup.open()
    try:
        content_id = await approved_flood_warning(setup, tmp_path)
    finally:
        await setup.stop()
    return sims, info["control"], serials, content_id


def _plays(control: str, serials: list[str], content_id: str) -> dict[str, int]:
    return {s: sum(p["content_id"] == content_id for p in _truth(control, s)["plays"])
            for s in serials}


def _play_commands(control: str, serials: list[str]) -> dict[str, int]:
    return {s: sum(c["type"] == "play" for c in _truth(control, s)["commands"])
            for s in serials}


async def test_an_emergency_is_dispatched_once_by_the_one_leader(
        tmp_path: Path, pg_url: str, mosquitto: Mosquitto) -> None:
    count = 12
    env = _env(tmp_path, pg_url, mosquitto.url())
    sims, control, serials, content_id = await _emergency_setup(tmp_path, pg_url, mosquitto,
                                                                count, env)
    workers = Workers(env, _settings(tmp_path, pg_url, mosquitto))
    try:
        await workers.start(3)
        await workers.settled(3, devices=count)
        created = await asyncio.to_thread(_ttcs, "broadcast", "create", "--content",
                                          content_id, "--area", "46", "--json", env=env)
        broadcast_id = json.loads(created)["id"]
        await eventually(lambda: asyncio.to_thread(
            lambda: all(_plays(control, serials, content_id).values())), timeout=60,
            interval=0.2)
        await asyncio.sleep(1.0)  # a second command would have arrived by now
        assert set(_plays(control, serials, content_id).values()) == {1}
        assert set(_play_commands(control, serials).values()) == {1}  # one command each
        shown = json.loads(await asyncio.to_thread(_ttcs, "broadcast", "show", broadcast_id,
                                                   env=env))
        assert shown["deliveries"] == {"done": count}
        rows = await workers.settled(3, devices=count)
        assert sum(w["role"] == "leader" for w in rows) == 1
        listed = json.loads(await asyncio.to_thread(_ttcs, "workers", "list", "--json",
                                                    env=env))
        assert sorted(w["id"] for w in listed if w["alive"]) == sorted(w["id"] for w in rows)
    finally:
        await workers.stop()
        sims.stop()


async def test_when_the_leader_dies_a_standby_finishes_the_fan_out_without_repeats(
        tmp_path: Path, pg_url: str, mosquitto: Mosquitto) -> None:
    count = 16
    # Media URLs in the commands must outlive the leader that signed them: in production
    # a load balancer in front of every worker's API; here the standby's API.
    standby_port = free_port()
    env = _env(tmp_path, pg_url, mosquitto.url(), TTCS_DISPATCH_CONCURRENCY="2",
               TTCS_MEDIA_BASE_URL=f"http://127.0.0.1:{standby_port}")
    sims, control, serials, content_id = await _emergency_setup(tmp_path, pg_url, mosquitto,
                                                                count, env)
    workers = Workers(env, _settings(tmp_path, pg_url, mosquitto))
    try:
        for serial in serials:  # every ack takes 0.25 s: the fan-out takes seconds
            await asyncio.to_thread(_fault, control, serial, "slow", delay=0.25)
        await workers.start(1)
        [leader] = await workers.settled(1, devices=count)
        await workers.start(1, port=standby_port)
        rows = await workers.settled(2, devices=count)
        assert [w["id"] for w in rows if w["role"] == "leader"] == [leader["id"]]
        created = await asyncio.to_thread(_ttcs, "broadcast", "create", "--content",
                                          content_id, "--area", "46", "--json", env=env)
        broadcast_id = json.loads(created)["id"]
        await eventually(lambda: asyncio.to_thread(
            lambda: sum(_plays(control, serials, content_id).values()) >= 3), timeout=60,
            interval=0.05)
        os.kill(leader["pid"], signal.SIGKILL)
        workers.procs[leader["pid"]].proc.wait(10)
        played_before = sum((await asyncio.to_thread(_plays, control, serials,
                                                     content_id)).values())
        assert played_before < count, "the fan-out finished before the kill; slow it further"

        async def new_leader() -> bool:
            alive = [w for w in await workers.list() if w["alive"]]
            return [w["role"] for w in alive] == ["leader"] and alive[0]["id"] != leader["id"]

        await eventually(new_leader, timeout=30, interval=0.1)
        await eventually(lambda: asyncio.to_thread(
            lambda: all(_plays(control, serials, content_id).values())), timeout=90,
            interval=0.2)
        await asyncio.sleep(1.5)  # anything repeated would show up now
        plays = await asyncio.to_thread(_plays, control, serials, content_id)
        assert set(plays.values()) == {1}, plays
        shown = json.loads(await asyncio.to_thread(_ttcs, "broadcast", "show", broadcast_id,
                                                   env=env))
        assert shown["deliveries"] == {"done": count}
    finally:
        await workers.stop()
        sims.stop()
