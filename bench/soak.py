"""Soak: one hub running a mixed simulated fleet for a while, with emergency broadcasts and
fault injection, watched for what grows or stalls.

    python bench/soak.py [--minutes 10] [--speakers 500] [--polled 100] [--poll-interval 15]
                         [--broadcast-every 60] [--fault-every 45] [--database URL]
                         [--tracemalloc N]

The fleet: ``--speakers`` native MQTT speakers (``native_load.py``: a few paho connections in
a process of their own, on a private Mosquitto) and ``--polled`` VangTech HTTP speakers
(``poll_load.py``: real simulators, a port each, in another process). Every
``--broadcast-every`` seconds the duty officer sends an approved emergency bulletin to the
whole province (``BroadcastService.create``, as the API does); every ``--fault-every`` seconds
the next tenth of the polled speakers starts hanging or going offline (alternately) and the
previous tenth recovers.

Printed as one JSON line:

- ``rss_mib``: the hub process's resident memory after start-up and at the end, and the growth;
  ``rss_samples_mib``: one sample a minute;
- ``loop_lag_ms``: lateness of a 50 ms ticker in the hub's loop, p50/p99/max over the run;
- ``broadcasts``: outbox rows per state summed over every broadcast, at the end; ``failed``
  counts device commands that ended failed, expired or rejected (the faulty speakers'
  share is expected);
- ``outbox_backlog``: rows still pending or waiting for a retry at the end, and the largest
  backlog seen at a broadcast;
- ``command_results``: device acknowledgements by status; ``polls``: poller runs and skips;
- with ``--tracemalloc N``: ``traced_growth``, what Python allocated after the first minute
  and still held at the end, in total and at the N places (innermost ``ttcs`` frame of the
  allocation) that grew most.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench_fanout import siren
from bench_registry import rss_mib
from common import emit, percentile
from native_load import SpeakerLoad
from poll_load import SECRET, VangLoad
from sqlalchemy import func, select

from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft
from ttcs.core.dispatch import OPEN_STATES
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.core.store.tables import OutboxRow
from ttcs.schemas import (
    Area,
    AreaType,
    Broadcast,
    CommandResultEvent,
    DeviceSpec,
    Event,
    Schedule,
    Targets,
    new_id,
)
from ttcs.simulators.base import Fault
from ttcs.testing import Mosquitto
from ttcs.testing.net import free_port

PROVINCE = "46"


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1), "max": round(max(values), 1)}


async def prepare(hub: Hub, native: list[str], vang: VangLoad, poll_interval: float) -> str:
    communes = [f"9{n:04d}" for n in range(-(-(len(native) + len(vang.urls)) // 50))]
    await hub.registry.import_areas(
        [Area(code=PROVINCE, name="Thành phố Huế", type=AreaType.MUNICIPALITY)]
        + [Area(code=c, name=f"Xã {c}", type=AreaType.COMMUNE, parent_code=PROVINCE)
           for c in communes], "soak")
    specs = [DeviceSpec(plugin="native", kind="ip_speaker", area_code=communes[n // 50],
                        config={"serial": s}) for n, s in enumerate(native)]
    specs += [DeviceSpec(plugin="vang", kind="ip_speaker",
                         area_code=communes[(len(native) + n) // 50],
                         config={"url": url, "key_id": "hub", "secret": SECRET,
                                 "poll_interval": poll_interval})
              for n, url in enumerate(vang.urls.values())]
    report = await hub.registry.import_devices(specs, "soak")
    assert report.ok, [r.error for r in report.rows if not r.ok][:3]
    library = hub.content
    await library.approvers.add("UBND Thành phố Huế", "province", PROVINCE, "soak")
    item = await library.add(ContentDraft(
        title="Cảnh báo lũ khẩn cấp", kind="audio", level="emergency", source_level="province",
        issuer="UBND Thành phố Huế", area_code=PROVINCE), "duty",
        file=siren(hub.settings.home / "siren.wav"))
    await library.submit(item.id, "duty")
    await library.approve(item.id, "UBND Thành phố Huế", "duty-officer")
    return item.id


def grown(first: tracemalloc.Snapshot, top: int) -> dict[str, Any]:
    """What Python allocated since ``first`` and still holds: the total, and the ``top``
    places (allocation stacks' innermost frames in ``ttcs``, else the innermost) by growth."""
    last = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = last.compare_to(first, "traceback")
    total = sum(st.size_diff for st in stats)

    def where(st: tracemalloc.StatisticDiff) -> str:
        frames = list(st.traceback)
        ours = [f for f in frames if "/ttcs/" in f.filename] or frames
        return f"{ours[0].filename.split('/site-packages/')[-1]}:{ours[0].lineno}"

    by_place: dict[str, list[int]] = {}
    for st in stats:
        entry = by_place.setdefault(where(st), [0, 0])
        entry[0] += st.size_diff
        entry[1] += st.count_diff
    ranked = sorted(by_place.items(), key=lambda kv: -kv[1][0])[:top]
    return {"total_kib": round(total / 1024),
            "top": [{"at": at, "kib": round(size / 1024), "blocks": count}
                    for at, (size, count) in ranked]}


async def backlog(hub: Hub) -> int:
    async with hub.store.sessions() as s:
        return int((await s.execute(select(func.count()).where(
            OutboxRow.state.in_(OPEN_STATES)))).scalar_one())


async def soak(args: argparse.Namespace, broker: Mosquitto, speakers: SpeakerLoad,
               vang: VangLoad, native: list[str]) -> dict[str, Any]:
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="bench-soak-")),
                        mqtt_url=broker.url(), log_level="error", api_port=free_port(),
                        database_url=args.database)
    hub = Hub(settings)
    await hub.start()
    from ttcs.core.http import start_http

    runner, _ = await start_http(hub)  # media URLs the speakers fetch
    lags: list[float] = []
    results: dict[str, int] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, CommandResultEvent):
            key = event.result.status.value
            results[key] = results.get(key, 0) + 1

    async def tick() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            lags.append((time.monotonic() - t - 0.05) * 1000)

    try:
        content_id = await prepare(hub, native, vang, args.poll_interval)
        await asyncio.sleep(max(5.0, args.poll_interval))  # all polled once, all online
        hub.bus.subscribe(on_event)
        ticker = asyncio.create_task(tick())
        if args.tracemalloc:
            tracemalloc.start(4)
        first_snapshot: tracemalloc.Snapshot | None = None
        rss0 = rss_mib()
        samples = [round(rss0)]
        polled = list(vang.urls)
        tenth = max(1, len(polled) // 10)
        broadcasts: list[str] = []
        worst_backlog = 0
        faulty: list[str] = []
        fault_n = 0
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_broadcast, next_fault, next_sample = t0, t0 + args.fault_every, t0 + 60
        while (now := time.monotonic()) < end:
            if now >= next_broadcast:
                assert hub.broadcasts is not None
                worst_backlog = max(worst_backlog, await backlog(hub))
                plan = await hub.broadcasts.create(Broadcast(
                    id=new_id("bc"), content_id=content_id,
                    targets=Targets(areas=[PROVINCE]), schedule=Schedule(kind="now")),
                    "duty-officer", owner_area=PROVINCE)
                broadcasts.append(plan.broadcast.id)
                next_broadcast += args.broadcast_every
            if now >= next_fault and polled:
                fault = Fault.HANG if fault_n % 2 == 0 else Fault.OFFLINE
                previous = (Fault.OFFLINE if fault is Fault.HANG else Fault.HANG)
                if faulty:
                    await asyncio.to_thread(vang.clear, faulty, previous)
                start = fault_n * tenth % len(polled)
                faulty = polled[start:start + tenth]
                await asyncio.to_thread(vang.inject, faulty, fault)
                fault_n += 1
                next_fault += args.fault_every
            if now >= next_sample:
                samples.append(round(rss_mib()))
                next_sample += 60
                if args.tracemalloc and first_snapshot is None:  # after a minute's warm-up
                    first_snapshot = tracemalloc.take_snapshot()
            await asyncio.sleep(0.5)
        ticker.cancel()
        await asyncio.sleep(min(30.0, args.broadcast_every))  # let the last one finish
        assert hub.broadcasts is not None
        states: dict[str, int] = {}
        for broadcast_id in broadcasts:
            for state, count in (await hub.broadcasts.deliveries(broadcast_id)).items():
                states[state] = states.get(state, 0) + count
        rss1 = rss_mib()
        growth = grown(first_snapshot, args.tracemalloc) if first_snapshot else None
        jobs = [j for s in hub.supervisors if (j := hub.poller.job(s)) is not None]
        return {
            "minutes": args.minutes, "native_speakers": len(native), "polled": len(polled),
            "poll_interval_s": args.poll_interval, "broadcasts_sent": len(broadcasts),
            "fault_rounds": fault_n,
            "rss_mib": {"start": round(rss0), "end": round(rss1),
                        "growth": round(rss1 - rss0)},
            "rss_samples_mib": samples, "loop_lag_ms": summary(lags),
            "broadcasts": states,
            "failed": sum(v for k, v in states.items() if k in ("failed", "expired", "rejected")),
            "outbox_backlog": {"end": await backlog(hub), "worst_at_a_broadcast": worst_backlog},
            "command_results": results,
            "polls": {"runs": sum(j.runs for j in jobs), "skipped": sum(j.skipped for j in jobs),
                      "paced": sum(j.paced for j in jobs)},
            "database": "postgresql" if args.database and "postgres" in args.database
            else "sqlite",
            **({"traced_growth": growth} if growth is not None else {})}
    finally:
        await runner.cleanup()
        await hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length (default 10)")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="N",
                        help="trace allocations from the first minute on and report the N "
                        "places that grew most (slows the hub)")
    parser.add_argument("--speakers", type=int, default=500, help="native MQTT speakers")
    parser.add_argument("--polled", type=int, default=100, help="VangTech HTTP speakers")
    parser.add_argument("--poll-interval", type=float, default=15.0, help="seconds")
    parser.add_argument("--broadcast-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--fault-every", type=float, default=45.0, help="seconds")
    parser.add_argument("--database", default=None,
                        help="SQLAlchemy URL (default: SQLite in a scratch directory)")
    args = parser.parse_args()
    configure(level="error")
    native = [f"SOAK-{n:05d}" for n in range(args.speakers)]
    broker = Mosquitto().start()
    speakers: SpeakerLoad | None = None
    vang: VangLoad | None = None
    try:
        speakers = SpeakerLoad(broker.port, native)
        vang = VangLoad([f"SOAKVT-{n:04d}" for n in range(args.polled)])
        figures = asyncio.run(soak(args, broker, speakers, vang, native))
    finally:
        if vang is not None:
            vang.stop()
        if speakers is not None:
            speakers.stop()
        broker.stop()
    emit("soak", **figures)


if __name__ == "__main__":
    main()
