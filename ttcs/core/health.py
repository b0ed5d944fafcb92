"""Health and alarms: conditions watched per device, each raised once and cleared once.

The :class:`HealthMonitor` listens to the bus — connectivity changes, status reports, command
results, how plays ended, alarms that devices raise themselves — and keeps, per device and
condition, whether an alarm is active. A condition changes state only when

- the reading crosses the threshold to raise, and falls below *threshold minus margin* to
  clear (hysteresis: a VSWR hovering around 2.0 raises once, not on every poll), and
- the new verdict has lasted ``debounce`` seconds (a mains blip of a second is not a power
  cut). Time-based conditions (offline too long, debounce) are settled by a periodic check,
  so an alarm is raised even when the device has gone quiet.

Each change is published as an :class:`~ttcs.schemas.AlarmEvent` (``raised`` true/false)
and written to the ``alarms`` table: one row per alarm, from raise to clear, so the table is
both the list of active alarms and their history. Active alarms are loaded again at start, so
a hub restart neither forgets nor re-raises them.

Conditions the hub detects (``source = "hub"``):

==================  =====================================================================
code                raised when / cleared when
==================  =====================================================================
offline_too_long    offline longer than ``offline_after`` / back online
on_battery          ``power_source`` is battery / mains or solar again
high_vswr           telemetry ``vswr`` > ``vswr_max`` / < ``vswr_max - vswr_margin``
high_temperature    temperature or PA temperature > max / < max - margin
command_failures    ``command_failures`` failures in a row within the window — failed or
                    rejected results, errors the dispatcher reports, plays that fail — /
                    the next command done or item played
==================  =====================================================================

Alarms a device raises itself (``source = "device"``) are recorded as they come, once per
code while active.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal

import structlog
from pydantic import computed_field
from sqlalchemy import insert, select, update

from ..aio import cancel_and_wait, wait_for
from ..schemas import (
    AlarmEvent,
    AlarmSeverity,
    CommandResultEvent,
    CommandStatus,
    Connectivity,
    ConnectivityEvent,
    DeviceStatus,
    DeviceStatusEvent,
    Event,
    Model,
    PlayEvent,
    PlayPhase,
    PowerSource,
    new_id,
)
from ..schemas.base import AwareDatetime
from .areascope import covered_areas
from .config import AlarmSettings
from .events import EventBus
from .store import Store
from .store.retry import is_transient
from .store.tables import AlarmRow

log = structlog.get_logger("ttcs.health")

OFFLINE_TOO_LONG = "offline_too_long"
ON_BATTERY = "on_battery"
HIGH_VSWR = "high_vswr"
HIGH_TEMPERATURE = "high_temperature"
COMMAND_FAILURES = "command_failures"

SEVERITY = {OFFLINE_TOO_LONG: AlarmSeverity.MAJOR, ON_BATTERY: AlarmSeverity.WARNING,
            HIGH_VSWR: AlarmSeverity.CRITICAL,  # reflected power can destroy the PA
            HIGH_TEMPERATURE: AlarmSeverity.MAJOR, COMMAND_FAILURES: AlarmSeverity.MAJOR}

Source = Literal["hub", "device"]
Key = tuple[str, str, Source]  # device id, alarm code, source


class Verdict(Enum):
    """What the latest reading says about a condition."""

    RAISE = "raise"  # beyond the threshold
    CLEAR = "clear"  # back on the safe side of threshold minus margin
    HOLD = "hold"  # in the hysteresis band, or no reading: no change either way


@dataclass
class Condition:
    """One (device, code, source): active or not, and a verdict waiting out its debounce."""

    device_id: str
    code: str
    source: Source
    severity: AlarmSeverity
    area_code: str | None = None
    active: bool = False
    alarm_id: str | None = None
    verdict: Verdict = Verdict.HOLD
    since: float | None = None  # when the pending (state-changing) verdict was first seen
    hold: float = 0.0  # seconds it must last before the state changes
    detail: str | None = None
    value: float | None = None


class Alarm(Model):
    """An alarm as stored: active while ``cleared_at`` is empty."""

    id: str
    device_id: str
    area_code: str | None = None
    code: str
    source: Source
    severity: AlarmSeverity
    detail: str | None = None
    value: float | None = None
    raised_at: AwareDatetime
    cleared_at: AwareDatetime | None = None
    clear_detail: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def active(self) -> bool:
        return self.cleared_at is None


@dataclass
class _Raise:
    condition: Condition
    at: datetime
    event_id: str


@dataclass
class _Clear:
    alarm_id: str
    at: datetime
    event_id: str
    detail: str | None


class HealthMonitor:
    """Watches the bus for alarm conditions; publishes and stores raise/clear, once each."""

    def __init__(self, store: Store, bus: EventBus, settings: AlarmSettings | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._bus = bus
        self.settings = settings or AlarmSettings()
        self._clock = clock
        self._conditions: dict[Key, Condition] = {}
        self._failures: dict[str, deque[float]] = {}
        self._writes: asyncio.Queue[_Raise | _Clear] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._emitting = False
        self.raised = 0
        self.cleared = 0
        self.failed_writes = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Take over the alarms still active in the store, then start watching."""
        async with self._store.sessions() as s:
            rows = (await s.execute(select(AlarmRow).where(AlarmRow.cleared_at.is_(None))))
            for row in rows.scalars():
                source: Source = "device" if row.source == "device" else "hub"
                self._conditions[(row.device_id, row.code, source)] = Condition(
                    row.device_id, row.code, source, AlarmSeverity(row.severity),
                    row.area_code, active=True, alarm_id=row.id, detail=row.detail,
                    value=row.value)
        self._unsubscribe = self._bus.subscribe(self._on_event)
        self._tasks = [asyncio.create_task(self._check_loop(), name="health-check"),
                       asyncio.create_task(self._write_loop(), name="alarm-writer")]

    async def stop(self) -> None:
        """Stop watching; active alarms stay active (in the store) for the next start."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with contextlib.suppress(TimeoutError):
            await self.drain(10.0)
        await cancel_and_wait(self._tasks, "alarms")
        self._tasks = []

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every raise and clear so far is in the store."""
        await wait_for(self._writes.join(), timeout)

    def active(self) -> list[Condition]:
        """Conditions whose alarm is active now."""
        return [c for c in self._conditions.values() if c.active]

    def active_counts(self) -> Counter[tuple[str, str]]:
        """Active alarms by (code, severity), for metrics."""
        return Counter((c.code, c.severity.value) for c in self._conditions.values()
                       if c.active)

    # -- inputs -------------------------------------------------------------------------------

    def command_failed(self, device_id: str, reason: str, *, area_code: str | None = None
                       ) -> None:
        """Count a failed command (the dispatcher calls this when a driver raises a
        ``DeviceError``; failed results published on the bus are counted already)."""
        now = self._clock()
        window = self.settings.command_failure_window
        times = self._failures.setdefault(device_id, deque())
        times.append(now)
        while times and now - times[0] > window:
            times.popleft()
        if len(times) >= self.settings.command_failures:
            self._assess(device_id, area_code, COMMAND_FAILURES, Verdict.RAISE, 0.0,
                         f"{len(times)} commands failed in a row within {window:g} s; "
                         f"last: {reason}", float(len(times)))

    def command_succeeded(self, device_id: str, *, area_code: str | None = None) -> None:
        """A command was done or an item played to its end: the failure streak ends (and
        its alarm clears). An ``accepted`` result is only a promise and counts for nothing."""
        self._failures.pop(device_id, None)
        self._assess(device_id, area_code, COMMAND_FAILURES, Verdict.CLEAR, 0.0,
                     "a command succeeded")

    def _on_event(self, event: Event) -> None:
        if isinstance(event, DeviceStatusEvent):
            self._on_status(event)
        elif isinstance(event, ConnectivityEvent):
            self._on_connectivity(event)
        elif isinstance(event, CommandResultEvent):
            self._on_result(event)
        elif isinstance(event, PlayEvent):
            self._on_play(event)
        elif isinstance(event, AlarmEvent) and not self._emitting:
            self._on_device_alarm(event)

    def _on_connectivity(self, event: ConnectivityEvent) -> None:
        if event.device_id is None:
            return
        if event.current is Connectivity.OFFLINE:
            if event.via_parent is not None:
                return  # one alarm for the station: its parent's; a pending wait stands
            verdict = Verdict.RAISE
        elif event.current is Connectivity.ONLINE:
            verdict = Verdict.CLEAR
        else:
            return  # degraded: not offline yet, not healthy either; keep the pending wait
        self._assess(event.device_id, event.area_code, OFFLINE_TOO_LONG, verdict,
                     self.settings.offline_after if verdict is Verdict.RAISE else 0.0,
                     f"offline since {event.at:%Y-%m-%d %H:%M:%S} UTC"
                     + (f" ({event.reason})" if event.reason else "")
                     if verdict is Verdict.RAISE else "back online")

    def _on_status(self, event: DeviceStatusEvent) -> None:
        if event.device_id is None:
            return
        status, cfg = event.status, self.settings
        device, area, hold = event.device_id, event.area_code, cfg.debounce
        if status.power_source is PowerSource.BATTERY:
            battery = f" (battery {status.battery}%)" if status.battery is not None else ""
            self._assess(device, area, ON_BATTERY, Verdict.RAISE, hold,
                         f"mains power lost, running on battery{battery}",
                         None if status.battery is None else float(status.battery))
        elif status.power_source in (PowerSource.MAINS, PowerSource.SOLAR):
            self._assess(device, area, ON_BATTERY, Verdict.CLEAR, hold,
                         f"power from {status.power_source.value}")
        vswr = _reading(status, ["vswr"])
        if vswr is not None:
            self._threshold(device, area, HIGH_VSWR, vswr, cfg.vswr_max, cfg.vswr_margin,
                            f"VSWR {vswr:g}")
        temperature = _reading(status, cfg.temperature_keys, include_status=True)
        if temperature is not None:
            self._threshold(device, area, HIGH_TEMPERATURE, temperature, cfg.temperature_max,
                            cfg.temperature_margin, f"temperature {temperature:g} °C")

    def _threshold(self, device_id: str, area_code: str | None, code: str, value: float,
                   limit: float, margin: float, what: str) -> None:
        if value > limit:
            verdict, detail = Verdict.RAISE, f"{what} above {limit:g}"
        elif value < limit - margin:
            verdict, detail = Verdict.CLEAR, f"{what} below {limit - margin:g}"
        else:
            verdict, detail = Verdict.HOLD, what
        self._assess(device_id, area_code, code, verdict, self.settings.debounce, detail,
                     value)

    def _on_result(self, event: CommandResultEvent) -> None:
        if event.device_id is None:
            return
        result = event.result
        if result.status is CommandStatus.ACCEPTED:
            return  # a promise, not a success: a play is judged by its play events
        if result.status is CommandStatus.DONE:
            self.command_succeeded(event.device_id, area_code=event.area_code)
        elif (result.status is CommandStatus.FAILED
              or result.code not in self.settings.ignored_rejections):
            reason = f"{result.status.value} ({result.code})" + (
                f": {result.detail}" if result.detail else "")
            self.command_failed(event.device_id, reason, area_code=event.area_code)

    def _on_play(self, event: PlayEvent) -> None:
        if event.device_id is None:
            return
        if event.phase is PlayPhase.FINISHED:
            self.command_succeeded(event.device_id, area_code=event.area_code)
        elif event.phase is PlayPhase.FAILED:
            self.command_failed(event.device_id, "play failed" + (
                f": {event.detail}" if event.detail else ""), area_code=event.area_code)

    def _on_device_alarm(self, event: AlarmEvent) -> None:
        if event.device_id is None:
            return
        key: Key = (event.device_id, event.code, "device")
        cond = self._conditions.get(key)
        if event.raised and (cond is None or not cond.active):
            cond = Condition(event.device_id, event.code, "device", event.severity,
                             event.area_code, active=True, alarm_id=new_id("alm"),
                             detail=event.detail)
            self._conditions[key] = cond
            self.raised += 1
            self._writes.put_nowait(_Raise(cond, event.at, event.id))
        elif not event.raised and cond is not None and cond.active:
            del self._conditions[key]
            self.cleared += 1
            assert cond.alarm_id is not None
            self._writes.put_nowait(_Clear(cond.alarm_id, event.at, event.id, event.detail))
        # else: a repeat of what is already known — one alarm per condition

    # -- the state machine --------------------------------------------------------------------

    def _assess(self, device_id: str, area_code: str | None, code: str, verdict: Verdict,
                hold: float, detail: str | None, value: float | None = None) -> None:
        key: Key = (device_id, code, "hub")
        cond = self._conditions.get(key)
        if cond is None:
            if verdict is not Verdict.RAISE:
                return  # nothing active, nothing pending: keep no state for healthy devices
            cond = self._conditions[key] = Condition(device_id, code, "hub", SEVERITY[code],
                                                     area_code)
        changes = ((verdict is Verdict.RAISE and not cond.active)
                   or (verdict is Verdict.CLEAR and cond.active))
        if not changes:  # confirms the current state, or in the band: nothing pending
            cond.verdict, cond.since = verdict, None
            if cond.active:
                cond.detail = detail if verdict is Verdict.RAISE else cond.detail
            else:
                del self._conditions[key]
            return
        if cond.verdict is not verdict or cond.since is None:
            cond.since = self._clock()
        cond.verdict, cond.hold, cond.area_code = verdict, hold, area_code or cond.area_code
        if verdict is Verdict.RAISE:
            cond.detail, cond.value = detail, value
        else:
            cond.detail = detail
        self._settle(key, cond, self._clock())

    def _settle(self, key: Key, cond: Condition, now: float) -> None:
        if cond.since is None or now - cond.since < cond.hold:
            return
        cond.since = None
        if cond.verdict is Verdict.RAISE:
            cond.active, cond.alarm_id = True, new_id("alm")
            event = self._emit(cond, raised=True)
            self.raised += 1
            self._writes.put_nowait(_Raise(cond, event.at, event.id))
        else:
            event = self._emit(cond, raised=False)
            del self._conditions[key]
            self.cleared += 1
            assert cond.alarm_id is not None
            self._writes.put_nowait(_Clear(cond.alarm_id, event.at, event.id, cond.detail))

    def _emit(self, cond: Condition, *, raised: bool) -> AlarmEvent:
        event = AlarmEvent(device_id=cond.device_id, area_code=cond.area_code, code=cond.code,
                           raised=raised, severity=cond.severity, detail=cond.detail)
        if raised:
            log.warning("alarm.raised", device=cond.device_id, code=cond.code,
                        detail=cond.detail)
        else:
            log.info("alarm.cleared", device=cond.device_id, code=cond.code)
        self._emitting = True  # our own event comes back to _on_event: not a device alarm
        try:
            self._bus.publish(event)
        finally:
            self._emitting = False
        return event

    def check(self) -> None:
        """Settle time-based conditions: raise or clear what has waited long enough (offline
        too long, debounced readings). Runs every ``check_interval`` seconds."""
        now = self._clock()
        for key, cond in list(self._conditions.items()):
            if cond.since is not None:
                self._settle(key, cond, now)

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_interval)
            self.check()

    # -- the store ----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            items = [await self._writes.get()]
            while not self._writes.empty():
                items.append(self._writes.get_nowait())
            try:
                await self._write(items)
            except Exception:  # a bug here must not stop recording alarms for good
                self.failed_writes += len(items)
                log.exception("alarms.writer_crashed", count=len(items))
            finally:
                for _ in items:
                    self._writes.task_done()

    async def _write(self, items: Sequence[_Raise | _Clear]) -> None:
        for attempt in range(3):  # ride out a database restart or a busy SQLite
            try:
                await self._apply(items)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    break  # something in the data: find the bad row, keep the others
                if attempt == 2:
                    self.failed_writes += len(items)
                    log.exception("alarms.write_failed", count=len(items))
                    return
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                return
        for item in items:
            try:
                await self._apply([item])
            except Exception:
                self.failed_writes += 1
                log.exception("alarms.write_refused")

    async def _apply(self, items: Sequence[_Raise | _Clear]) -> None:
        async with self._store.sessions.begin() as s:
            for item in items:  # in order: a clear may follow its raise in one batch
                if isinstance(item, _Raise):
                    c = item.condition
                    await s.execute(insert(AlarmRow).values(
                        id=c.alarm_id, device_id=c.device_id, area_code=c.area_code,
                        code=c.code, source=c.source, severity=c.severity.value,
                        detail=c.detail, value=c.value, raised_at=item.at,
                        raise_event_id=item.event_id))
                else:
                    await s.execute(update(AlarmRow).where(AlarmRow.id == item.alarm_id).values(
                        cleared_at=item.at, clear_event_id=item.event_id,
                        clear_detail=item.detail))


def _reading(status: DeviceStatus, keys: Sequence[str], *, include_status: bool = False
             ) -> float | None:
    """The highest numeric reading among ``keys`` of the telemetry (and the status's own
    temperature), or None when there is none."""
    values = [float(v) for k in keys if isinstance(v := status.telemetry.get(k), int | float)
              and not isinstance(v, bool)]
    if include_status and status.temperature is not None:
        values.append(status.temperature)
    return max(values) if values else None


# -- queries -------------------------------------------------------------------------------------


class AlarmLog:
    """Stored alarms, active and past. Needs only the store, not a running hub."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(self, *, active: bool = False, area: str | None = None,
                   device_id: str | None = None, code: str | None = None,
                   limit: int | None = 200, offset: int = 0) -> list[Alarm]:
        """Newest first; ``active`` for only those not cleared; ``area`` covers its subtree."""
        query = select(AlarmRow).order_by(AlarmRow.raised_at.desc(), AlarmRow.id)
        if active:
            query = query.where(AlarmRow.cleared_at.is_(None))
        if area is not None:
            query = query.where(AlarmRow.area_code.in_(covered_areas(area)))
        if device_id is not None:
            query = query.where(AlarmRow.device_id == device_id)
        if code is not None:
            query = query.where(AlarmRow.code == code)
        if limit is not None:
            query = query.limit(limit)
        query = query.offset(offset)
        async with self._store.sessions() as s:
            rows = (await s.execute(query)).scalars()
            return [Alarm(id=r.id, device_id=r.device_id, area_code=r.area_code, code=r.code,
                          source="device" if r.source == "device" else "hub",
                          severity=AlarmSeverity(r.severity), detail=r.detail, value=r.value,
                          raised_at=r.raised_at, cleared_at=r.cleared_at,
                          clear_detail=r.clear_detail) for r in rows]


__all__ = ["COMMAND_FAILURES", "HIGH_TEMPERATURE", "HIGH_VSWR", "OFFLINE_TOO_LONG",
           "ON_BATTERY", "Alarm", "AlarmLog", "Condition", "HealthMonitor", "Verdict"]
