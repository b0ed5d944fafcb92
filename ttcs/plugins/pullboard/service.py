"""The hub side of the pull-board protocol: one :class:`PullBoardService` per device endpoint.

The service adds the poll route to the shared device endpoint and keeps a
:class:`BoardSession` per board serial: the board's last heartbeat, the commands waiting for
it, the playlist the hub wants it to show, and its connectivity. Drivers attach to the session
of their board (a probing driver and the supervised one share it). One watchdog task for all
boards turns missed heartbeats into *degraded* and then *offline* — no sleep per device.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from aiohttp import web
from pydantic import SecretStr, ValidationError

from ...adapters.device_endpoint import DeviceEndpoint, Route, json_error
from ...aio import cancel_and_wait, wait_for
from ...schemas import (
    Activity,
    CommandResult,
    Connectivity,
    DeviceStatus,
    PowerSource,
    utcnow,
)
from ..display_common import remembered
from .protocol import (
    PATH,
    BoardCommand,
    Heartbeat,
    ItemRejection,
    Playlist,
    PollReply,
    PowerScheduleWire,
    WireItem,
)

log = structlog.get_logger("ttcs.pullboard")

RESULTS_KEPT = 200
VERSIONS_KEPT = 200


class SessionListener(Protocol):
    """A driver attached to a board's session."""

    def on_board_status(self, status: DeviceStatus) -> None: ...


@dataclass
class Pending:
    """A command waiting for the board's result."""

    command: BoardCommand
    future: asyncio.Future[CommandResult]
    deadline: float | None  # monotonic; None: dropped when its caller stops waiting
    deliveries: int = 0


def playlist_version(items: list[WireItem]) -> str:
    """Content-derived version: the same items always give the same version."""
    canonical = json.dumps([i.model_dump(mode="json") for i in items], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class BoardSession:
    """Everything the hub knows and wants for one pull board."""

    serial: str
    poll_interval: float
    offline_after: int
    power_schedule: PowerScheduleWire | None = None
    listeners: list[SessionListener] = field(default_factory=list)
    #: the token each attached driver was configured with; any of them is accepted, so a
    #: probe with a mistyped token cannot lock out a board the hub already drives
    tokens: dict[int, SecretStr] = field(default_factory=dict)
    heartbeat: Heartbeat | None = None
    last_seen: float | None = None  # monotonic
    connectivity: Connectivity = Connectivity.UNKNOWN
    pending: OrderedDict[str, Pending] = field(default_factory=OrderedDict)
    results: OrderedDict[str, CommandResult] = field(default_factory=OrderedDict)
    desired: Playlist | None = None  # None: not known yet (ask the board)
    generations: dict[str, int] = field(default_factory=dict)
    generation: int = 0
    auth_failures: int = 0
    auth_failing: bool = False
    bad_requests: int = 0
    polls: int = 0
    late_results: int = 0
    redeliveries: int = 0
    playlist_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _last_report: DeviceStatus | None = None

    # -- connectivity -------------------------------------------------------------------------

    def age(self, now: float | None = None) -> float | None:
        if self.last_seen is None:
            return None
        return (now if now is not None else time.monotonic()) - self.last_seen

    def freshness(self, now: float | None = None) -> Connectivity:
        """Online while heartbeats come; degraded after one is missed; offline after
        ``offline_after`` are missed, or at once after a clean goodbye.

        A refused token does not count: anyone can send one, and it must not make a board
        that keeps polling with the right token look offline. A board whose own token is
        wrong stops producing good heartbeats and goes offline like a silent one.
        """
        age = self.age(now)
        if age is None:
            return Connectivity.OFFLINE if self.auth_failing else Connectivity.UNKNOWN
        if self.heartbeat is not None and self.heartbeat.bye:
            return Connectivity.OFFLINE
        if age > self.poll_interval * self.offline_after:
            return Connectivity.OFFLINE
        if age > self.poll_interval * 1.5 + min(0.5, self.poll_interval):
            return Connectivity.DEGRADED
        return Connectivity.ONLINE

    @property
    def online(self) -> bool:
        return self.freshness() in (Connectivity.ONLINE, Connectivity.DEGRADED)

    # -- status -------------------------------------------------------------------------------

    def status(self) -> DeviceStatus:
        hb = self.heartbeat
        connectivity = self.freshness()
        faults = ["auth_failed"] if self.auth_failing else []
        if hb is None:
            return DeviceStatus(connectivity=connectivity, faults=faults)
        screen = hb.screen
        if not screen.lit:
            activity = Activity.OFF
        elif screen.item_id:
            activity = Activity.DISPLAYING
        else:
            activity = Activity.IDLE
        if hb.power_source == "battery":
            faults.append("on_battery")
        if hb.rejected:
            faults.append("items_rejected")
        telemetry: dict[str, float | int | str | bool] = {
            "uptime_s": round(hb.uptime), "storage_total_mb": round(hb.storage_total / 1048576, 1),
            "storage_free_mb": round(hb.storage_free / 1048576, 1),
            "playlist_version": hb.playlist_version or "", "lit": screen.lit,
            "poll_interval_s": self.poll_interval, "boot_id": hb.boot_id,
            "power_schedule": (f"{hb.power_schedule.on}-{hb.power_schedule.off}"
                               if hb.power_schedule else "none"),
        }
        if screen.dark_reason:
            telemetry["dark_reason"] = screen.dark_reason
        if screen.text:
            telemetry["current_text"] = screen.text[:200]
        return DeviceStatus(
            connectivity=connectivity, activity=activity, brightness=hb.brightness,
            power_source=PowerSource(hb.power_source), battery=hb.battery, signal=hb.signal,
            temperature=hb.temperature, firmware=hb.firmware, faults=faults,
            current_item=screen.item_id, telemetry=telemetry)

    def report(self, force: bool = False) -> None:
        """Tell the attached drivers, if anything but the clock changed."""
        status = self.status()
        comparable = status.model_copy(update={"reported_at": None,
                                               "telemetry": {k: v for k, v in
                                                             status.telemetry.items()
                                                             if k != "uptime_s"}})
        if not force and comparable == self._last_report:
            return
        self._last_report = comparable
        self.connectivity = status.connectivity
        for listener in list(self.listeners):
            listener.on_board_status(status)

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds after some heartbeat (True) or time runs out."""
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)

        try:
            await wait_for(wait(), timeout)
        except TimeoutError:
            return predicate()
        return True

    # -- commands and playlist ----------------------------------------------------------------

    def remember(self, key: str, result: CommandResult) -> None:
        """Keep the first result per idempotency key (the last :data:`RESULTS_KEPT`)."""
        self.results.setdefault(key, remembered(result))
        while len(self.results) > RESULTS_KEPT:
            self.results.popitem(last=False)

    def set_desired(self, items: list[WireItem]) -> tuple[str, int]:
        """Make ``items`` the playlist the board should show; (version, generation)."""
        version = playlist_version(items)
        if self.desired is None or self.desired.version != version:
            self.generation += 1
            self.desired = Playlist(version=version, items=items)
            self.generations.pop(version, None)  # re-inserted: now the newest
            self.generations[version] = self.generation
            while len(self.generations) > VERSIONS_KEPT:
                del self.generations[next(iter(self.generations))]
        return version, self.generations[version]

    def board_generation(self) -> int:
        hb = self.heartbeat
        if hb is None or hb.playlist_version is None:
            return -1
        return self.generations.get(hb.playlist_version, -1)

    def rejection(self, item_id: str) -> ItemRejection | None:
        hb = self.heartbeat
        return next((r for r in hb.rejected if r.item_id == item_id), None) if hb else None

    def expire_pending(self, now: float) -> None:
        """Forget commands whose ``expires_at`` passed without the board fetching them."""
        for key, pending in list(self.pending.items()):
            if pending.deadline is not None and pending.deadline <= now:
                del self.pending[key]
                if not pending.future.done():
                    pending.future.cancel()

    def take_results(self, hb: Heartbeat) -> None:
        for outcome in hb.results:
            result = CommandResult(command_id=outcome.command_id, status=outcome.status,
                                   code=outcome.code, detail=outcome.detail, data=outcome.data)
            self.remember(outcome.idempotency_key, result)
            pending = self.pending.pop(outcome.idempotency_key, None)
            if pending is None:
                self.late_results += 1  # the hub stopped waiting, or a repeated answer
                continue
            if not pending.future.done():
                pending.future.set_result(result)

    def reply(self, hb: Heartbeat) -> PollReply:
        waiting = [p for p in self.pending.values() if not p.future.done()]
        for pending in waiting:
            self.redeliveries += pending.deliveries > 0
            pending.deliveries += 1
        playlist = None
        if self.desired is not None and hb.playlist_version != self.desired.version:
            playlist = self.desired
        return PollReply(server_time=utcnow(), poll_interval=self.poll_interval,
                         commands=[p.command for p in waiting], playlist=playlist,
                         send_playlist=self.desired is None and hb.playlist is None,
                         power_schedule=self.power_schedule)


class PullBoardService:
    """The poll route on one device endpoint, the sessions behind it, and their watchdog."""

    def __init__(self, endpoint: DeviceEndpoint) -> None:
        self.endpoint = endpoint
        self.sessions: dict[str, BoardSession] = {}
        self._route: Route = endpoint.route("POST", PATH, self._poll)
        self._watchdog = asyncio.create_task(self._watch(), name="pullboard-watchdog")
        self._unknown_logged: set[str] = set()

    async def close(self) -> None:
        self.endpoint.unroute(self._route)
        await cancel_and_wait(self._watchdog, "pull board watchdog")

    def attach(self, serial: str, listener: SessionListener, *, token: SecretStr,
               poll_interval: float, offline_after: int,
               power_schedule: PowerScheduleWire | None) -> BoardSession:
        session = self.sessions.get(serial)
        if session is None:
            session = self.sessions[serial] = BoardSession(serial, poll_interval,
                                                           offline_after, power_schedule)
        else:  # the latest configuration wins (a re-registered board, new settings)
            session.poll_interval = poll_interval
            session.offline_after, session.power_schedule = offline_after, power_schedule
        session.listeners.append(listener)
        session.tokens[id(listener)] = token
        return session

    def detach(self, serial: str, listener: SessionListener) -> None:
        session = self.sessions.get(serial)
        if session is not None:
            with contextlib.suppress(ValueError):
                session.listeners.remove(listener)
            session.tokens.pop(id(listener), None)
            if not session.listeners:
                for pending in session.pending.values():
                    if not pending.future.done():
                        pending.future.cancel()
                session.pending.clear()

    # -- the device-facing route --------------------------------------------------------------

    async def _poll(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        serial = params["serial"]
        session = self.sessions.get(serial)
        if session is None or not session.listeners:
            if serial not in self._unknown_logged:
                if len(self._unknown_logged) > 10_000:  # anyone can invent serials
                    self._unknown_logged.clear()
                self._unknown_logged.add(serial)
                log.info("pullboard.unknown_board", serial=serial, peer=request.remote)
            return json_error(404, "unknown_board",
                              f"no board {serial} is registered on this hub")
        if not _token_ok(request, list(session.tokens.values())):
            return await self._refuse(session, request)
        if session.auth_failing:
            session.auth_failing = False
            log.info("pullboard.auth_restored", serial=serial)
        raw = await request.read()
        try:
            hb = Heartbeat.model_validate_json(raw)
            if hb.serial != serial:
                raise ValueError(f"heartbeat names serial {hb.serial!r}")
        except (ValidationError, ValueError) as exc:
            session.bad_requests += 1
            if session.bad_requests == 1 or session.bad_requests % 100 == 0:
                log.warning("pullboard.bad_heartbeat", serial=serial,
                            count=session.bad_requests, error=str(exc).splitlines()[0][:200])
            return json_error(400, "bad_heartbeat", "the body is not a heartbeat: "
                              f"{str(exc).splitlines()[0][:200]}")
        reply = self.on_heartbeat(session, hb)
        await session.notify()
        return web.Response(text=reply.model_dump_json(), content_type="application/json")

    async def _refuse(self, session: BoardSession, request: web.Request) -> web.StreamResponse:
        session.auth_failures += 1
        if not session.auth_failing:  # logged once per run of refusals, not once per poll
            session.auth_failing = True
            log.warning("pullboard.auth_failed", serial=session.serial, peer=request.remote)
            session.report()
            await session.notify()
        return json_error(401, "invalid_token", "wrong or missing bearer token",
                          WWW_Authenticate='Bearer realm="ttcs-pullboard", '
                                           'error="invalid_token"')

    def on_heartbeat(self, session: BoardSession, hb: Heartbeat) -> PollReply:
        previous = session.heartbeat
        session.polls += 1
        session.heartbeat = hb
        session.last_seen = time.monotonic()
        if previous is not None and previous.boot_id and previous.boot_id != hb.boot_id:
            log.info("pullboard.rebooted", serial=hb.serial, firmware=hb.firmware)
        session.take_results(hb)
        if hb.playlist is not None and session.desired is None:
            session.desired = hb.playlist  # adopt what the board shows (hub restarted)
            session.generations.setdefault(hb.playlist.version, 0)
        reply = session.reply(hb)
        session.report()
        return reply

    async def _watch(self) -> None:
        while True:
            intervals = [s.poll_interval for s in self.sessions.values()] or [4.0]
            await asyncio.sleep(max(0.05, min(1.0, min(intervals) / 4)))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                session.expire_pending(now)
                if session.listeners and session.freshness(now) is not session.connectivity:
                    session.report()
                    await session.notify()


def _token_ok(request: web.Request, tokens: list[SecretStr]) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    presented = value.strip().encode()
    # compare with every token (no early exit) so timing says nothing about which matched
    matches = [hmac.compare_digest(presented, t.get_secret_value().encode()) for t in tokens]
    return scheme.lower() == "bearer" and any(matches)


def session_key(endpoint: DeviceEndpoint) -> str:
    return f"pullboard.service:{endpoint.host}:{endpoint.requested_port}"


__all__ = ["BoardSession", "Pending", "PullBoardService", "SessionListener", "playlist_version",
           "session_key"]
