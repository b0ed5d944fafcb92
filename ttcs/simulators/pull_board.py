"""A simulated HaLong pull board: an LCD/LED board behind 4G NAT that polls the hub.

It speaks :mod:`ttcs.plugins.pullboard.protocol`: every ``poll_interval`` seconds (the hub
may change it in its reply) it POSTs a heartbeat to the hub's device endpoint with its bearer
token, and acts on the reply: applies a new playlist (fetching each item's media itself and
refusing media whose SHA-256 or size differ), carries out commands once per idempotency key
(a repeated command gets the first result again), applies the power schedule, and sends its
whole playlist when asked. After it changed something it polls again at once, to report.

It shows what it shows through :class:`~ttcs.simulators.board_display.BoardDisplay` (ground
truth in :class:`BoardTruth`; a screenshot is a real PNG). Faults:

- ``offline``: says goodbye (``bye``) and stops polling; the screen keeps its playlist;
- ``slow``: each poll and each command is late by ``delay`` seconds;
- ``garbage``: polls carry bytes that are not a heartbeat;
- ``drop_connection``: the next poll's connection breaks before the reply is read (one-shot;
  ``on="commands"``: the next reply that carries commands is the one lost);
- ``power_loss``: dark and silent, no goodbye; cleared = boots again (new boot id);
- ``power_loss_battery``: keeps going on battery, brightness capped;
- ``reboot``: dark for ``seconds``, back with ``firmware`` if given (one-shot);
- ``wrong_credentials``: polls with a wrong token until cleared;
- ``hang``: the display application hangs: heartbeats still go out, but commands and
  playlists are ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import random
import ssl
import time
import uuid
from collections import OrderedDict
from typing import Any

import aiohttp
import structlog
from pydantic import ValidationError

from ..aio import cancel_and_wait, wait_event
from ..plugins.pullboard.protocol import (
    PATH,
    BoardCommand,
    CommandOutcome,
    Heartbeat,
    ItemRejection,
    Playlist,
    PollReply,
    PowerScheduleWire,
    Screen,
    WireItem,
)
from ..schemas import CommandStatus, DeviceKind
from .base import Fault, Fleet, Rejection, SimOptions, SimulatedDevice, SimulatorSpec
from .base import now as utcnow
from .board_display import BoardDisplay, BoardItem, BoardTruth, PowerSchedule

log = structlog.get_logger("ttcs.sim.pullboard")

VENDOR = "HaLong Signage"


class PullBoard(SimulatedDevice):
    """One pull board polling ``hub_url``."""

    def __init__(self, serial: str, hub_url: str, *, token: str, display: str = "lcd",
                 firmware: str = "2.4.0", poll_interval: float = 5.0,
                 ca_file: str | None = None, mac: str | None = None,
                 width: int | None = None, height: int | None = None,
                 storage_bytes: int = 512 * 1024 * 1024) -> None:
        super().__init__(serial)
        self.truth: BoardTruth = BoardTruth()
        self.hub_url = hub_url.rstrip("/")
        self.token = token
        self.display_type = display
        self.model = "HLS-4G-LCD43" if display == "lcd" else "HLS-4G-P6-LED"
        self.firmware = firmware
        self.poll_interval = poll_interval
        self.ca_file = ca_file
        self.mac = mac
        self.width = width or (800 if display == "lcd" else 192)
        self.height = height or (480 if display == "lcd" else 96)
        self.storage_bytes = storage_bytes
        self.display = BoardDisplay(self.truth, width=self.width, height=self.height,
                                    led=display == "led", assets=self._media_bytes)
        self.media: dict[str, tuple[bytes, str]] = {}
        self.playlist: Playlist | None = None
        self.rejected: list[ItemRejection] = []
        self.signal = random.randint(-105, -75)
        self.booted_at = time.monotonic()
        self.boot_id = uuid.uuid4().hex[:12]
        # protocol state
        self._outbox: list[CommandOutcome] = []  # results not yet delivered to the hub
        self._done: OrderedDict[str, CommandOutcome] = OrderedDict()
        self._send_playlist = False
        self._reboot_after_report = False
        self._drop: str | None = None  # "next" poll, or the next reply carrying "commands"
        self._bye = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        # counters a test (or a person) can read
        self.polls = 0
        self.poll_failures = 0
        self.auth_refusals = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_poll_ok_at: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.display.start()
        self._connect()

    async def stop(self) -> None:
        await self._disconnect()
        await self.display.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _connect(self) -> None:
        if self._task is None:
            self._bye = False
            self._task = asyncio.create_task(self._loop(), name=f"pullboard:{self.serial}")

    async def _disconnect(self, *, goodbye: bool = False) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task, "pull board simulator")
        if goodbye:
            self._bye = True
            with contextlib.suppress(Exception):
                await self._poll_once()

    def _boot(self) -> None:
        self.booted_at = time.monotonic()
        self.boot_id = uuid.uuid4().hex[:12]

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            context: ssl.SSLContext | bool = True
            if self.ca_file:
                context = ssl.create_default_context(cafile=self.ca_file)
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return self._http

    # -- polling ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            again = False
            try:
                again = await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a board keeps polling whatever happens
                self.poll_failures += 1
                self.last_error = repr(exc)
            if again:
                continue
            self._wake.clear()
            await wait_event(self._wake, self.poll_interval)

    def heartbeat(self) -> Heartbeat:
        snap = self.display.snapshot()
        used = sum(len(d) for d, _ in self.media.values())
        return Heartbeat(
            serial=self.serial, vendor=VENDOR, model=self.model, firmware=self.firmware,
            kind=DeviceKind.LCD_BOARD if self.display_type == "lcd" else DeviceKind.LED_BOARD,
            mac=self.mac, boot_id=self.boot_id,
            uptime=round(time.monotonic() - self.booted_at, 1),
            temperature=round(36.0 + self.display.effective_brightness * 0.08, 1),
            brightness=self.display.effective_brightness, power_on=self.display.switched_on,
            power_source="battery" if self.display.on_battery else "mains",
            battery=82 if self.display.on_battery else 100, signal=self.signal,
            storage_total=self.storage_bytes, storage_free=self.storage_bytes - used,
            screen=Screen(lit=snap["lit"], dark_reason=snap["dark_reason"],
                          item_id=snap["item_id"], kind=snap["kind"], text=snap["text"],
                          since=self.display.current_since),
            playlist_version=self.playlist.version if self.playlist else None,
            playlist=(self.playlist or Playlist(version="", items=[]))
            if self._send_playlist else None,
            rejected=self.rejected, results=list(self._outbox),
            power_schedule=(None if self.display.schedule is None else
                            PowerScheduleWire(**self.display.schedule.to_json())),
            bye=self._bye)

    async def _poll_once(self) -> bool:
        """One poll; True when the board should poll again right away (it has news)."""
        await self.slow_down()
        hb = self.heartbeat()
        sent = list(self._outbox)
        asked_playlist = self._send_playlist
        body = hb.model_dump_json().encode()
        if self.has(Fault.GARBAGE):
            body = b"\x00\xffHLS" + bytes(random.getrandbits(8) for _ in range(32))
        token = self.token
        if self.has(Fault.WRONG_CREDENTIALS):
            token = str(self.faults[Fault.WRONG_CREDENTIALS].get("token", "wrong-token"))
        session = await self._session()
        url = self.hub_url + PATH.format(serial=self.serial)
        self.polls += 1
        timeout = aiohttp.ClientTimeout(total=max(3.0, self.poll_interval * 2))
        async with session.post(url, data=body, timeout=timeout, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                "User-Agent": f"HaLong-HLS/{self.firmware}"}) as response:
            if self._drop == "next":  # the 4G link breaks while the reply is on its way
                self._drop, self.dropped = None, self.dropped + 1
                response.close()
                raise ConnectionResetError("connection dropped before the reply arrived")
            raw = await response.read()
        if self._drop == "commands" and b'"commands":[{' in raw.replace(b" ", b""):
            self._drop, self.dropped = None, self.dropped + 1  # lost with commands in it
            raise ConnectionResetError("connection dropped while a command was on its way")
        if response.status == 401:
            self.auth_refusals += 1
            self.last_error = "401 invalid token"
            return False
        if response.status != 200:
            self.poll_failures += 1
            self.last_error = f"{response.status}: {raw[:200]!r}"
            return False
        try:
            reply = PollReply.model_validate_json(raw)
        except ValidationError as exc:
            self.poll_failures += 1
            self.last_error = f"bad reply: {exc}"
            return False
        self.last_poll_ok_at = time.monotonic()
        self.last_error = None
        delivered = {o.idempotency_key for o in sent}
        self._outbox = [o for o in self._outbox if o.idempotency_key not in delivered]
        if asked_playlist:
            self._send_playlist = False
        if self._reboot_after_report and not self._outbox:
            self._reboot_after_report = False
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.inject(Fault.REBOOT, seconds=0.3)))
        return await self._act(reply)

    async def _act(self, reply: PollReply) -> bool:
        self.poll_interval = reply.poll_interval
        news = False
        if reply.send_playlist and not self._send_playlist:
            self._send_playlist = news = True
        if self.has(Fault.HANG):
            return news  # the display application is stuck; only the heartbeat thread lives
        schedule = (PowerSchedule.parse(reply.power_schedule.on, reply.power_schedule.off)
                    if reply.power_schedule else None)
        self.display.set_schedule(schedule)
        if reply.playlist is not None and (self.playlist is None or
                                           reply.playlist.version != self.playlist.version):
            await self._apply_playlist(reply.playlist)
            news = True
        for command in reply.commands:
            news = await self._command(command) or news
        return news

    # -- playlist -----------------------------------------------------------------------------

    def _media_bytes(self, sha256: str) -> bytes | None:
        entry = self.media.get(sha256)
        return entry[0] if entry else None

    async def _apply_playlist(self, playlist: Playlist) -> None:
        items: list[BoardItem] = []
        rejected: list[ItemRejection] = []
        for wire in playlist.items:
            problem = await self._fetch_media(wire)
            if problem is None and wire.valid_from and wire.valid_until and (
                    wire.valid_until <= wire.valid_from):
                problem = ("invalid_window", "valid_until is not after valid_from")
            if problem is not None:
                rejected.append(ItemRejection(item_id=wire.id, code=problem[0],
                                              reason=problem[1]))
                self.truth.rejections.append(Rejection(utcnow(), "playlist_item", wire.id,
                                                       problem[0], problem[1]))
                continue
            items.append(BoardItem(
                id=wire.id, text=wire.text, media=wire.media.sha256 if wire.media else None,
                media_mime=wire.media.mime if wire.media else None, duration=wire.duration,
                valid_from=wire.valid_from, valid_until=wire.valid_until,
                priority=wire.priority))
        self.playlist = playlist
        self.rejected = rejected
        self.display.set_playlist(items, playlist.version)

    async def _fetch_media(self, item: WireItem) -> tuple[str, str] | None:
        media = item.media
        if media is None or media.sha256 in self.media:
            return None
        session = await self._session()
        try:
            async with session.get(str(media.url),
                                   timeout=aiohttp.ClientTimeout(total=30)) as response:
                if response.status != 200:
                    return "media_unavailable", f"GET {media.url} answered {response.status}"
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return "media_unavailable", f"cannot fetch {media.url}: {exc!r}"
        digest = hashlib.sha256(data).hexdigest()
        if digest != media.sha256 or len(data) != media.size:
            return "checksum_mismatch", (f"media sha256 {digest[:12]}… / {len(data)} bytes do "
                                         "not match the playlist; refusing altered content")
        used = sum(len(d) for d, _ in self.media.values())
        if used + len(data) > self.storage_bytes:
            return "storage_full", f"{len(data)} bytes do not fit"
        self.media[media.sha256] = (data, media.mime)
        return None

    # -- commands -----------------------------------------------------------------------------

    async def _command(self, command: BoardCommand) -> bool:
        key = command.idempotency_key
        self.truth.commands.append({"at": utcnow(), "id": command.id, "type": command.type,
                                    "idempotency_key": key, "repeat": key in self._done})
        first = self._done.get(key)
        if first is not None:  # the hub did not get our result: send the same one again
            if all(o.idempotency_key != key for o in self._outbox):
                self._outbox.append(first)
            return True
        await self.slow_down()
        outcome = self._execute(command)
        self._done[key] = outcome
        while len(self._done) > 1000:
            self._done.popitem(last=False)
        if outcome.status is CommandStatus.REJECTED:
            self.truth.rejections.append(Rejection(utcnow(), command.type, command.id,
                                                   outcome.code, outcome.detail or ""))
        self._outbox.append(outcome)
        return True

    def _execute(self, command: BoardCommand) -> CommandOutcome:
        def outcome(status: CommandStatus = CommandStatus.DONE, code: str = "ok",
                    detail: str | None = None, **data: Any) -> CommandOutcome:
            return CommandOutcome(command_id=command.id, idempotency_key=command.idempotency_key,
                                  status=status, code=code, detail=detail, data=data)

        if command.type == "set_brightness" and command.brightness is not None:
            self.display.set_brightness(command.brightness)
            return outcome(brightness=command.brightness,
                           effective=self.display.effective_brightness)
        if command.type == "power" and command.on is not None:
            self.display.switch(command.on)
            return outcome(on=command.on)
        if command.type == "screenshot":
            png = self.display.render_png()
            snap = self.display.snapshot()
            return outcome(mime="image/png", png_base64=base64.b64encode(png).decode(),
                           width=self.width, height=self.height, current_item=snap["item_id"],
                           text=snap["text"], lit=snap["lit"])
        if command.type == "reboot":
            self._reboot_after_report = True
            return outcome(CommandStatus.ACCEPTED, "rebooting")
        return outcome(CommandStatus.REJECTED, "bad_command",
                       f"cannot do {command.type} with these arguments")

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            if active:
                await self._disconnect(goodbye=True)
            else:
                self._connect()
        elif fault is Fault.POWER_LOSS:
            if active:
                await self._disconnect()
                self.display.set_power(False)
                self._outbox.clear()  # RAM is gone; the hub re-sends what it still waits for
            else:
                self._boot()
                self.display.set_power(True)
                self._connect()
        elif fault is Fault.POWER_LOSS_BATTERY:
            self.display.set_battery(active)
            self._wake.set()
        elif fault is Fault.REBOOT and active:
            await self._disconnect()
            self.display.set_power(False)
            await asyncio.sleep(float(params.get("seconds", 0.5)))
            self.firmware = str(params.get("firmware", self.firmware))
            self._boot()
            self.display.set_power(True)
            self._connect()
        elif fault is Fault.DROP_CONNECTION and active:
            self._drop = "commands" if params.get("on") == "commands" else "next"
        elif not active:
            self._wake.set()  # wrong_credentials, hang, garbage, slow: try again now
        # slow, garbage, wrong_credentials, hang: consulted on every poll

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"screen": self.display.snapshot(), "firmware": self.firmware,
                "boot_id": self.boot_id, "polling": self._task is not None,
                "poll_interval": self.poll_interval, "polls": self.polls,
                "poll_failures": self.poll_failures, "auth_refusals": self.auth_refusals,
                "last_error": self.last_error, "brightness": self.display.brightness,
                "switched_on": self.display.switched_on,
                "on_battery": self.display.on_battery,
                "playlist_version": self.playlist.version if self.playlist else None,
                "playlist_items": [i.summary() for i in self.display.items],
                "rejected": [r.model_dump() for r in self.rejected],
                "schedule": self.display.schedule.to_json() if self.display.schedule else None}

    def registration(self) -> dict[str, Any]:
        port = int(self.hub_url.rsplit(":", 1)[-1].split("/")[0])
        return {"plugin": "pullboard",
                "kind": "lcd_board" if self.display_type == "lcd" else "led_board",
                "config": {"serial": self.serial, "token": self.token, "listen_port": port,
                           "poll_interval": self.poll_interval}}

    def connection_info(self) -> dict[str, Any]:
        kind = "lcd_board" if self.display_type == "lcd" else "led_board"
        port = self.hub_url.rsplit(":", 1)[-1].split("/")[0]
        return {"protocol": "halong-pull/1", "hub": self.hub_url, "serial": self.serial,
                "token": self.token, "poll_interval": self.poll_interval,
                "add": f"ttcs devices add --plugin pullboard --kind {kind} --area AREA "
                       f"--config serial={self.serial} --config token={self.token} "
                       f"--config listen_port={port} --config poll_interval={self.poll_interval:g}"}


async def build(options: SimOptions) -> Fleet:
    """``ttcs sim run pullboard --option hub=http://HOST:PORT --option poll=2``."""
    prefix = options.serial_prefix or "HLS"
    hub = options.extra.get("hub", f"http://{options.host}:{options.port or 8081}")
    token = options.extra.get("token", "pb-secret")
    first = int(options.extra.get("first", "1"))
    devices: list[SimulatedDevice] = [
        PullBoard(f"{prefix}-{n:04d}", hub, token=token,
                  display=options.extra.get("display", "lcd"),
                  firmware=options.extra.get("firmware", "2.4.0"),
                  poll_interval=float(options.extra.get("poll", "5")),
                  ca_file=options.extra.get("ca"), mac=_mac(prefix, n))
        for n in range(first, first + options.count)]
    return Fleet(devices, info={"vendor": VENDOR, "hub": hub})


def _mac(prefix: str, n: int) -> str:
    digest = hashlib.sha256(f"halong-{prefix}-{n}".encode()).digest()
    return ":".join(f"{b:02X}" for b in (b"\x02" + digest[:5]))


SPEC = SimulatorSpec(
    name="pullboard", kinds=(DeviceKind.LCD_BOARD.value, DeviceKind.LED_BOARD.value),
    protocol="http (halong-pull/1, the board polls the hub)",
    description="HaLong 4G board behind NAT that polls the hub's device endpoint "
                "(--option hub=http://HOST:PORT poll=SECONDS token=... display=lcd|led ca=FILE)",
    build=build)


__all__ = ["SPEC", "PullBoard", "build"]
