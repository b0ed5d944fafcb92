"""Certify several plugins at once, each in a process of its own.

A certification spends most of its time waiting for devices — timeouts, polls, the outages it
causes on purpose — so several run side by side in about the time of the longest. Each runs
in its own process, with its own event loop, log capture and loop watch, exactly as if
``ttcs certify`` had been run once per plugin: one plugin's stall or log line is never
another's, and the two cores of a small machine are both used.

The processes are forked (Linux, macOS): a request is inherited as it is — plugin managers
with fixture plugins loaded by path, a person object — not pickled. The report comes back as
the JSON the kit writes. Call :func:`certify_many` from synchronous code, or
:func:`acertify_many` from a running event loop (it forks from a worker thread, which has no
loop of its own, so that the children can start theirs).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from .report import Report
from .runner import CertificationError, RunRequest, certify

#: a run that has not reported after this long is stopped (the kit bounds every case, so
#: this only catches a kit that hangs outside its cases)
RUN_LIMIT = 900.0

#: runs at a time per CPU (see default_workers)
RUNS_PER_CPU = 3

Outcome = Report | CertificationError


def _certify_in_child(request: RunRequest, out: Connection) -> None:
    try:
        report = asyncio.run(certify(request))
        out.send(("report", report.model_dump_json()))
    except CertificationError as exc:
        out.send(("refused", str(exc)))
    except BaseException as exc:  # the parent must hear of it, whatever it was
        out.send(("crashed", "".join(traceback.format_exception(exc, limit=12))))
    finally:
        out.close()


def default_workers() -> int:
    """Runs at a time: three per CPU. A run waits most of the time (it uses about a third of
    a core); more at once only makes each wait for a CPU, and its timings are the device's."""
    return RUNS_PER_CPU * (os.cpu_count() or 1)


def certify_many(requests: Sequence[RunRequest], *, workers: int | None = None,
                 limit: float = RUN_LIMIT) -> list[Outcome]:
    """Certify every request, at most ``workers`` at a time (default
    :func:`default_workers`), each in a forked process; the reports (or why a run failed) in
    the order of ``requests``. Start the longest runs first: they set the total."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("certify_many forks: call it outside a running event loop, or "
                           "await acertify_many")
    if "fork" not in multiprocessing.get_all_start_methods():
        return [_certify_here(r) for r in requests]  # no fork (Windows): one after another
    context = multiprocessing.get_context("fork")
    outcomes: dict[int, Outcome] = {}
    waiting = list(enumerate(requests))
    running: dict[Connection, tuple[int, BaseProcess, float]] = {}
    workers = workers or default_workers()
    while waiting or running:
        while waiting and len(running) < workers:
            index, request = waiting.pop(0)
            receive, send = context.Pipe(duplex=False)
            child: BaseProcess = context.Process(target=_certify_in_child,
                                                 args=(request, send),
                                                 name=f"certify:{request.plugin}", daemon=True)
            child.start()
            send.close()  # the child holds the only writing end: EOF if it dies
            running[receive] = (index, child, time.monotonic())
        for ready in wait(list(running), timeout=1.0):
            assert isinstance(ready, Connection)
            index, done, _ = running.pop(ready)
            outcomes[index] = _received(ready, requests[index].plugin)
            ready.close()
            done.join(10)
        for receive, (index, late, began) in list(running.items()):
            if time.monotonic() - began > limit:
                late.kill()
                late.join(5)
                del running[receive]
                receive.close()
                outcomes[index] = CertificationError(
                    f"certifying {requests[index].plugin} did not end within {limit:g} s")
    return [outcomes[i] for i in range(len(requests))]


async def acertify_many(requests: Sequence[RunRequest], *, workers: int | None = None,
                        limit: float = RUN_LIMIT) -> list[Outcome]:
    """:func:`certify_many` for a caller in an event loop."""
    return await asyncio.to_thread(certify_many, requests, workers=workers, limit=limit)


def _received(connection: Connection, plugin: str) -> Outcome:
    try:
        kind, text = connection.recv()
    except (EOFError, OSError):
        return CertificationError(f"certifying {plugin}: the run's process ended without a "
                                  "report")
    if kind == "report":
        return Report.model_validate_json(text)
    if kind == "refused":
        return CertificationError(text)
    return CertificationError(f"certifying {plugin} crashed:\n{text}")


def _certify_here(request: RunRequest) -> Outcome:
    try:
        return asyncio.run(certify(request))
    except CertificationError as exc:
        return exc


__all__ = ["RUNS_PER_CPU", "RUN_LIMIT", "acertify_many", "certify_many", "default_workers"]
