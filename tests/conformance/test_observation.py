"""What the kit observes beside the cases: secrets in log lines, and a blocked event loop."""

from __future__ import annotations

import asyncio
import json
import time

import structlog

from ttcs.conformance.logcapture import REDACTED, LogCapture, leaks, redact
from ttcs.conformance.looplag import LoopWatch


def test_a_secret_is_found_as_written_and_as_the_json_renderer_escapes_it() -> None:
    secret = "mật-khẩu-Huế-2025"
    lines = ["plain line", f"token was {secret}", json.dumps({"note": f"pw {secret}"}),
             "abc appears everywhere"]
    assert [n for n, _ in leaks(lines, [secret, "abc"])] == [2, 3]
    assert secret not in redact(lines[2], [secret])
    assert REDACTED in redact(lines[1], [secret])


def test_the_capture_holds_every_structlog_line_and_restores_the_configuration() -> None:
    before = structlog.get_config()["processors"]
    with LogCapture() as logs:
        structlog.get_logger("vendor").debug("vendor.detail", note="x")
        mark = logs.mark()
        structlog.get_logger("vendor").info("vendor.after", password="hidden-by-the-mask")
    assert any('"vendor.detail"' in line for line in logs.lines)
    [after] = logs.since(mark)
    assert "hidden-by-the-mask" not in after  # the hub's mask ran on the captured line
    assert structlog.get_config()["processors"] == before


async def test_a_blocked_loop_is_caught_with_the_line_that_blocked() -> None:
    watch = LoopWatch(threshold=0.3)
    await watch.start()
    watch.label = "TC-TEST"
    await asyncio.sleep(0.05)
    time.sleep(0.6)  # noqa: ASYNC251 - the defect under test: blocks the event loop
    await asyncio.sleep(0.1)
    with watch.paused():
        time.sleep(0.6)  # noqa: ASYNC251 - not counted
    await asyncio.sleep(0.1)
    await watch.stop()
    [stall] = watch.stalls
    assert stall.during == "TC-TEST"
    assert any("test_observation.py" in frame for frame in stall.where)
    assert watch.figures()["max"] >= 0.3
