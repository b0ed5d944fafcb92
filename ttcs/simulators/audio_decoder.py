"""A simulated IP audio decoder: the box that turns a stream URL into line-level audio.

Wired and FM stations get their audio from such a decoder (vendor "VietCast", model
VC-D2): a small HTTP/JSON API with an API key in the ``X-API-Key`` header, documented in
``docs/plugins/zonetech.md``::

    GET  /api/v1/info     identity: serial, vendor, model, firmware, mac
    GET  /api/v1/status   state idle|playing|error, url, session, label, volume, last session
    POST /api/v1/play     {"url", "session", "label"?, "volume"?, "duration"?}
    POST /api/v1/stop     {"session"?}: stop (only that session, if given)
    PUT  /api/v1/volume   {"level": 0-100}

``session`` is the caller's idempotency key: a play with the session already playing changes
nothing. The decoder really fetches the stream over HTTP (so a URL that does not answer
fails the play, as on a real box) and plays it until stopped, or for ``duration`` seconds.

Ground truth: ``truth.plays`` (what it streamed: URL, volume, label, session, start, end,
outcome, bytes received), ``truth.volume_changes``, ``truth.commands``.

Faults: ``offline`` closes the port; ``slow`` delays answers; ``garbage`` answers 200 with
bytes that are not JSON; ``drop_connection`` aborts the next request; ``power_loss`` stops
the audio and closes the port until cleared; ``reboot`` restarts (optional ``firmware``),
cutting what plays; ``wrong_credentials`` refuses the hub's key; ``hang`` accepts and never
answers; ``playback_error`` makes plays fail ``after`` seconds (default 0.2) with a decoding
error. ``power_loss_battery`` does nothing: the decoder sits on the station's UPS.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from ..aio import cancel_and_wait
from .base import Fault, PlayRecord, Rejection, SimulatedDevice
from .base import now as utcnow

log = structlog.get_logger("ttcs.sim.decoder")

VENDOR = "VietCast"
MODEL = "VC-D2"
API = "/api/v1"
API_KEY_HEADER = "X-API-Key"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


@dataclass
class Session:
    """What the decoder is playing now."""

    session: str
    url: str
    label: str | None
    record: PlayRecord
    task: asyncio.Task[None] | None = None
    bytes_received: int = 0


class AudioDecoder(SimulatedDevice):
    """One VietCast decoder serving its API on ``host:port``."""

    def __init__(self, serial: str, *, host: str = "127.0.0.1", port: int = 0,
                 api_key: str = "vc-secret", firmware: str = "1.8.2",
                 mac: str | None = None, volume: int = 70) -> None:
        super().__init__(serial)
        self.host, self.port = host, port
        self.api_key = api_key
        self.firmware = firmware
        self.mac = mac
        self.volume = volume
        self.current: Session | None = None
        self.last: dict[str, Any] | None = None  # how the previous session ended
        self.error: str | None = None
        self.booted_at = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()
        self._drop_next = False
        self._http: aiohttp.ClientSession | None = None
        #: called whenever a play starts or ends (the amplifier it feeds listens)
        self.listeners: list[Callable[[], None]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()

    async def stop(self) -> None:
        await self._end("stopped")
        await self._close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _listen(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._faults, self._auth])
        app.router.add_get(f"{API}/info", self._info)
        app.router.add_get(f"{API}/status", self._status)
        app.router.add_post(f"{API}/play", self._play)
        app.router.add_post(f"{API}/stop", self._stop)
        app.router.add_put(f"{API}/volume", self._volume)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.3)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])  # the same port after a restart
        self._released.clear()
        self._runner = runner

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        self._released.set()
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_name(self) -> str:
        if self.current is not None:
            return "playing"
        return "error" if self.error else "idle"

    # -- middlewares --------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.has(Fault.HANG):
            await self._released.wait()
        if self._drop_next:
            self._drop_next = False
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        await self.slow_down()
        if self.has(Fault.GARBAGE):
            noise = bytes(random.getrandbits(8) for _ in range(random.randint(8, 48)))
            return web.Response(body=b"\xff\xfeVC" + noise, content_type="application/json")
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = self.api_key if not self.has(Fault.WRONG_CREDENTIALS) else "reset-by-installer"
        if request.headers.get(API_KEY_HEADER) != key:
            return _error(401, "bad_api_key", f"missing or wrong {API_KEY_HEADER}")
        if request.method != "GET":
            self.truth.commands.append({"at": utcnow(), "method": request.method,
                                        "path": request.path})
        return await handler(request)

    def _reject(self, request: web.Request, status: int, code: str, message: str,
                session: str | None = None) -> web.Response:
        self.truth.rejections.append(Rejection(utcnow(), f"{request.method} {request.path}",
                                               session, code, message))
        return _error(status, code, message)

    # -- API ----------------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {"serial": self.serial, "vendor": VENDOR, "model": MODEL,
                "firmware": self.firmware, "mac": self.mac}

    def status_body(self) -> dict[str, Any]:
        cur = self.current
        return {"state": self.state_name, "volume": self.volume, "firmware": self.firmware,
                "uptime": round(time.monotonic() - self.booted_at, 1),
                "url": cur.url if cur else None, "session": cur.session if cur else None,
                "label": cur.label if cur else None,
                "started_at": cur.record.started_at.isoformat() if cur else None,
                "bytes_received": cur.bytes_received if cur else 0,
                "error": self.error, "last": self.last}

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self.identity())

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status_body())

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="send a JSON object")
        return body

    async def _play(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        url, session = body.get("url"), body.get("session")
        volume, duration = body.get("volume"), body.get("duration")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return self._reject(request, 422, "bad_url", "url must be an http(s) URL", session)
        if not isinstance(session, str) or not 0 < len(session) <= 200:
            return self._reject(request, 422, "bad_session", "session must be 1-200 characters")
        if volume is not None and (not isinstance(volume, int) or isinstance(volume, bool)
                                   or not 0 <= volume <= 100):
            return self._reject(request, 422, "bad_volume", "volume must be 0-100", session)
        if duration is not None and (not isinstance(duration, int | float)
                                     or not 0 < duration <= 86400):
            return self._reject(request, 422, "bad_duration", "duration must be 0-86400 s",
                                session)
        label = body.get("label")
        if self.current is not None and self.current.session == session:
            return web.json_response(self.status_body())  # the same play again: nothing to do
        if volume is not None:
            self._set_volume(volume)
        await self._end("interrupted")
        self.error = None
        record = PlayRecord(started_at=utcnow(), content_id=label if isinstance(label, str)
                            else None, command_id=session, volume=self.volume, source=url)
        self.truth.plays.append(record)
        cur = Session(session, url, record.content_id, record)
        self.current = cur
        self._notify()
        cur.task = asyncio.create_task(self._stream(cur, float(duration) if duration else None),
                                       name=f"decoder:{self.serial}:{session}")
        return web.json_response(self.status_body())

    async def _stop(self, request: web.Request) -> web.Response:
        body = await self._body(request) if request.can_read_body else {}
        session = body.get("session")
        if self.current is not None and session not in (None, self.current.session):
            return web.json_response(self.status_body())  # someone else's play: leave it
        await self._end("stopped")
        self.error = None
        return web.json_response(self.status_body())

    async def _volume(self, request: web.Request) -> web.Response:
        level = (await self._body(request)).get("level")
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
            return self._reject(request, 422, "bad_volume", "level must be an integer 0-100")
        self._set_volume(level)
        return web.json_response(self.status_body())

    def _set_volume(self, level: int) -> None:
        if level != self.volume:
            self.volume = level
            self.truth.volume_changes.append((utcnow(), level))
            if self.current is not None:
                self.current.record.volume = level

    # -- playing ------------------------------------------------------------------------------

    async def _stream(self, cur: Session, duration: float | None) -> None:
        """Fetch the stream as a real decoder would, until stopped or ``duration`` is up."""
        started = time.monotonic()
        outcome, error = "finished", None
        try:
            if self._http is None or self._http.closed:
                self._http = aiohttp.ClientSession()
            digest = hashlib.sha256()
            async with self._http.get(cur.url, timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=3, sock_read=10)) as response:
                if response.status != 200:
                    raise _StreamFailed(f"stream answered HTTP {response.status}")
                async for chunk in response.content.iter_chunked(16384):
                    cur.bytes_received += len(chunk)
                    digest.update(chunk)
                    self._fail_if_broken(started)
                    if duration is not None and time.monotonic() - started >= duration:
                        break
            # a file shorter than the duration asked for is held (looped) to the end of it;
            # without a duration the play ends with the file (a live stream does not end)
            while duration is not None and time.monotonic() - started < duration:
                self._fail_if_broken(started)
                await asyncio.sleep(min(0.05, max(duration - (time.monotonic() - started),
                                                  0.001)))
        except asyncio.CancelledError:
            return  # _end() decides the outcome
        except _StreamFailed as exc:
            outcome, error = "failed", str(exc)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            outcome, error = "failed", f"stream unreachable: {exc!r}"[:200]
        if self.current is cur:
            self._finish(cur, outcome, error)

    def _fail_if_broken(self, started: float) -> None:
        if self.has(Fault.PLAYBACK_ERROR):
            after = float(self.faults[Fault.PLAYBACK_ERROR].get("after", 0.2))
            if time.monotonic() - started >= after:
                raise _StreamFailed("decoding error: audio underrun, stream dropped")

    def _finish(self, cur: Session, outcome: str, error: str | None) -> None:
        cur.record.ended_at = utcnow()
        cur.record.outcome = outcome
        self.current = None
        self.error = error
        self.last = {"session": cur.session, "label": cur.label, "outcome": outcome,
                     "error": error, "ended_at": cur.record.ended_at.isoformat(),
                     "bytes_received": cur.bytes_received}
        self._notify()

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    async def _end(self, outcome: str) -> None:
        cur = self.current
        if cur is None:
            return
        self._finish(cur, outcome, None)
        if cur.task is not None:
            await cancel_and_wait(cur.task, "decoder playback")

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            await (self._close() if active else self._listen())
        elif fault is Fault.POWER_LOSS:
            if active:
                await self._end("power_lost")
                await self._close()
            else:
                self.booted_at = time.monotonic()
                self.error = None
                await self._listen()
        elif fault is Fault.REBOOT and active:
            await self._end("interrupted")
            await self._close()
            await asyncio.sleep(float(params.get("seconds", 0.3)))
            self.firmware = str(params.get("firmware", self.firmware))
            self.booted_at = time.monotonic()
            self.error = None
            await self._listen()
        elif fault is Fault.DROP_CONNECTION and active:
            self._drop_next = True
        elif fault is Fault.HANG and not active:
            self._released.set()
            self._released = asyncio.Event()

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {**self.status_body(), "listening": self._runner is not None}

    def connection_info(self) -> dict[str, Any]:
        return {"protocol": "vietcast-http/1", "url": self.url, "serial": self.serial,
                "api_key": self.api_key,
                "curl": f"curl -H '{API_KEY_HEADER}: {self.api_key}' {self.url}{API}/status"}


class _StreamFailed(Exception):
    pass


__all__ = ["API", "API_KEY_HEADER", "MODEL", "VENDOR", "AudioDecoder"]
