"""Driver for HaLong pull boards: boards behind 4G NAT that poll the hub.

The hub cannot call such a board, so nothing here opens a connection to it. The driver
attaches to the board's :class:`~ttcs.plugins.pullboard.service.BoardSession` on the shared
device endpoint and:

- *status*: every heartbeat updates the session; the driver reports the status to the hub
  itself (``iot_class = device_pull``), and the service's watchdog reports *degraded* after one
  missed heartbeat and *offline* after ``offline_after`` missed ones;
- *display* (``show``, ``clear``): changes the playlist the hub wants the board to show; the
  board gets it with its next poll, fetches and checks the media, and the command is done when
  a heartbeat reports that playlist version (or rejected, when the board refused the item);
- *other commands* (``set_brightness``, ``power``, ``screenshot``, ``reboot``): queued for the
  board's next poll, re-sent with every poll until its result arrives (the board recognises a
  repeat by ``idempotency_key`` and does not act twice); the first result per key is kept.

A command waits ``command_timeout + poll_interval`` for the board. If it carries
``expires_at`` it stays queued until then even after the caller stopped waiting (the board
may be in a 4G dead spot); otherwise it is withdrawn.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from ...adapters.device_endpoint import DEFAULT_DEVICE_PORT
from ...adapters.errors import with_timeout
from ...core.driver import DeviceDriver, DriverConfig
from ...core.errors import AuthFailed, CommandRejected, DeviceTimeout, DeviceUnreachable
from ...schemas import (
    Capability,
    ClearCommand,
    Command,
    CommandResult,
    CommandStatus,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    IotClass,
    PowerCommand,
    RebootCommand,
    ScreenshotCommand,
    SetBrightnessCommand,
    ShowCommand,
    utcnow,
)
from ...schemas.base import Identifier
from ..display_common import show_window, time_of_day
from .protocol import BoardCommand, Heartbeat, PowerScheduleWire, WireItem
from .service import BoardSession, Pending, PullBoardService, session_key


class PullBoardConfig(DriverConfig):
    serial: Identifier = Field(description="the serial the board polls with")
    token: SecretStr = Field(description="the board's own bearer token (one per board)")
    listen_host: str = Field(default="0.0.0.0", description="address of the hub's "  # noqa: S104
                             "device endpoint (boards connect to it)")
    listen_port: int = Field(default=DEFAULT_DEVICE_PORT, ge=0, le=65535,
                             description="port of the device endpoint (0: any free port)")
    tls_cert: str | None = Field(default=None, description="PEM certificate: serve HTTPS")
    tls_key: str | None = Field(default=None, description="PEM key of tls_cert")
    poll_interval: float = Field(default=5.0, ge=0.1, le=3600,
                                 description="seconds between polls, told to the board")
    offline_after: int = Field(default=3, ge=2, le=100,
                               description="missed heartbeats before the board is offline")
    dwell_seconds: float = Field(default=10.0, ge=1, le=3600,
                                 description="how long an item shows per turn by default")
    power_on: str | None = Field(default=None, description="daily switch-on time HH:MM")
    power_off: str | None = Field(default=None, description="daily switch-off time HH:MM")

    @field_validator("power_on", "power_off")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        return time_of_day(value)

    @model_validator(mode="after")
    def _tls_pair(self) -> PullBoardConfig:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("give both tls_cert and tls_key, or neither")
        return self

    @property
    def schedule(self) -> PowerScheduleWire | None:
        if self.power_on and self.power_off:
            return PowerScheduleWire(on=self.power_on, off=self.power_off)
        return None


class PullBoardDriver(DeviceDriver):
    """A board that polls the hub. Status comes with its heartbeats (device pull)."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.LED_BOARD,
                                                        DeviceKind.LCD_BOARD})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.DISPLAY_TEXT, Capability.DISPLAY_MEDIA, Capability.DISPLAY_BRIGHTNESS,
        Capability.DISPLAY_SCREENSHOT, Capability.POWER, Capability.REBOOT})
    config_model = PullBoardConfig
    iot_class = IotClass.DEVICE_PULL

    _service: PullBoardService | None = None
    _session: BoardSession | None = None

    @property
    def config(self) -> PullBoardConfig:
        return self.context.config  # type: ignore[no-any-return]

    @property
    def session(self) -> BoardSession:
        if self._session is None:
            raise DeviceUnreachable(f"driver for board {self.config.serial} is not started")
        return self._session

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        transports = self.context.transports
        endpoint = await transports.device_endpoint(cfg.listen_host, cfg.listen_port,
                                                    cert=cfg.tls_cert, key=cfg.tls_key)

        async def make() -> PullBoardService:
            return PullBoardService(endpoint)

        self._service = await transports.shared(session_key(endpoint), make)
        self._session = self._service.attach(
            cfg.serial, self, token=cfg.token, poll_interval=cfg.poll_interval,
            offline_after=cfg.offline_after, power_schedule=cfg.schedule)
        if self._session.heartbeat is not None:
            self._session.report(force=True)

    async def stop(self) -> None:
        if self._service is not None:
            self._service.detach(self.config.serial, self)
        self._session = None

    def on_board_status(self, status: DeviceStatus) -> None:
        self.context.link.report_status(status)

    # -- identity and status ------------------------------------------------------------------

    async def _heartbeat(self, timeout: float) -> Heartbeat:
        """The board's latest heartbeat while it is online.

        A driver that has not heard from the board yet waits up to ``timeout`` for its next
        poll; one that has heard from it answers at once (a board gone quiet fails fast).
        """
        session = self.session
        if session.heartbeat is None:  # a fresh driver (CLI, hub restart): the board will come
            await session.wait_for(lambda: session.online or session.auth_failing, timeout)
        if session.online and session.heartbeat is not None:
            return session.heartbeat  # even if someone else just sent a wrong token
        if session.auth_failing:
            raise AuthFailed(f"board {session.serial} polls with a wrong token "
                             f"({session.auth_failures} refused)")
        age = session.age()
        since = "never" if age is None else f"{age:.0f} s ago"
        raise DeviceUnreachable(f"board {session.serial} has not polled the hub "
                                f"(last poll: {since}; it should poll every "
                                f"{session.poll_interval:g} s)")

    async def probe(self) -> DeviceInfo:
        hb = await self._heartbeat(self.context.settings.probe_timeout * 1.8)
        return DeviceInfo(serial=hb.serial, mac=hb.mac, vendor=hb.vendor, model=hb.model,
                          firmware=hb.firmware, kind=hb.kind,
                          capabilities=sorted(self.capabilities),
                          extra={"boot_id": hb.boot_id, "storage_total": hb.storage_total})

    async def read_status(self) -> DeviceStatus:
        session = self.session
        if session.heartbeat is None:
            await self._heartbeat(min(self._first_poll_wait,
                                      self.context.settings.command_timeout * 0.9))
        return session.status()

    # -- commands -----------------------------------------------------------------------------

    @property
    def _first_poll_wait(self) -> float:
        """How long a fresh driver waits for the board's next poll (it may have just polled)."""
        return max(self.context.settings.probe_timeout, self.config.poll_interval * 1.2 + 1.0)

    @property
    def _wait(self) -> float:
        return self.context.settings.command_timeout + self.config.poll_interval

    async def execute(self, command: Command) -> CommandResult:
        session = self.session
        key = command.idempotency_key
        first = session.results.get(key)
        if first is not None:
            return first.model_copy(update={"command_id": command.id})
        pending = session.pending.get(key)
        if pending is not None:  # the same command is already on its way
            return (await self._await(pending, command)).model_copy(
                update={"command_id": command.id})
        await self._heartbeat(self._first_poll_wait)
        if isinstance(command, ShowCommand | ClearCommand):
            result = await self._change_playlist(command)
            session.remember(key, result)
            return result
        board_command = self._board_command(command)
        deadline = None
        if command.expires_at is not None:
            deadline = time.monotonic() + (command.expires_at - utcnow()).total_seconds()
        pending = Pending(board_command, asyncio.get_running_loop().create_future(), deadline)
        session.pending[key] = pending
        return (await self._await(pending, command)).model_copy(
            update={"command_id": command.id})

    def _board_command(self, command: Command) -> BoardCommand:
        base: dict[str, Any] = {"id": command.id, "idempotency_key": command.idempotency_key}
        if isinstance(command, SetBrightnessCommand):
            return BoardCommand(type="set_brightness", brightness=command.brightness, **base)
        if isinstance(command, PowerCommand):
            return BoardCommand(type="power", on=command.on, **base)
        if isinstance(command, ScreenshotCommand):
            return BoardCommand(type="screenshot", **base)
        if isinstance(command, RebootCommand):
            return BoardCommand(type="reboot", **base)
        raise CommandRejected(f"a HaLong board does not do '{command.type}'",
                              code="unsupported")

    async def _await(self, pending: Pending, command: Command) -> CommandResult:
        session = self.session
        try:
            return await with_timeout(
                self._wait, f"board {session.serial} did not carry out '{command.type}' "
                f"(it polls every {session.poll_interval:g} s)", asyncio.shield(pending.future))
        except DeviceTimeout:
            if pending.deadline is None:
                session.pending.pop(pending.command.idempotency_key, None)
            raise
        except asyncio.CancelledError:
            if pending.future.cancelled():  # withdrawn: expired, or the driver stopped
                raise DeviceUnreachable(f"'{command.type}' for board {session.serial} was "
                                        "withdrawn before the board fetched it") from None
            raise

    async def _change_playlist(self, command: ShowCommand | ClearCommand) -> CommandResult:
        session = self.session
        if session.desired is None:  # a fresh driver asks the board for its playlist first
            known = await session.wait_for(lambda: session.desired is not None, self._wait)
            if not known:
                raise DeviceTimeout(f"board {session.serial} did not send its playlist")
        item: WireItem | None = None
        async with session.playlist_lock:
            assert session.desired is not None
            if isinstance(command, ShowCommand):
                item = self._item(command)
                items = [i for i in session.desired.items if i.id != item.id] + [item]
            else:
                items = []
            version, generation = session.set_desired(items)
        applied = await session.wait_for(lambda: session.board_generation() >= generation,
                                         self._wait)
        if not applied:
            raise DeviceTimeout(f"board {session.serial} has not taken playlist {version} "
                                f"(it polls every {session.poll_interval:g} s)")
        if item is None:
            return CommandResult(command_id=command.id, status=CommandStatus.DONE,
                                 data={"playlist_version": version})
        rejection = session.rejection(item.id)
        if rejection is not None:
            async with session.playlist_lock:  # take it back, so the board stops retrying it
                assert session.desired is not None
                if any(i.id == item.id for i in session.desired.items):
                    session.set_desired([i for i in session.desired.items if i.id != item.id])
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code=rejection.code, detail=rejection.reason[:2000],
                                 data={"item_id": item.id, "playlist_version": version})
        hb = session.heartbeat
        return CommandResult(command_id=command.id, status=CommandStatus.DONE, data={
            "item_id": item.id, "playlist_version": version,
            "showing": bool(hb and hb.screen.item_id == item.id),
            "valid_from": item.valid_from.isoformat() if item.valid_from else None,
            "valid_until": item.valid_until.isoformat() if item.valid_until else None})

    def _item(self, command: ShowCommand) -> WireItem:
        duration, valid_from, valid_until = show_window(command, self.config.dwell_seconds,
                                                        command.issued_at or utcnow())
        return WireItem(id=command.content_id or command.idempotency_key, text=command.text,
                        media=command.media, duration=duration, valid_from=valid_from,
                        valid_until=valid_until, priority=command.level.rank)
