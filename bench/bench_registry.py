"""Registry at country scale: a hub with N registered devices (default 20,000; the issue's
size is 100,000), none of them reachable — its resident memory, its start-up time, how busy
its loop stays after start, and list/filter latency through the HTTP API.

    python bench/bench_registry.py [--devices 20000] [--database-url URL] [--queries 30]
    python bench/bench_registry.py --devices 100000                       # the issue's size

The devices are written straight through the store (``ttcs.testing.bulk``: the rows the
registry writes after a probe, secrets sealed), spread over 34 provinces and their communes
(30 devices a commune), with a mix of plugins: native MQTT speakers (``--poll-share`` of them
VangTech HTTP speakers, polled) and a province-wide group of 40 % of the fleet. Native
speakers never announce themselves (the broker is a private Mosquitto) and every VangTech
speaker's address refuses connections (a distinct loopback address per device, as distinct
field devices are distinct hosts), so the hub finds all of them offline or unknown.

The hub runs in a process of its own, so its resident memory is its own:

- ``start_s``: from ``Hub(settings)`` to ``Hub.start()`` returned and the HTTP API serving;
- ``rss_mib``: resident memory at that moment and again after ``--settle`` seconds;
- ``loop_lag_ms``: lateness of a 50 ms ticker in the hub's loop during the settle period (a
  loop kept busy by start-up work or by polls of unreachable devices shows here);
- ``queries``: p50/p99 latency (ms) of ``GET /api/v1/devices`` queries an operator makes, each
  run ``--queries`` times in turn, as an administrator.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

from common import emit, percentile

from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import Area, AreaType, Connectivity, Group
from ttcs.schemas.access import Role, UserSpec
from ttcs.testing import Mosquitto
from ttcs.testing.bulk import BulkDevice, insert_devices
from ttcs.testing.net import free_port

PROVINCES = 34
PER_COMMUNE = 30
GROUP = "canh-bao-lu"


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1), "max": round(max(values), 1)}


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def layout(devices: int) -> tuple[list[Area], list[str]]:
    """Provinces and communes for ``devices`` devices; returns (areas, commune codes)."""
    communes_n = -(-devices // PER_COMMUNE)
    provinces = [f"{p + 1:02d}" for p in range(PROVINCES)]
    areas = [Area(code=p, name=f"Tỉnh {p}", type=AreaType.PROVINCE) for p in provinces]
    communes = [f"{provinces[n % PROVINCES]}{n:05d}" for n in range(communes_n)]
    areas += [Area(code=c, name=f"Xã {c}", type=AreaType.COMMUNE, parent_code=c[:2])
              for c in communes]
    return areas, communes


def fleet(devices: int, communes: list[str], poll_share: float) -> list[BulkDevice]:
    every = round(1 / poll_share) if poll_share > 0 else 0
    out = []
    for n in range(devices):
        area = communes[n // PER_COMMUNE]
        groups = [GROUP] if n % 5 < 2 else []  # 40 % of the fleet, everywhere
        state = (Connectivity.ONLINE if n % 10 < 8 else Connectivity.OFFLINE if n % 10 == 8
                 else Connectivity.UNKNOWN)  # what an earlier run left in the store
        if every and n % every == 0:
            serial = f"VT-{n:06d}"
            out.append(BulkDevice(
                id=f"vang-{serial.lower()}", plugin="vang", kind="ip_speaker", serial=serial,
                area_code=area, vendor="VangTech", model="VT-IPS40-4G",
                config={"url": f"http://127.{1 + n // 65536}.{n // 256 % 256}.{n % 256}:9",
                        "key_id": "hub"}, secrets={"secret": f"s-{n}"},
                capabilities=["audio.play", "audio.stream", "audio.volume"],
                groups=groups, connectivity=state))
        else:
            serial = f"NT-{n:06d}"
            out.append(BulkDevice(
                id=f"native-{serial.lower()}", plugin="native", kind="ip_speaker",
                serial=serial, area_code=area, vendor="TTCS reference", model="TTCS-SPK",
                config={"serial": serial}, capabilities=["audio.play", "audio.volume"],
                groups=groups, connectivity=state))
    return out


async def prepare(settings: Settings, devices: int, poll_share: float) -> tuple[str, str]:
    """Areas, devices, a group, an administrator; returns (token, a commune code)."""
    hub = Hub(settings)
    await hub.open()
    try:
        areas, communes = layout(devices)
        await hub.registry.import_areas(areas, "bench")
        await hub.registry.create_group(Group(id=GROUP, name="Cảnh báo lũ", area_code=None),
                                        "bench")
        await insert_devices(hub.store, fleet(devices, communes, poll_share))
        await hub.accounts.add_user(UserSpec(name="root", role=Role.ADMINISTRATOR), "bench")
        token = (await hub.accounts.create_token("root", "bench")).token
        return token, communes[len(communes) // 2]
    finally:
        await hub.stop()


def _hub_process(settings_json: str, settle: float, control: Any) -> None:
    configure(level="error")
    settings = Settings.model_validate_json(settings_json)

    async def serve() -> None:
        from ttcs.core.http import start_http

        t0 = time.monotonic()
        hub = Hub(settings)
        await hub.start()
        runner, url = await start_http(hub)
        start_s = time.monotonic() - t0
        rss0 = rss_mib()
        lags: list[float] = []

        async def tick() -> None:
            while True:
                t = time.monotonic()
                await asyncio.sleep(0.05)
                lags.append((time.monotonic() - t - 0.05) * 1000)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(settle)
        states: dict[str, int] = {}
        for sup in hub.supervisors.values():
            states[sup.connectivity.value] = states.get(sup.connectivity.value, 0) + 1
        control.send({"url": url, "start_s": start_s, "rss_start_mib": rss0,
                      "rss_settled_mib": rss_mib(), "loop_lag_ms": summary(lags),
                      "supervised": len(hub.supervisors), "connectivity": states,
                      "polled": len(hub.poller._jobs)})
        lags.clear()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, control.recv)  # queries run meanwhile
        control.send({"loop_lag_ms": summary(lags), "rss_mib": rss_mib()})
        ticker.cancel()
        await runner.cleanup()
        await hub.stop()

    asyncio.run(serve())


async def measure_queries(url: str, token: str, commune: str, repeat: int, devices: int
                          ) -> dict[str, Any]:
    import aiohttp

    queries = {
        "first_page": "/api/v1/devices?limit=100",
        "deep_page": f"/api/v1/devices?limit=100&offset={devices // 2}",
        "province": "/api/v1/devices?area=01&limit=100",
        "commune": f"/api/v1/devices?area={commune}&limit=100",
        "plugin_vang": "/api/v1/devices?plugin=vang&limit=100",
        "kind": "/api/v1/devices?kind=ip_speaker&limit=100",
        "offline": "/api/v1/devices?connectivity=offline&limit=100",
        "group": f"/api/v1/devices?group={GROUP}&limit=100",
        "search": "/api/v1/devices?search=vt-0001&limit=100",
    }
    times: dict[str, list[float]] = {q: [] for q in queries}
    counts: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(repeat):
            for name, path in queries.items():
                t = time.monotonic()
                async with session.get(url + path) as response:
                    body = await response.json()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status} {body}")
                times[name].append((time.monotonic() - t) * 1000)
                counts[name] = len(body["items"])
    return {name: {**summary(values), "items": counts[name]} for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20_000,
                        help="registered devices (default 20000; the issue's size: 100000)")
    parser.add_argument("--poll-share", type=float, default=0.3,
                        help="share of polled (VangTech HTTP) devices (default 0.3)")
    parser.add_argument("--database-url", default=None,
                        help="SQLAlchemy URL of an empty database (default: SQLite in a "
                        "scratch directory)")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to watch the hub after start before querying (default 30)")
    parser.add_argument("--queries", type=int, default=30, help="runs of each query")
    args = parser.parse_args()
    configure(level="error")
    broker = Mosquitto().start()
    try:
        settings = Settings(home=Path(tempfile.mkdtemp(prefix="bench-registry-")),
                            mqtt_url=broker.url(), log_level="error", api_port=free_port(),
                            database_url=args.database_url)
        t = time.monotonic()
        token, commune = asyncio.run(prepare(settings, args.devices, args.poll_share))
        setup_s = time.monotonic() - t
        ctx = mp.get_context("spawn")
        pipe, child = ctx.Pipe()
        proc = ctx.Process(target=_hub_process, args=(settings.model_dump_json(), args.settle,
                                                      child), daemon=True)
        proc.start()
        try:
            started = pipe.recv()
            queries = asyncio.run(measure_queries(started["url"], token, commune, args.queries,
                                                  args.devices))
            pipe.send("done")
            during = pipe.recv()
        finally:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
    finally:
        broker.stop()
    emit("registry", devices=args.devices, poll_share=args.poll_share,
         database="postgresql" if args.database_url and "postgres" in args.database_url
         else "sqlite", setup_s=round(setup_s, 1), start_s=round(started["start_s"], 2),
         rss_start_mib=round(started["rss_start_mib"]),
         rss_settled_mib=round(started["rss_settled_mib"]),
         rss_after_queries_mib=round(during["rss_mib"]), settle_s=args.settle,
         loop_lag_after_start_ms=started["loop_lag_ms"],
         loop_lag_during_queries_ms=during["loop_lag_ms"],
         supervised=started["supervised"], polled=started["polled"],
         connectivity_after_settle=started["connectivity"], queries=queries)


if __name__ == "__main__":
    main()
