"""Cost of alarm evaluation on the bus: device status events per second through the
HealthMonitor (battery, VSWR and temperature rules), with a share of devices in alarm.

    .venv/bin/python bench/bench_health_status_rate.py [--events 200000] [--devices 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttcs.core.config import AlarmSettings, Settings
from ttcs.core.events import EventBus
from ttcs.core.health import HealthMonitor
from ttcs.core.logging import configure
from ttcs.core.store import Store
from ttcs.schemas import DeviceStatus, DeviceStatusEvent, PowerSource


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()
    configure(level="error")  # 200 alarm.raised lines would drown the figure
    store = await Store.open(Settings(home=Path(tempfile.mkdtemp(prefix="ttcs-bench-"))))
    bus = EventBus()
    health = HealthMonitor(store, bus, AlarmSettings(debounce=0, check_interval=3600))
    await health.start()
    statuses = []
    for n in range(args.devices):  # 1 % on battery, 1 % with high VSWR, the rest healthy
        statuses.append(DeviceStatusEvent(device_id=f"d{n}", area_code="46", status=DeviceStatus(
            power_source=PowerSource.BATTERY if n % 100 == 0 else PowerSource.MAINS,
            temperature=40.0, telemetry={"vswr": 2.5 if n % 100 == 1 else 1.2})))
    start = time.perf_counter()
    for n in range(args.events):
        bus.publish(statuses[n % args.devices])
    seconds = time.perf_counter() - start
    await health.drain()
    print(json.dumps({"status_events": args.events, "devices": args.devices,
                      "seconds": round(seconds, 3),
                      "status_events_per_second": round(args.events / seconds),
                      "microseconds_per_event": round(seconds / args.events * 1e6, 2),
                      "alarms_active": len(health.active()), "alarms_raised": health.raised}))
    await health.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
