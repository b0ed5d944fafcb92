"""Emergency fan-out: from accepting an emergency broadcast for N native speakers to (a) the
last command arriving at a device and (b) the last device acknowledgement back at the hub,
with p50/p99 per device, against the floor measured in the same run on the same broker: a
bare paho client publishing the same N messages (same topics, payload size and QoS).

    python bench/bench_fanout.py [--devices 1000 10000] [--database URL] [--profile FILE]

The broadcast goes the way an operator's does: approved emergency content (Ed25519 approval,
media in the library), ``BroadcastService.create`` (plan, targets, audit), the dispatcher's
planner (outbox rows committed), the sender (approval checked again), the native driver
(publish on ``cmd``, wait for ``ack``), results written back. The speakers are a separate
process (``native_load.py``) multiplexing every device over a few paho connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import os
import struct
import subprocess
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from common import emit, percentile
from native_load import SpeakerLoad

from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft
from ttcs.core.http import start_http
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import (
    Area,
    AreaType,
    Broadcast,
    CommandResultEvent,
    Connectivity,
    DeviceSpec,
    Event,
    Schedule,
    Targets,
    new_id,
)
from ttcs.schemas.native import topic
from ttcs.testing import Mosquitto
from ttcs.testing.net import free_port

PROVINCE = "46"


def siren(path: Path, seconds: float = 2.0, rate: int = 8000) -> Path:
    """A short WAV (a rising tone) as the emergency's audio."""
    frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * (600 + i / 20)
                                                                 * i / rate)))
                      for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def floor(port: int, load: SpeakerLoad, serials: list[str], payload_size: int,
          inflight: int) -> dict[str, Any]:
    """A bare paho client publishing one QoS 1 message per device on its ``cmd`` topic."""
    import paho.mqtt.client as paho

    load.reset()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="floor")
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(0.3)
    head = {"type": "play", "id": "floor-", "pad": ""}
    base = len(json.dumps(head))
    payloads = []
    for n, _ in enumerate(serials):
        doc = {**head, "id": f"floor-{n}"}
        doc["pad"] = "x" * max(0, payload_size - base - len(doc["id"]) + len("floor-"))
        payloads.append(json.dumps(doc).encode())
    t0 = time.monotonic()
    last = None
    for serial, payload in zip(serials, payloads, strict=True):
        last = client.publish(topic(serial, "cmd"), payload, qos=1)
    assert last is not None
    last.wait_for_publish(120)
    acked = time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = load.report()["floor"]
        if len(got) >= len(serials):
            break
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    times = sorted(t - t0 for t in got.values())
    return {"received": len(times), "payload_bytes": len(payloads[0]),
            "last_puback_s": round(acked - t0, 4),
            "last_publish_s": round(times[-1], 4) if times else None,
            "p50_s": round(percentile(times, 50), 4), "p99_s": round(percentile(times, 99), 4)}


async def prepare(settings: Settings, serials: list[str], per_commune: int) -> str:
    """Areas, devices (probed from their retained birth), an approver and approved content."""
    hub = Hub(settings)
    await hub.open()
    communes = [f"9{n:04d}" for n in range(-(-len(serials) // per_commune))]
    await hub.registry.import_areas(
        [Area(code=PROVINCE, name="Thành phố Huế", type=AreaType.MUNICIPALITY)]
        + [Area(code=c, name=f"Xã {c}", type=AreaType.COMMUNE, parent_code=PROVINCE)
           for c in communes], "bench")
    report = await hub.registry.import_devices([DeviceSpec(
        plugin="native", kind="ip_speaker", area_code=communes[n // per_commune],
        config={"serial": s}) for n, s in enumerate(serials)], "bench")
    assert report.ok, [r.error for r in report.rows if not r.ok][:3]
    library = hub.content
    await library.approvers.add("UBND Thành phố Huế", "province", PROVINCE, "bench")
    wav = siren(settings.home / "siren.wav")
    item = await library.add(ContentDraft(
        title="Cảnh báo lũ khẩn cấp", kind="audio", level="emergency", source_level="province",
        issuer="UBND Thành phố Huế", area_code=PROVINCE), "duty", file=wav)
    await library.submit(item.id, "duty")
    await library.approve(item.id, "UBND Thành phố Huế", "duty-officer")
    await hub.stop()
    return item.id


async def hub_phase(settings: Settings, load: SpeakerLoad, serials: list[str], content_id: str,
                    profile: str | None) -> dict[str, Any]:
    hub = Hub(settings)
    await hub.start()
    runner, _ = await start_http(hub)
    acks: dict[str, float] = {}
    statuses: dict[str, int] = {}
    done = asyncio.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, CommandResultEvent) and event.device_id not in acks:
            acks[event.device_id] = time.monotonic()  # type: ignore[index]
            statuses[event.result.status.value] = statuses.get(event.result.status.value, 0) + 1
            if len(acks) >= len(serials):
                done.set()

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            online = sum(s.connectivity is Connectivity.ONLINE for s in hub.supervisors.values())
            if online >= len(serials):
                break
            await asyncio.sleep(0.2)
        assert hub.broadcasts is not None
        await asyncio.sleep(2.0)  # let start-up work (first status writes) settle
        load.reset()
        hub.bus.subscribe(on_event)
        spy = None
        if os.environ.get("BENCH_SPY"):  # sample the fan-out with py-spy (if installed)
            spy = subprocess.Popen([  # noqa: ASYNC220 - started once, waited on in a thread
                "py-spy", "record", "-r", "250", "-f", "raw", "-o",
                                    os.environ["BENCH_SPY"], "--pid", str(os.getpid()),
                                    "--duration", os.environ.get("BENCH_SPY_SECONDS", "20")])
            await asyncio.sleep(1.5)
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        wall0, t0 = time.time(), time.monotonic()
        plan = await hub.broadcasts.create(Broadcast(
            id=new_id("bc"), content_id=content_id, targets=Targets(areas=[PROVINCE]),
            schedule=Schedule(kind="now")), "duty-officer", owner_area=PROVINCE)
        accepted = time.monotonic() - t0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 120)
        last_ack = max(acks.values()) - t0 if acks else None
        # every result written back to the outbox
        while time.monotonic() - t0 < 180:
            counts = await hub.broadcasts.deliveries(plan.broadcast.id)
            if sum(v for k, v in counts.items() if k not in ("pending", "retry")) >= len(serials):
                break
            await asyncio.sleep(0.05)
        recorded = time.monotonic() - t0
        if profiler is not None:
            profiler.disable()
            assert profile is not None
            profiler.dump_stats(profile)
        report = load.report()
        if spy is not None:
            await asyncio.to_thread(spy.wait)
        queued = await _outbox_written(hub, plan.broadcast.id) - wall0
        first = {s: t[0] - t0 for s, t in report["received"].items() if t}
        repeats = sum(max(0, len(t) - 1) for t in report["received"].values())
        publish = sorted(first.values())
        ack = sorted(t - t0 for t in acks.values())
        return {
            "devices": len(plan.devices), "accepted_s": round(accepted, 4),
            "received": len(publish), "resent": repeats, "acked": len(ack),
            "ack_status": statuses, "deliveries": counts,
            "outbox_committed_s": round(queued, 4),
            "first_publish_s": round(publish[0], 4) if publish else None,
            "last_publish_s": round(publish[-1], 4) if publish else None,
            "publish_p50_s": round(percentile(publish, 50), 4),
            "publish_p99_s": round(percentile(publish, 99), 4),
            "last_ack_s": round(last_ack, 4) if last_ack is not None else None,
            "ack_p50_s": round(percentile(ack, 50), 4),
            "ack_p99_s": round(percentile(ack, 99), 4),
            "all_recorded_s": round(recorded, 4)}
    finally:
        await runner.cleanup()
        await hub.stop()


async def _outbox_written(hub: Hub, broadcast_id: str) -> float:
    """When the broadcast's last outbox row was created (wall clock)."""
    from sqlalchemy import func, select

    from ttcs.core.store.tables import OutboxRow

    async with hub.store.sessions() as s:
        last = (await s.execute(select(func.max(OutboxRow.created_at)).where(
            OutboxRow.broadcast_id == broadcast_id))).scalar_one()
    return float(last.timestamp())


def run(devices: int, args: argparse.Namespace) -> dict[str, Any]:
    serials = [f"FAN{devices}-{n:06d}" for n in range(devices)]
    broker = Mosquitto().start()
    load: SpeakerLoad | None = None
    try:
        t = time.monotonic()
        load = SpeakerLoad(broker.port, serials, connections=args.connections,
                           play_events=not args.no_play_events)
        home = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
        settings = Settings(home=home, mqtt_url=broker.url(), log_level="warning",
                            api_port=free_port(), database_url=args.database,
                            dispatch_concurrency=args.concurrency)
        content_id = asyncio.run(prepare(settings, serials, args.per_commune))
        setup_s = time.monotonic() - t
        profile = f"{args.profile}.{devices}" if args.profile else None
        hub = asyncio.run(hub_phase(settings, load, serials, content_id, profile))
        payload = _command_size(settings)
        bare = floor(broker.port, load, serials, payload, args.floor_inflight)
    finally:
        if load is not None:
            load.stop()
        broker.stop()
    ratio = (round(hub["last_publish_s"] / bare["last_publish_s"], 3)
             if hub["last_publish_s"] and bare["last_publish_s"] else None)
    return {"devices": devices, "setup_s": round(setup_s, 1), "hub": hub, "floor": bare,
            "ratio_last_publish": ratio,
            "database": "postgresql" if args.database and "postgres" in args.database
            else "sqlite"}


def _command_size(settings: Settings) -> int:
    """Size of one command as the hub sent it (read back from the outbox)."""
    async def read() -> int:
        from sqlalchemy import select

        from ttcs.core.store import Store
        from ttcs.core.store.tables import OutboxRow

        store = await Store.open(settings, migrate_schema=False)
        try:
            async with store.sessions() as s:
                row = (await s.execute(select(OutboxRow).limit(1))).scalar_one()
            from ttcs.schemas import parse_command

            return len(parse_command(row.command).model_dump_json())
        finally:
            await store.close()

    return asyncio.run(read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 10_000],
                        help="fleet sizes, one run each (default: 1000 10000)")
    parser.add_argument("--per-commune", type=int, default=100,
                        help="devices per commune (default 100)")
    parser.add_argument("--connections", type=int, default=4,
                        help="paho connections of the speaker load generator (default 4)")
    parser.add_argument("--concurrency", type=int, default=500,
                        help="the hub's dispatch_concurrency (default 500, the hub's default)")
    parser.add_argument("--floor-inflight", type=int, default=0,
                        help="max in-flight QoS 1 messages of the floor client (0: no limit)")
    parser.add_argument("--database", default=None,
                        help="SQLAlchemy URL (default: SQLite in a scratch directory)")
    parser.add_argument("--no-play-events", action="store_true",
                        help="speakers answer without a 'started' proof of play")
    parser.add_argument("--profile", default=None,
                        help="write a cProfile of the hub's fan-out to FILE.<devices>")
    args = parser.parse_args()
    configure(level="error")
    for devices in args.devices:
        emit("fanout", **run(devices, args))


if __name__ == "__main__":
    main()
