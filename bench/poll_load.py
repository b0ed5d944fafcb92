"""A load generator that runs many simulated VangTech speakers (polled over HTTP) in one
process of its own, so its work is not the hub's.

Every speaker is the real simulator (:class:`~ttcs.simulators.vang_speaker.VangSpeaker`: signed
requests checked, its own aiohttp server on its own port, faults acting on that port), so a
poll costs the hub what a field device would: a TCP connection to a distinct address, an
HMAC-signed request, a JSON answer. All of them share one event loop; what the simulator leaves
out is nothing the hub sees.

Each speaker records when it answered ``GET /status`` (``time.monotonic()``, the same clock in
every process on Linux), so the parent can compute the intervals the devices really saw.

Control is a pipe: ``("inject", (serials, fault))`` / ``("clear", (serials, fault))`` start and
end a fault on those speakers, ``("polls", since)`` returns every speaker's poll times since
``since``, ``("stop", None)`` ends the process.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path in the child process)

from ttcs.simulators.base import Fault
from ttcs.simulators.vang_speaker import VangSpeaker

SECRET = "bench-secret"  # a simulator's


async def _serve(serials: list[str], control: Any) -> None:
    speakers = {s: VangSpeaker(s, secret=SECRET, firmware="2.7.1") for s in serials}
    for start in range(0, len(serials), 200):
        await asyncio.gather(*(speakers[s].start() for s in serials[start:start + 200]))
    loop = asyncio.get_running_loop()
    control.send(("ready", {s: d.url for s, d in speakers.items()}))
    while True:
        what, arg = await loop.run_in_executor(None, control.recv)
        if what == "inject":
            names, fault = arg
            for s in names:
                await speakers[s].inject(Fault(fault))
            control.send("ok")
        elif what == "clear":
            names, fault = arg
            for s in names:
                await speakers[s].clear(Fault(fault))
            control.send("ok")
        elif what == "polls":
            control.send({s: [t for t in d.polls if t >= arg] for s, d in speakers.items()})
        elif what == "stop":
            break
    await asyncio.gather(*(d.stop() for d in speakers.values()), return_exceptions=True)


def _run(serials: list[str], control: Any) -> None:
    asyncio.run(_serve(serials, control))


class VangLoad:
    """The speaker process, seen from the parent: ``urls`` maps serial to base URL."""

    def __init__(self, serials: list[str]) -> None:
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_run, args=(serials, child), daemon=True)
        self.proc.start()
        what, urls = self._pipe.recv()
        if what != "ready" or len(urls) != len(serials):
            raise RuntimeError(f"the speaker load did not start: {what}")
        self.urls: dict[str, str] = urls

    def _ask(self, what: str, arg: Any) -> Any:
        self._pipe.send((what, arg))
        return self._pipe.recv()

    def inject(self, serials: list[str], fault: Fault) -> None:
        self._ask("inject", (serials, fault.value))

    def clear(self, serials: list[str], fault: Fault) -> None:
        self._ask("clear", (serials, fault.value))

    def polls(self, since: float) -> dict[str, list[float]]:
        return self._ask("polls", since)  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc.is_alive():
            self._pipe.send(("stop", None))
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
