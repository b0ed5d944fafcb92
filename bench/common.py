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


def _publisher(port: int, topics: list[str], payloads: list[bytes], seconds: float | None,
               rate: float | None, ready: Any, stop: Any, count: Any) -> None:
    """Publish ``payloads`` round-robin on ``topics`` at QoS 0, for ``seconds`` or until
    ``stop``, at ``rate`` per second or as fast as the socket takes them.

    The PUBLISH packets are encoded once, before the clock starts, and written straight to a
    socket in batches (the hub's own encoder, :mod:`ttcs.adapters.mqtt_wire`): a load
    generator that spends ~1 µs per message leaves the machine to the broker and to what is
    measured. (paho here cost ~35 µs per message, so the generator, not the hub, set the
    pace of a flood.)"""
    import socket

    from ttcs.adapters.mqtt_wire import check_topic, connect_packet, publish_packet

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(f"load-{os.getpid()}", version=4, keepalive=0, clean=True,
                                username=None, password=None, will=None))
    connack = sock.recv(4, socket.MSG_WAITALL)  # CONNACK: 4 bytes
    if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
        raise RuntimeError(f"broker refused the load generator: {connack!r}")
    packets = [publish_packet(check_topic(t), p, 0, False, 0, False)
               for t, p in zip(topics, payloads, strict=True)]
    batch = 100
    chunks = [(b"".join(packets[i:i + batch]), len(packets[i:i + batch]))
              for i in range(0, len(packets), batch)]
    ready.wait()
    sent = k = 0
    start = time.monotonic()
    end = start + seconds if seconds is not None else float("inf")
    while not stop.is_set():
        now = time.monotonic()
        if now >= end:
            break
        chunk, size = chunks[k % len(chunks)]
        sock.sendall(chunk)
        sent += size
        k += 1
        if rate is not None:
            ahead = sent / rate - (now - start)
            if ahead > 0:
                time.sleep(ahead)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    count.value = sent


def start_publisher(port: int, topics: list[str], payloads: list[bytes], *,
                    seconds: float | None = None, rate: float | None = None
                    ) -> tuple[mp.Process, Any, Any, Any]:
    """A separate process publishing (see :func:`_publisher`); set ``ready`` to start it,
    ``stop`` to end it; ``count`` says how many it sent once it ended."""
    ctx = mp.get_context("spawn")
    ready, stop, count = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
    proc = ctx.Process(target=_publisher, args=(port, topics, payloads, seconds, rate, ready,
                                                stop, count), daemon=True)
    proc.start()
    return proc, ready, stop, count
