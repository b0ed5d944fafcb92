"""Ports and waiting for sockets."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
from pathlib import Path

#: ports handed out by this process (never handed out twice)
_given: set[int] = set()


def _ephemeral_start() -> int:
    """Where the kernel's range for outgoing connections starts (Linux: 32768)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def _range() -> tuple[int, int]:
    """This process's share of the ports below the ephemeral range, one share per pytest-xdist
    worker, so parallel test processes do not pick the same port."""
    low, high = 10_000, _ephemeral_start() - 1
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % count if worker.isdigit() else 0
    share = (high - low) // max(count, 1)
    return low + index * share, low + (index + 1) * share - 1


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):  # servers here speak TCP and UDP
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A port nothing listens on, for a test server to bind.

    Not one the kernel would pick for an outgoing connection (asking it for port 0 gives
    exactly such a port, which a client socket may take before the server binds it under
    load), and never the same one twice in a process.
    """
    low, high = _range()
    for _ in range(500):
        port = random.randint(low, high)
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    with socket.socket() as s:  # the share is exhausted: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")
