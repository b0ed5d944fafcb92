"""Fault isolation for Sao Khuê stations: command round trips of healthy stations while one
station of the same broker (same hub connection, same bus, same watchdog) misbehaves.

    .venv/bin/python bench/bench_saokhue_isolation.py [--stations 10] [--rounds 20]

For each condition (none, then each fault injected into station 0) it sends ``set_volume`` to
every *other* station, ``rounds`` times, concurrently per round, and prints one JSON line with
the round-trip percentiles (milliseconds) and the healthy stations' failures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from common import emit, percentile

from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import Area, AreaType, Connectivity, DeviceSpec, parse_command
from ttcs.simulators.base import Fault
from ttcs.simulators.saokhue_station import SaoKhueStation
from ttcs.testing import Mosquitto

FAULTS = [None, Fault.HANG, Fault.SLOW, Fault.GARBAGE, Fault.POWER_LOSS,
          Fault.DROP_CONNECTION, Fault.OFFLINE]


async def run(stations: int, rounds: int) -> None:
    configure(level="error")
    broker = Mosquitto().start()
    home = Path(tempfile.mkdtemp(prefix="bench-skr-"))
    hub = Hub(Settings(home=home, mqtt_url=broker.url(), command_timeout=3.0,
                       probe_timeout=3.0))
    sims = [SaoKhueStation(f"SKR-B{n:04d}", broker.url(), heartbeat=1.0)
            for n in range(stations)]
    try:
        for sim in sims:
            await sim.start()
        await hub.start()
        await hub.registry.import_areas([Area(code="46", name="Huế", type=AreaType.MUNICIPALITY),
                                         Area(code="19900", name="Thuận An", type=AreaType.WARD,
                                              parent_code="46")], "bench")
        devices = []
        for sim in sims:
            while not sim.connected:  # noqa: ASYNC110 - a bench, polling is fine
                await asyncio.sleep(0.02)
            reg = sim.registration()
            device = await hub.registry.add_device(DeviceSpec(
                plugin="saokhue", kind="ip_speaker", area_code="19900", config=reg["config"]),
                "bench")
            await hub.supervise(device)
            devices.append(device)
        while any(hub.supervisors[d.id].connectivity  # noqa: ASYNC110
                  is not Connectivity.ONLINE for d in devices):
            await asyncio.sleep(0.05)
        for fault in FAULTS:
            if fault is not None:
                await sims[0].inject(fault, **({"delay": 5.0} if fault is Fault.SLOW else {}))
            times: list[float] = []
            outcomes: list[bool] = []
            for n in range(rounds):
                await asyncio.gather(*(_round_trip(hub, d.id, 10 + (n % 80), times, outcomes)
                                       for d in devices[1:]))
            failures = outcomes.count(False)
            emit("saokhue_isolation", fault=fault.value if fault else "none",
                 healthy_stations=stations - 1, commands=len(times), failures=failures,
                 p50_ms=round(percentile(times, 50), 1), p95_ms=round(percentile(times, 95), 1),
                 max_ms=round(max(times), 1))
            if fault is not None:
                await sims[0].clear(fault)
                while hub.supervisors[devices[0].id].connectivity \
                        is not Connectivity.ONLINE:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    finally:
        await hub.stop()
        for sim in sims:
            with contextlib.suppress(Exception):
                await sim.stop()
        broker.stop()


async def _round_trip(hub: Hub, device_id: str, volume: int, times: list[float],
                      outcomes: list[bool]) -> None:
    began = time.perf_counter()
    try:
        result = await hub.execute(device_id, parse_command({"type": "set_volume",
                                                             "volume": volume}))
        outcomes.append(result.ok)
    except Exception:
        outcomes.append(False)
    times.append((time.perf_counter() - began) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.stations, args.rounds))


if __name__ == "__main__":
    main()
