"""Board latencies through a real hub: command → on the screen, command → result.

Pull board (4G, polls the hub): the hub can only answer the board's next poll, so the figures
depend on the poll interval. Push board: a few HTTP calls per command.

    .venv/bin/python bench/bench_boards.py --poll 1 --poll 5 --samples 20

Prints one JSON line per board type and poll interval (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttcs.core.config import Settings  # noqa: E402
from ttcs.core.hub import Hub  # noqa: E402
from ttcs.core.logging import configure  # noqa: E402
from ttcs.schemas import Area, AreaType, DeviceSpec, parse_command  # noqa: E402
from ttcs.simulators.ledviet_board import LedVietBoard  # noqa: E402
from ttcs.simulators.pull_board import PullBoard  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1), "min": round(min(values), 1)}


def emit(name: str, **figures: Any) -> None:
    print(json.dumps({"bench": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load": os.getloadavg()[0]}, **figures}), flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def hub() -> Hub:
    home = Path(tempfile.mkdtemp(prefix="bench-boards-"))
    h = Hub(Settings(home=home, mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
                     command_timeout=30, probe_timeout=15))
    await h.start()
    await h.registry.import_areas([Area(code="46", name="Huế", type=AreaType.MUNICIPALITY)],
                                  "bench")
    return h


async def measure(h: Hub, device_id: str, board: Any, samples: int, spread: float
                  ) -> tuple[list[float], list[float], list[float]]:
    """(show → on screen, show → result, set_brightness → result), in ms."""
    display, show_ack, bright_ack = [], [], []
    for n in range(samples):
        await asyncio.sleep(random.uniform(0, spread))  # random phase against the poll clock
        item = f"bench-{n}"
        started = time.monotonic()
        wall = time.time()
        result = await h.execute(device_id, parse_command(
            {"type": "show", "text": f"Bản tin số {n}", "content_id": item}))
        show_ack.append((time.monotonic() - started) * 1000)
        assert result.ok, result
        entry = next(e for e in reversed(board.truth.shown) if e["item_id"] == item)
        display.append((entry["at"].timestamp() - wall) * 1000)
        await asyncio.sleep(random.uniform(0, spread))
        started = time.monotonic()
        result = await h.execute(device_id, parse_command(
            {"type": "set_brightness", "brightness": 20 + n % 60}))
        bright_ack.append((time.monotonic() - started) * 1000)
    return display, show_ack, bright_ack


async def pull(poll: float, samples: int) -> None:
    h = await hub()
    port = free_port()
    board = PullBoard("HLS-BENCH", f"http://127.0.0.1:{port}", token="t", poll_interval=poll)
    await board.start()
    try:
        device = await h.registry.add_device(DeviceSpec(
            plugin="pullboard", kind="lcd_board", area_code="46",
            config={"serial": "HLS-BENCH", "token": "t", "listen_host": "127.0.0.1",
                    "listen_port": port, "poll_interval": poll}), "bench")
        await h.supervise(device)
        display, ack, bright = await measure(h, device.id, board, samples, poll)
        emit("pullboard_latency_ms", poll_interval_s=poll, samples=samples,
             show_to_screen=summary(display), show_to_result=summary(ack),
             set_brightness_to_result=summary(bright), polls=board.polls)
    finally:
        await h.stop()
        await board.stop()


async def push(samples: int) -> None:
    h = await hub()
    board = LedVietBoard("LV-BENCH", token="t")
    await board.start()
    try:
        device = await h.registry.add_device(DeviceSpec(
            plugin="ledviet", kind="led_board", area_code="46",
            config={"url": board.url, "token": "t"}), "bench")
        await h.supervise(device)
        display, ack, bright = await measure(h, device.id, board, samples, 0.05)
        emit("ledviet_latency_ms", samples=samples, show_to_screen=summary(display),
             show_to_result=summary(ack), set_brightness_to_result=summary(bright))
    finally:
        await h.stop()
        await board.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--poll", type=float, action="append",
                        help="pull-board poll interval, seconds (repeatable; default 1 and 5)")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    configure(level="error")
    asyncio.run(push(args.samples))
    for poll in args.poll or [1.0, 5.0]:
        asyncio.run(pull(poll, args.samples))


if __name__ == "__main__":
    main()
