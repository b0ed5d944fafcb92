"""API request latency through the whole stack (token check, policy, service, JSON), on
SQLite, one client at a time and a few at once.

    .venv/bin/python bench/bench_api.py --devices 1000 --requests 400

Prints one JSON line per request kind (milliseconds; requests per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttcs.core.config import Settings  # noqa: E402
from ttcs.core.http import start_http  # noqa: E402
from ttcs.core.hub import Hub  # noqa: E402
from ttcs.core.logging import configure  # noqa: E402
from ttcs.schemas import Area, AreaType, DeviceInfo, DeviceSpec  # noqa: E402
from ttcs.schemas.access import Role, UserSpec  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def main(devices: int, requests: int, concurrency: int) -> None:
    configure(level="error")
    home = Path(tempfile.mkdtemp())
    hub = Hub(Settings(home=home, api_port=0, mqtt_url="mqtt://127.0.0.1:9"))
    await hub.open()
    await hub.registry.import_areas([
        Area(code="46", name="Huế", type=AreaType.MUNICIPALITY),
        Area(code="19900", name="Thuận An", type=AreaType.WARD, parent_code="46"),
        Area(code="20101", name="Phú Vinh", type=AreaType.COMMUNE, parent_code="46")], "bench")
    for n in range(devices):
        serial = f"B{n:05d}"
        await hub.registry.add_device(
            DeviceSpec(plugin="native", kind="ip_speaker", area_code="19900" if n % 2 else
                       "20101", config={"serial": serial}), "bench",
            info=DeviceInfo(serial=serial, vendor="B", model="b", kind="ip_speaker"))
    await hub.accounts.add_user(UserSpec(name="op", role=Role.OPERATOR, area_code="19900"),
                                "bench")
    token = (await hub.accounts.create_token("op", "bench")).token
    runner, url = await start_http(hub)
    some = (await hub.registry.list_devices(area="19900", limit=1))[0].id
    foreign = (await hub.registry.list_devices(area="20101", limit=1))[0].id
    kinds = {"list 100 devices": ("GET", "/api/v1/devices?limit=100", None),
             "one device": ("GET", f"/api/v1/devices/{some}", None),
             "refused command (audited)": ("POST", f"/api/v1/devices/{foreign}/commands",
                                           {"type": "stop"})}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for name, (method, path, body) in kinds.items():
            for parallel in (1, concurrency):
                times: list[float] = []
                queue = list(range(requests))

                async def worker(queue: list[int] = queue, times: list[float] = times,
                                 method: str = method, path: str = path,
                                 body: object = body) -> None:
                    while queue:
                        queue.pop()
                        start = time.perf_counter()
                        async with http.request(method, url + path, json=body) as r:
                            await r.read()
                            assert r.status in (200, 403), r.status
                        times.append((time.perf_counter() - start) * 1000)

                began = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(parallel)))
                wall = time.perf_counter() - began
                print(json.dumps({"bench": "api", "request": name, "clients": parallel,
                                  "devices": devices, "requests": requests,
                                  "p50_ms": round(percentile(times, 50), 2),
                                  "p95_ms": round(percentile(times, 95), 2),
                                  "per_second": round(requests / wall, 1),
                                  "python": platform.python_version()}), flush=True)
    await runner.cleanup()
    await hub.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.devices, args.requests, args.concurrency))
