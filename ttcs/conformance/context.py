"""What a case implementation works with: the hub, the devices under test, and its checks.

A check records a verdict and goes on (:meth:`CaseContext.check`), or stops the case when the
rest would mean nothing (:meth:`CaseContext.require`). What only the device knows is asked of
the ground truth or, at a real device, of the person beside it (:meth:`CaseContext.observe`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..aio import wait_for
from ..core.errors import DeviceError, TTCSError
from ..core.plugins import LoadedPlugin
from ..schemas import Command, CommandResult, Connectivity, Device
from ..simulators.base import Fault
from .cases import Case
from .declaration import Declaration
from .environment import Environment
from .outcome import CaseAborted, CheckResult, NotRun, Status
from .targets import DeviceUnderTest, Target

T = TypeVar("T")

Truth = dict[str, Any]


class CaseContext:
    """Handed to every case implementation."""

    def __init__(self, case: Case, env: Environment, target: Target, plugin: LoadedPlugin,
                 declaration: Declaration) -> None:
        self.case = case
        self.env = env
        self.target = target
        self.plugin = plugin
        self.declaration = declaration
        self.checks: list[CheckResult] = []
        self.notes: list[str] = []
        self.started = datetime.now(UTC)
        self.injected: list[tuple[DeviceUnderTest, Fault]] = []
        #: broadcasts the case scheduled through the hub (cancelled when it ends)
        self.broadcasts: list[str] = []
        #: every log line of the run so far (whole-run cases judge them)
        self.run_log_lines: list[str] = []

    # -- verdicts -----------------------------------------------------------------------------

    def check(self, what: str, ok: bool, detail: str | None = None) -> bool:
        self.checks.append(CheckResult(check=what, status=Status.PASSED if ok else Status.FAILED,
                                       detail=detail))
        return ok

    def require(self, what: str, ok: bool, detail: str | None = None) -> None:
        if not self.check(what, ok, detail):
            raise CaseAborted(what)

    def note(self, text: str) -> None:
        self.notes.append(text)

    # -- devices ------------------------------------------------------------------------------

    async def dut(self, role: str = "primary") -> DeviceUnderTest:
        return await self.target.device(role)

    async def device(self, role: str = "primary") -> Device:
        """The registered device for ``role``; the primary is registered by TC-CORE-003, other
        roles on first use (and wait until online)."""
        device = self.env.devices.get(role)
        if device is not None:
            return device
        if role == "primary":
            raise NotRun("the device is not registered (TC-CORE-003 did not pass)")
        dut = await self.dut(role)
        device = await self.env.register(role, dut.registration())
        if not await self.online(device):
            raise NotRun(f"the {role} device did not come online")
        return device

    async def online(self, device: Device, timeout: float | None = None) -> bool:
        return await self.wait(lambda: self.env.connectivity(device) is Connectivity.ONLINE,
                               timeout or self.env.patience(device))

    async def inject(self, dut: DeviceUnderTest, fault: Fault, **params: Any) -> None:
        await dut.inject(fault, **params)
        self.injected.append((dut, fault))

    async def clear(self, dut: DeviceUnderTest, fault: Fault) -> None:
        await dut.clear(fault)
        self.injected = [(d, f) for d, f in self.injected if not (d is dut and f is fault)]

    async def clear_all(self) -> None:
        """End every fault this case injected (also when it failed half-way)."""
        for dut, fault in reversed(self.injected):
            try:
                await dut.clear(fault)
            except Exception as exc:  # a simulator problem must not hide the case's result
                self.note(f"clearing {fault.value} failed: {exc!r}")
        self.injected.clear()

    async def cancel_broadcasts(self) -> None:
        """Cancel what the case scheduled, so that no later case (and no planner round) has
        to carry it."""
        from .environment import ACTOR

        hub = self.env.hub
        for broadcast_id in self.broadcasts:
            if hub.broadcasts is not None:
                with contextlib.suppress(TTCSError):  # done or cancelled already
                    await hub.broadcasts.cancel(broadcast_id, ACTOR)
        self.broadcasts.clear()

    # -- waiting and observing ----------------------------------------------------------------

    @staticmethod
    async def wait(predicate: Callable[[], Any], timeout: float, interval: float = 0.02
                   ) -> bool:
        """Wait until ``predicate()`` is truthy (at most ``timeout`` s); whether it became so."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(interval)

    async def observe(self, what: str, dut: DeviceUnderTest, seen: Callable[[Truth], Any],
                      question: str, timeout: float = 5.0,
                      explain: Callable[[Truth], str] | None = None) -> bool | None:
        """Check something only the device knows: in its ground truth (waiting up to
        ``timeout`` for ``seen(truth)``), else by asking the person at the device."""
        first = dut.truth()
        if first is not None:
            ok = await self.wait(lambda: bool(seen(dut.truth() or {})), timeout)
            detail = None if ok else (explain(dut.truth() or {}) if explain else
                                      "the device's ground truth does not show it")
            self.check(what, ok, detail)
            return ok
        answer = await dut.confirm(question)
        if answer is None:
            self.checks.append(CheckResult(check=what, status=Status.UNVERIFIED,
                                           detail=f"needs a person: {question}"))
            return None
        self.checks.append(CheckResult(check=what, status=Status.PASSED if answer
                                       else Status.FAILED, by="person",
                                       detail=f"asked: {question}"))
        return answer

    def since(self, entries: list[Any], key: str = "at") -> list[Any]:
        """Ground-truth entries (dicts, or [time, …] lists) from after the case started."""
        kept = []
        for entry in entries:
            at = entry.get(key) if isinstance(entry, dict) else entry[0]
            if isinstance(at, str) and datetime.fromisoformat(at) >= self.started:
                kept.append(entry)
        return kept

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, device: Device, command: Command) -> CommandResult | DeviceError:
        """Run a command through the hub; a device error is returned, not raised. Anything
        else escaping the plugin is a failure of the case (it propagates)."""
        limit = self.env.patience(device) + 10
        try:
            return await wait_for(self.env.hub.execute(device.id, command), limit)
        except DeviceError as exc:
            return exc
        except TimeoutError:
            return self._hung(command, limit)

    def _hung(self, command: Command, limit: float) -> DeviceError:
        self.check(f"the hub gets an answer to '{command.type}'", False,
                   f"no result and no error after {limit:.0f} s")
        raise CaseAborted("command hung")

    async def bounded(self, what: str, awaitable: Awaitable[T], limit: float) -> T:
        """Await something of the plugin that must not hang; a hang aborts the case."""
        try:
            return await wait_for(awaitable, limit)
        except TimeoutError:
            self.check(what, False, f"did not return within {limit:.1f} s")
            raise CaseAborted(what) from None


def describe(outcome: CommandResult | Exception) -> str:
    if isinstance(outcome, CommandResult):
        detail = f": {outcome.detail}" if outcome.detail else ""
        return f"{outcome.status.value} ({outcome.code}{detail})"
    return f"{type(outcome).__name__}: {outcome}"


def ok(outcome: CommandResult | DeviceError) -> bool:
    return isinstance(outcome, CommandResult) and outcome.ok


__all__ = ["CaseContext", "Truth", "describe", "ok"]
