"""Shared pieces of the benchmarks: a private Mosquitto, a paho load generator process,
percentiles, and the one-line JSON result every benchmark prints."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def emit(name: str, **figures: Any) -> None:
    """Print the benchmark's result as one JSON line (and keep a copy under bench/results)."""
    line = json.dumps({"bench": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "machine": machine(), **figures}, default=str)
    print(line, flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    with (out / f"{name}.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _flood(port: int, topics: list[str], payloads: list[bytes], seconds: float,
           ready: Any, count: Any) -> None:
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"flood-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait()
    sent = 0
    end = time.monotonic() + seconds
    n = len(topics)
    while time.monotonic() < end:
        for _ in range(200):
            i = sent % n
            client.publish(topics[i], payloads[i], qos=0)
            sent += 1
        time.sleep(0)
    client.loop_stop()
    client.disconnect()
    count.value = sent


def start_flood(port: int, topics: list[str], payloads: list[bytes], seconds: float
                ) -> tuple[mp.Process, Any, Any]:
    """A separate process publishing round-robin as fast as paho can; set ``ready`` to go."""
    ctx = mp.get_context("spawn")
    ready, count = ctx.Event(), ctx.Value("q", 0)
    proc = ctx.Process(target=_flood, args=(port, topics, payloads, seconds, ready, count),
                       daemon=True)
    proc.start()
    return proc, ready, count
