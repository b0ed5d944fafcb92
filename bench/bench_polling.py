"""Polling: how late the hub's poller runs N polled devices, first all healthy, then with a
tenth of them hanging (they accept the connection and never answer).

    python bench/bench_polling.py [--devices 500] [--interval 5] [--seconds 20] [--hang 0.1]
    python bench/bench_polling.py --devices 2000 --interval 30 --seconds 120   # the issue's size

The devices are real VangTech speaker simulators (signed REST/JSON, one aiohttp server on its
own port per device, as distinct field devices are distinct hosts), all in one separate process
(``poll_load.py``); they are registered the way an integrator does (probed, imported) and
polled by the hub's one ``Poller`` through the vang driver and the shared HTTP client.

Figures (ms), per phase, over the phase's polls only:

- ``lateness``: what the poller records per run (``PollJob.lateness``: from the slot's due
  time to the poll starting) — the poller's own drift off its fixed-rate grid;
- ``interval_drift``: |time between two status requests as the device saw them - interval|,
  healthy devices only (a hanging device never answers, so it records nothing);
- ``skipped``: runs not started because the previous one was still in flight (the hanging
  devices, by design), ``offline``: devices the hub has declared offline.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from common import emit, percentile
from poll_load import SECRET, VangLoad

from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import Area, AreaType, Connectivity, DeviceSpec
from ttcs.simulators.base import Fault


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1), "max": round(max(values), 1)}


class Lag:
    """Event-loop lag of the hub's process: a 50 ms ticker's lateness."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            self.samples.append((time.monotonic() - t - 0.05) * 1000)

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick())

    def take(self) -> list[float]:
        out, self.samples = self.samples, []
        return out

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def phase(hub: Hub, load: VangLoad, ids: dict[str, str], healthy: list[str],
                seconds: float, interval: float, lag: Lag) -> dict[str, Any]:
    jobs = {s: hub.poller.job(d) for s, d in ids.items()}
    runs0 = {s: (j.runs, j.skipped) for s, j in jobs.items() if j is not None}
    since = time.monotonic()
    lag.take()
    await asyncio.sleep(seconds)
    loop_lag = lag.take()
    polls = await asyncio.to_thread(load.polls, since)
    late_all: list[float] = []
    late_healthy: list[float] = []
    skipped = 0
    good = set(healthy)
    for serial, job in jobs.items():
        if job is None:
            continue
        runs = job.runs - runs0[serial][0]
        skipped += job.skipped - runs0[serial][1]
        mine = [x * 1000 for x in job.lateness[-runs:]] if runs > 0 else []
        late_all += mine
        if serial in good:
            late_healthy += mine
    drift = [abs((b - a) - interval) * 1000 for s in healthy
             for a, b in itertools.pairwise(polls.get(s, []))]
    states = [hub.supervisors[d].connectivity for d in ids.values()]
    return {"lateness_ms": {"healthy": summary(late_healthy), "all": summary(late_all)},
            "interval_drift_ms": {"healthy": summary(drift)},
            "polls_seen_by_devices": sum(len(polls.get(s, [])) for s in healthy),
            "skipped": skipped,
            "offline": sum(c is Connectivity.OFFLINE for c in states),
            "online": sum(c is Connectivity.ONLINE for c in states),
            "loop_lag_ms": summary(loop_lag)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    serials = [f"POLL-{n:05d}" for n in range(args.devices)]
    t0 = time.monotonic()
    load = await asyncio.to_thread(VangLoad, serials)
    lag = Lag()
    hub: Hub | None = None
    try:
        sims_s = time.monotonic() - t0
        settings = Settings(home=Path(tempfile.mkdtemp(prefix="bench-polling-")),
                            log_level="error", database_url=args.database)
        hub = Hub(settings)
        await hub.open()
        communes = [f"9{n:04d}" for n in range(-(-len(serials) // 100))]
        await hub.registry.import_areas(
            [Area(code="46", name="Thành phố Huế", type=AreaType.MUNICIPALITY)]
            + [Area(code=c, name=f"Xã {c}", type=AreaType.COMMUNE, parent_code="46")
               for c in communes], "bench")
        t1 = time.monotonic()
        report = await hub.registry.import_devices([DeviceSpec(
            plugin="vang", kind="ip_speaker", area_code=communes[n // 100], config={
                "url": load.urls[s], "key_id": "hub", "secret": SECRET,
                "poll_interval": args.interval}) for n, s in enumerate(serials)], "bench")
        assert report.ok, [r.error for r in report.rows if not r.ok][:3]
        import_s = time.monotonic() - t1
        ids = {s: f"vang-{s.lower()}" for s in serials}
        t2 = time.monotonic()
        await hub.start()
        start_s = time.monotonic() - t2
        lag.start()
        deadline = time.monotonic() + max(60.0, 3 * args.interval)
        while time.monotonic() < deadline:
            if all(hub.supervisors[d].connectivity is Connectivity.ONLINE for d in ids.values()):
                break
            await asyncio.sleep(0.2)
        online_s = time.monotonic() - t2
        await asyncio.sleep(args.interval)  # one full round on the grid before measuring
        results: dict[str, Any] = {}
        results["healthy"] = await phase(hub, load, ids, serials, args.seconds, args.interval,
                                         lag)
        hanging = serials[::max(1, round(1 / args.hang))] if args.hang > 0 else []
        await asyncio.to_thread(load.inject, hanging, Fault.HANG)
        # polls started before the fault are answered; measure from the next round on
        await asyncio.sleep(args.interval)
        rest = [s for s in serials if s not in set(hanging)]
        results["hanging"] = await phase(hub, load, ids, rest, args.seconds, args.interval, lag)
        results["hanging"]["hanging_devices"] = len(hanging)
        await asyncio.to_thread(load.clear, hanging, Fault.HANG)
        return {"devices": args.devices, "interval_s": args.interval,
                "phase_seconds": args.seconds, "command_timeout_s": settings.command_timeout,
                "sims_start_s": round(sims_s, 1), "import_s": round(import_s, 1),
                "hub_start_s": round(start_s, 2), "all_online_s": round(online_s, 1),
                "database": "postgresql" if args.database and "postgres" in args.database
                else "sqlite", **results}
    finally:
        lag.stop()
        if hub is not None:
            await hub.stop()
        load.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500,
                        help="simulated speakers (default 500; the issue's size: 2000)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="poll interval, s (default 5; the issue's: 30)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="length of each phase, s (default 20)")
    parser.add_argument("--hang", type=float, default=0.1,
                        help="share of devices that hang in the second phase (default 0.1)")
    parser.add_argument("--database", default=None,
                        help="SQLAlchemy URL (default: SQLite in a scratch directory)")
    args = parser.parse_args()
    configure(level="error")
    emit("polling", **asyncio.run(run(args)))


if __name__ == "__main__":
    main()
