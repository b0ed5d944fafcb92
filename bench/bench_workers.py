"""Ingest with 1, 2 and 4 hub worker processes (``ttcs serve --worker``) sharing the device
uplink through an MQTT 5 shared subscription on an external Mosquitto, with PostgreSQL as
the store, against the bare-subscriber floor on the same broker.

    python bench/bench_workers.py [--devices 2000] [--seconds 10] [--rate 60000]
                                  [--workers 1,2,4]

The load is a paced publisher (``--rate`` status messages per second, QoS 0, round-robin over
the devices) in a process of its own; an unpaced flood far above what the workers take makes
the broker queue without bound and the workers miss its keepalives, which measures the
broker's queue, not the hub. A worker's rate is what it applied (``statuses`` in its
heartbeats, ``ttcs workers list``) between two heartbeats inside the load, over the database
time between them. PostgreSQL from ``TTCS_BENCH_PG`` (an admin URL; default trust auth as
postgres on 127.0.0.1); a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_ingest import announce, floor, status_payloads
from common import ROOT, emit, start_publisher

from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.core.store import Store
from ttcs.core.workers import list_workers
from ttcs.schemas import Area, DeviceSpec
from ttcs.testing import Mosquitto
from ttcs.testing.databases import create_scratch, drop_scratch
from ttcs.testing.net import free_port

TTCS = str(Path(sys.executable).with_name("ttcs"))
ADMIN = os.environ.get("TTCS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
HEARTBEAT = 1.0


def start_load(port: int, serials: list[str], rate: float) -> tuple[Any, Any, Any, Any]:
    topics, payloads = status_payloads(serials)
    return start_publisher(port, topics, payloads, rate=rate)


async def _alive(store: Store, count: int, devices: int) -> list[dict[str, Any]] | None:
    rows = [w for w in await list_workers(store, HEARTBEAT * 10) if w["alive"]]
    return rows if len(rows) == count and all(w["devices"] == devices for w in rows) else None


def _start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes (stderr to ``$TTCS_BENCH_LOG`` when set)."""
    with open(os.environ.get("TTCS_BENCH_LOG", os.devnull), "a") as log:
        return [subprocess.Popen([TTCS, "serve", "--worker"],
                                 env={**env, "TTCS_API_PORT": str(free_port())},
                                 stdout=subprocess.DEVNULL, stderr=log)
                for _ in range(count)]


async def phase(count: int, env: dict[str, str], store: Store, broker: Mosquitto,
                serials: list[str], seconds: float, rate: float) -> dict[str, Any]:
    procs = _start_workers(count, env)
    try:
        t0 = time.monotonic()
        while await _alive(store, count, len(serials)) is None:
            if time.monotonic() - t0 > 180:
                raise RuntimeError(f"{count} workers did not come up")
            await asyncio.sleep(0.5)
        startup = time.monotonic() - t0
        load, ready, stop, sent = start_load(broker.port, serials, rate)
        await asyncio.sleep(1.0)
        ready.set()
        await asyncio.sleep(min(3.0, seconds / 4))  # warm-up: queues fill, caches form
        first = {w["id"]: w for w in await list_workers(store, HEARTBEAT * 10)}
        await asyncio.sleep(seconds)
        last = {w["id"]: w for w in await list_workers(store, HEARTBEAT * 10)}
        stop.set()
        await asyncio.to_thread(load.join)
        per_worker = []
        for wid, w in last.items():
            a = first.get(wid)
            if a is None or not w["alive"]:
                continue
            span = (w["heartbeat_at"] - a["heartbeat_at"]).total_seconds()
            per_worker.append(round((w["statuses"] - a["statuses"]) / span, 1) if span else 0)
        alive = sum(1 for w in last.values() if w["alive"])
        return {"workers": count, "alive_at_end": alive, "per_second": round(sum(per_worker), 1),
                "per_worker": per_worker, "offered_per_second": rate,
                "published": sent.value, "startup_s": round(startup, 1)}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def run(args: argparse.Namespace, broker: Mosquitto, serials: list[str]
              ) -> list[dict[str, Any]]:
    url, name = await create_scratch(ADMIN, "ttcs_bench")
    home = tempfile.mkdtemp(prefix="bench-workers-")
    try:
        settings = Settings(home=home, database_url=url, mqtt_url=broker.url())
        setup = Hub(settings)
        await setup.open()
        await setup.registry.import_areas([Area(code="46", name="Huế", type="municipality")],
                                          "b")
        report = await setup.registry.import_devices([DeviceSpec(
            plugin="native", kind="ip_speaker", area_code="46", config={"serial": s})
            for s in serials], "bench")
        assert report.ok, [r.error for r in report.rows if not r.ok][:3]
        await setup.stop()
        env = {**os.environ, "TTCS_HOME": home, "TTCS_DATABASE_URL": url,
               "TTCS_MQTT_URL": broker.url(), "TTCS_WORKER_HEARTBEAT": str(HEARTBEAT),
               "TTCS_WORKER_TIMEOUT": str(HEARTBEAT * 10), "TTCS_LOG_LEVEL": "warning",
               "PYTHONPATH": str(ROOT)}
        store = await Store.open(settings, migrate_schema=False)
        try:
            return [await phase(n, env, store, broker, serials, args.seconds, args.rate)
                    for n in args.workers]
        finally:
            await store.close()
    finally:
        await drop_scratch(ADMIN, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=60000.0,
                        help="status messages offered per second")
    parser.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 2, 4])
    args = parser.parse_args()
    configure(level="error")
    serials = [f"WRK-{n:06d}" for n in range(args.devices)]
    broker = Mosquitto().start()
    try:
        bare = floor(broker.port, serials, min(args.seconds, 10.0))
        announce(broker.port, serials)
        phases = asyncio.run(run(args, broker, serials))
    finally:
        broker.stop()
    one = next((p["per_second"] for p in phases if p["workers"] == 1), None)
    emit("workers", devices=args.devices, seconds=args.seconds, floor=bare, phases=phases,
         speedup={p["workers"]: round(p["per_second"] / one, 2) for p in phases} if one
         else None)


if __name__ == "__main__":
    main()
