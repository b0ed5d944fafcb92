"""Proof-of-play throughput: play events into the store through the batch writer, CSV export,
and coverage of one broadcast over many devices. Prints one JSON line per database.

    .venv/bin/python bench/bench_playlog_ingest.py [--events 50000] [--devices 10000] [--no-pg]

PostgreSQL is used when reachable (the same server the tests use, see tests/support).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from ttcs.core.config import Settings
from ttcs.core.events import EventBus
from ttcs.core.playlog import PlayFilter, PlayLog, PlayLogWriter, export_csv
from ttcs.core.store import Store
from ttcs.core.store.tables import AreaRow, DeviceRow
from ttcs.schemas import PlayEvent, PlayPhase, utcnow

#: an administrative URL of the PostgreSQL to create a scratch database on
ADMIN = os.environ.get("TTCS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def bench(database_url: str, events: int, devices: int) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="ttcs-bench-"))
    store = await Store.open(Settings(home=home, database_url=database_url))
    bus = EventBus()
    writer = PlayLogWriter(store, bus, village_of=lambda d: f"v-{hash(d) % 300}")
    writer.start()
    ids = [f"spk-{n:05d}" for n in range(devices)]
    now = utcnow()

    async with store.sessions.begin() as s:
        await s.execute(insert(AreaRow), [{"code": "46", "name": "Huế", "type": "municipality"}])
        await s.execute(insert(DeviceRow), [{
            "id": d, "name": d, "kind": "ip_speaker", "vendor": "bench", "model": "m",
            "serial": d, "firmware": "1", "plugin": "native", "area_code": "46",
            "village_code": None, "capabilities": [], "config": {}} for d in ids])
    # pre-built events: the figure is the store path, not pydantic building them
    played = [PlayEvent(device_id=ids[(n // 2) % devices], area_code="46",
                        broadcast_id=f"bc-{n // (2 * devices)}", content_id="ct-1",
                        phase=PlayPhase.STARTED if n % 2 == 0 else PlayPhase.FINISHED,
                        device_time=now - timedelta(seconds=1)) for n in range(events)]

    start = time.perf_counter()
    for n, event in enumerate(played):
        bus.publish(event)
        if n % 1000 == 999:
            await asyncio.sleep(0)  # events arrive over time, not in one go
    publish_s = time.perf_counter() - start
    await writer.drain(600)
    ingest_s = time.perf_counter() - start
    await writer.stop()

    log = PlayLog(store)
    start = time.perf_counter()
    rows = await export_csv(log.stream(PlayFilter(area="46")), io.StringIO())
    export_s = time.perf_counter() - start

    start = time.perf_counter()
    coverage = await log.coverage("bc-0", ids)
    coverage_s = time.perf_counter() - start
    await store.close()
    return {"database": store.dialect, "events": events, "batch": 500,
            "publish_seconds": round(publish_s, 3),
            "ingest_seconds": round(ingest_s, 3),
            "ingest_per_second": round(events / ingest_s),
            "stored": writer.written, "dropped": writer.dropped, "failed": writer.failed,
            "export_csv_rows": rows, "export_csv_rows_per_second": round(rows / export_s),
            "coverage_devices": devices, "coverage_seconds": round(coverage_s, 3),
            "coverage_device_share": coverage.device_share}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    sqlite = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='ttcs-bench-')}/bench.db"
    print(json.dumps(await bench(sqlite, args.events, args.devices)), flush=True)
    if args.no_pg:
        return
    try:
        from ttcs.testing.databases import create_scratch, drop_scratch

        url, name = await create_scratch(ADMIN, "ttcs_bench")
    except Exception as exc:  # no server: say so, keep the SQLite figure
        print(json.dumps({"database": "postgresql", "skipped": repr(exc)}))
        return
    try:
        print(json.dumps(await bench(url, args.events, args.devices)), flush=True)
    finally:
        await drop_scratch(ADMIN, name)


if __name__ == "__main__":
    asyncio.run(main())
