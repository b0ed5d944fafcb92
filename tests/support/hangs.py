"""What a hung test was waiting for.

pytest-timeout prints the threads' stacks when a test runs out of time, but an asyncio test
that hangs has its main thread idle in ``select()``: the stack that matters is that of the
coroutine that never resumes. This watchdog, well before pytest-timeout fires, asks every
running event loop (from inside the loop, so nothing is read while it changes) to print each
of its tasks with the chain of awaits it is suspended in.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: seconds a test may run before its tasks are printed (no test here takes a tenth of it)
DUMP_AFTER = float(os.environ.get("TTCS_HANG_DUMP", "240"))


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    """The loops some thread is running now, found on the threads' stacks (the hub freezes
    the collector's generations, so ``gc.get_objects`` would not see them)."""
    loops: list[asyncio.AbstractEventLoop] = []
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            candidate = frame.f_locals.get("self") if frame.f_code.co_name == "run_forever" \
                else None
            if isinstance(candidate, asyncio.AbstractEventLoop) and candidate not in loops:
                loops.append(candidate)
            frame = frame.f_back
    return loops


def _await_chain(coro: object) -> Iterator[FrameType]:
    """The frames of a suspended coroutine and of each one it awaits, outermost first."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def describe_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """Each task of ``loop`` with the coroutines it waits in, innermost last; run in the loop."""
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    out.write(f"--- {len(tasks)} asyncio tasks ---\n")
    for task in tasks:
        out.write(f"* {task.get_name()}: {task.get_coro()!r}\n")
        for frame in _await_chain(task.get_coro()):
            code = frame.f_code
            out.write(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
        waiter = getattr(task, "_fut_waiter", None)
        if waiter is not None and not isinstance(waiter, asyncio.Task):
            out.write(f"    waiting on {waiter!r}\n")
    return out.getvalue()


def _dump(test: str) -> None:
    loops = _running_loops()
    if not loops:
        sys.stderr.write(f"\n[hang watchdog] {test}: no event loop is running\n")
    for loop in loops:
        def write(loop: asyncio.AbstractEventLoop = loop) -> None:
            sys.stderr.write(f"\n[hang watchdog] {test} still running after {DUMP_AFTER:.0f} s\n"
                             + describe_tasks(loop))
            sys.stderr.flush()
        loop.call_soon_threadsafe(write)


@contextmanager
def watchdog(test: str, after: float = DUMP_AFTER) -> Iterator[None]:
    timer = threading.Timer(after, _dump, args=(test,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
