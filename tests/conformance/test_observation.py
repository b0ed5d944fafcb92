"""What the kit observes beside the cases: secrets in log lines, and a blocked event loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import structlog

from tests.support.wait import eventually
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


async def test_a_stall_in_the_simulators_code_is_recorded_but_not_counted() -> None:
    watch = LoopWatch(threshold=0.3)
    watch.excused_code = (__file__,)  # here, this file plays the simulator
    await watch.start()
    await asyncio.sleep(0.05)
    time.sleep(0.6)  # noqa: ASYNC251 - the "simulator" blocks the loop
    await asyncio.sleep(0.1)
    await watch.stop()
    [stall] = watch.stalls
    assert stall.excused == "simulator"
    assert watch.counted_stalls == []
    assert watch.worst_counted < 0.3 <= watch.figures()["max"]


async def test_a_process_the_machine_does_not_run_is_not_a_blocked_loop() -> None:
    for _ in range(3):  # (a loaded machine may hold the stopper itself: then try again)
        watch = LoopWatch(threshold=0.3)
        await watch.start()
        await asyncio.sleep(0.05)
        # the whole process is stopped, as an overloaded host would, and let go 0.6 s later
        stopper = await asyncio.create_subprocess_exec(
            "sh", "-c",
            f"sleep 0.05; kill -STOP {os.getpid()}; sleep 0.6; kill -CONT {os.getpid()}")
        await stopper.wait()
        await asyncio.sleep(0.1)
        await watch.stop()
        if watch.stalls:
            break
    assert watch.stalls and {s.excused for s in watch.stalls} == {"host"}
    assert watch.counted_stalls == []
    assert watch.figures()["max"] >= 0.3


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists(), reason="Linux schedstat")
async def test_time_the_loop_waited_for_a_busy_cpu_is_not_counted_as_blocked() -> None:
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})  # this thread (the loop's) shares one CPU with three hogs
    hog = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", hog])  # noqa: ASYNC220 - started once
            for _ in range(3)]
    try:
        await eventually(lambda: all(_cpu_seconds(h.pid) > 0.05 for h in hogs))
        watch = LoopWatch(threshold=0.3)
        await watch.start()
        await asyncio.sleep(0.05)
        spin_until = time.thread_time() + 0.15  # 0.15 s of work: about 0.6 s on a shared CPU
        while time.thread_time() < spin_until:
            pass
        await asyncio.sleep(0.1)
        await watch.stop()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        os.sched_setaffinity(0, before)
    assert watch.queued > 0.2  # the loop's thread waited for the CPU that long
    assert watch.counted_stalls == []
    assert watch.worst_counted < 0.3
