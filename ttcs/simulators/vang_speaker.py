"""A simulated VangTech IP/4G speaker: a REST/JSON API the hub calls, every request signed.

The vendor API (``/api/v1``; documented in ``docs/plugins/vang.md``)::

    GET     /api/v1/device                 identity: serial, MAC, model, firmware, network
    GET     /api/v1/status                 volume, what plays, power, signal, alarms, log cursor
    GET|PUT /api/v1/volume                 {"level": 0-100}
    POST    /api/v1/play                   {"url", "sha256", "size", "duration", "repeat",
                                            "priority": 1-9, "volume", "tag", "client_data"}
    POST    /api/v1/stop                   {} | {"job_id"} | {"tag"}
    POST    /api/v1/test-tone              {"frequency", "seconds", "volume"}
    GET     /api/v1/playlog?after=N&limit=M   start/end entries of jobs, oldest first
    POST    /api/v1/reboot

Every request carries ``X-Vang-Key``, ``X-Vang-Timestamp``, ``X-Vang-Nonce``,
``X-Vang-Signature`` and optionally ``X-Vang-Device`` (the serial it is meant for); the
signature is HMAC-SHA256 over the canonical request (:mod:`ttcs.adapters.signing` describes
it; this module checks it on its own, as firmware would). Refused with ``401``: a missing
header (``missing_auth``), an unknown key id (``unknown_key``), a timestamp more than 30 s
from the device clock or from before the device booted (``stale_request``, with
``device_time``), a bad signature (``bad_signature``), a nonce seen before
(``replayed_nonce``). ``421 wrong_device`` when ``X-Vang-Device`` names another serial.

Playing: a job of priority >= the current one's preempts it, a lower one is refused with
``409 busy``; a test tone plays only when nothing else does. Files (with ``sha256``) are
fetched and checked before the answer (``424 media_unavailable``, ``422
checksum_mismatch``); streams play until their source ends (``stream_seconds`` here). The
speaker has no idempotency keys: a repeated request plays again.

Faults (see :class:`~ttcs.simulators.base.Fault` and :mod:`ttcs.simulators.http_device`):
``offline`` closes the port; ``power_loss`` cuts the job short and closes the port until
cleared, then boots (new ``boot_id``, forgotten nonces, a ``power_lost`` log entry);
``power_loss_battery`` runs on battery; ``reboot`` restarts, optionally with a new
``firmware``; ``wrong_credentials`` — the speaker's secret was changed (``secret`` param), so
every hub signature fails; ``playback_error`` makes jobs fail part-way; ``tamper`` raises the
``tamper`` alarm; ``hang``, ``slow``, ``garbage``, ``drop_connection`` as every HTTP device.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from ..schemas import DeviceKind
from .base import Fault, Fleet, PlayRecord, Rejection, SimOptions, SimulatedDevice, SimulatorSpec
from .base import now as utcnow
from .http_device import HttpDeviceServer

VENDOR = "VangTech"
API = "/api/v1"
SCHEME = "VANG1-HMAC-SHA256"
SKEW_WINDOW = 30.0  # seconds a request's timestamp may be off the device clock
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
NONCES_KEPT = 10_000  # at most this many requests per minute are accepted
LOG_KEPT = 500
TONE_PRIORITY = 0  # below every job: any play preempts a tone, a tone preempts nothing
#: what a job's log result means in the ground truth's terms
OUTCOMES = {"completed": "finished", "stopped": "stopped", "preempted": "interrupted",
            "error": "failed", "power_lost": "power_lost", "reboot": "interrupted"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def priority_class(priority: int) -> str:
    """The vendor's name for a priority band (its web UI shows it): 1-3 normal, 4-6 priority,
    7-9 emergency."""
    if priority == TONE_PRIORITY:
        return "test"
    return "normal" if priority <= 3 else "priority" if priority <= 6 else "emergency"


class Refusal(Exception):
    """A request the speaker refuses: HTTP status, error code, message, extra body fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


@dataclass
class Job:
    id: str
    kind: str  # play | tone
    priority: int
    volume: int
    seconds: float
    record: PlayRecord
    started: float  # device clock
    url: str | None = None
    tag: str | None = None
    repeat: int = 1
    client_data: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.id, "kind": self.kind, "tag": self.tag, "url": self.url,
                "priority": self.priority, "volume": self.volume, "repeat": self.repeat,
                "seconds": self.seconds, "started_at": _iso(self.started),
                "client_data": self.client_data}


class VangSpeaker(SimulatedDevice):
    """One VangTech speaker serving its signed REST API on its own port."""

    def __init__(self, serial: str, *, host: str = "127.0.0.1", port: int = 0,
                 key_id: str = "hub", secret: str = "vang-secret",  # noqa: S107 - a simulator's
                 firmware: str = "2.7.1", mac: str | None = None, model: str = "VT-IPS40-4G",
                 stream_seconds: float = 5.0, clock_offset: float = 0.0,
                 cert: str | None = None, key: str | None = None) -> None:
        super().__init__(serial)
        self.server = HttpDeviceServer(self, host=host, port=port, cert=cert, key=key,
                                       garbage_prefix=b"\x00\xffVT")
        self.key_id, self.secret = key_id, secret
        self.firmware, self.mac, self.model = firmware, mac, model
        self.stream_seconds = stream_seconds
        self.clock_offset = clock_offset  # a device clock that is off by this many seconds
        self.volume = 60
        self.temperature = 38.5
        self.signal = -71
        self.current: Job | None = None
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_KEPT)
        self.log_epoch = uuid.uuid4().hex[:12]  # new only at a factory reset
        self.log_seq = 0
        self.polls: deque[float] = deque(maxlen=5000)  # monotonic times of GET /status
        self.auth_refusals = 0
        self._nonces: OrderedDict[str, float] = OrderedDict()
        self._jobs = 0
        self._on_battery_since: float | None = None
        self._lost: tuple[Job, float] | None = None  # the job a power cut interrupted
        self._http: aiohttp.ClientSession | None = None
        self._boot()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.server.listen(self._app())

    async def stop(self) -> None:
        await self.server.close()
        if self.current is not None:
            self._end(self.current, "stopped")
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self.server.faults, self._authenticate],
                              client_max_size=64 * 1024)
        r = app.router
        r.add_get(f"{API}/device", self._device)
        r.add_get(f"{API}/status", self._status)
        r.add_get(f"{API}/volume", self._volume_get)
        r.add_put(f"{API}/volume", self._volume_put)
        r.add_post(f"{API}/play", self._play)
        r.add_post(f"{API}/stop", self._stop)
        r.add_post(f"{API}/test-tone", self._test_tone)
        r.add_get(f"{API}/playlog", self._playlog)
        r.add_post(f"{API}/reboot", self._reboot)
        return app

    def _boot(self) -> None:
        self.booted_at = time.monotonic()
        self.boot_clock = self.clock()
        self.boot_id = uuid.uuid4().hex[:12]
        self._nonces.clear()  # RAM: gone with the power, hence the boot-time check

    def clock(self) -> float:
        """The device's clock (Unix seconds)."""
        return time.time() + self.clock_offset

    @property
    def url(self) -> str:
        return self.server.url

    # -- authentication: what the firmware checks before anything else -------------------------

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler
                            ) -> web.StreamResponse:
        body = await request.read()
        try:
            self._verify(request, body)
            return await handler(request)
        except Refusal as refusal:
            return self._refuse(request, refusal)

    def _verify(self, request: web.Request, body: bytes) -> None:
        h = request.headers
        key, stamp = h.get("X-Vang-Key"), h.get("X-Vang-Timestamp")
        nonce, signature = h.get("X-Vang-Nonce"), h.get("X-Vang-Signature")
        target = h.get("X-Vang-Device", "")
        if not (key and stamp and nonce and signature):
            raise Refusal(401, "missing_auth", "send X-Vang-Key, X-Vang-Timestamp, "
                          "X-Vang-Nonce and X-Vang-Signature")
        if key != self.key_id:
            raise Refusal(401, "unknown_key", f"no key '{key[:40]}' on this speaker")
        if not stamp.isdigit() or not NONCE.match(nonce):
            raise Refusal(401, "bad_request_auth", "timestamp must be Unix seconds, nonce "
                          "16-64 characters of A-Z a-z 0-9 _ -")
        now = self.clock()
        if abs(now - int(stamp)) > SKEW_WINDOW or int(stamp) < int(self.boot_clock):
            raise Refusal(401, "stale_request", f"timestamp {stamp} is outside ±"
                          f"{SKEW_WINDOW:g} s of the device clock or before its boot",
                          device_time=round(now, 3))
        secret = self.secret if not self.has(Fault.WRONG_CREDENTIALS) else str(
            self.faults[Fault.WRONG_CREDENTIALS].get("secret", "factory-reset-secret"))
        expected = hmac.new(secret.encode(), _canonical(request, target, stamp, nonce, body)
                            .encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise Refusal(401, "bad_signature", "signature does not match the request")
        if nonce in self._nonces:  # checked after the signature: junk never fills the cache
            raise Refusal(401, "replayed_nonce", "this nonce was used before")
        self._remember(nonce, int(stamp) + SKEW_WINDOW, now)
        if target and target != self.serial:
            raise Refusal(421, "wrong_device", f"this is speaker {self.serial}, not {target}",
                          serial=self.serial)

    def _remember(self, nonce: str, expires: float, now: float) -> None:
        while self._nonces and next(iter(self._nonces.values())) < now:
            self._nonces.popitem(last=False)
        if len(self._nonces) >= NONCES_KEPT:
            self._nonces = OrderedDict((n, e) for n, e in self._nonces.items() if e >= now)
            if len(self._nonces) >= NONCES_KEPT:
                raise Refusal(503, "busy", "too many requests in the last minute")
        self._nonces[nonce] = expires

    def _refuse(self, request: web.Request, refusal: Refusal) -> web.Response:
        if refusal.status in (401, 421):
            self.auth_refusals += 1
        self.truth.rejections.append(Rejection(utcnow(), f"{request.method} {request.path}",
                                               None, refusal.code, str(refusal)))
        return web.json_response({"error": refusal.code, "message": str(refusal),
                                  **refusal.extra}, status=refusal.status)

    # -- identity and status ------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {"serial": self.serial, "mac": self.mac, "vendor": VENDOR, "model": self.model,
                "firmware": self.firmware, "hardware": "rev C", "amplifier_watts": 40,
                "codecs": ["mp3", "aac", "wav", "opus"],
                "network": {"iface": "4g", "ip": self.server.host}}

    async def _device(self, request: web.Request) -> web.Response:
        return web.json_response(self.identity())

    @property
    def battery(self) -> int | None:
        if self._on_battery_since is None:
            return None
        return max(0, 96 - int((time.monotonic() - self._on_battery_since) / 60))

    def status_body(self) -> dict[str, Any]:
        job = self.current
        state = "idle" if job is None else "tone" if job.kind == "tone" else "playing"
        alarms = ["tamper"] if self.has(Fault.TAMPER) else []
        return {
            "serial": self.serial, "firmware": self.firmware, "boot_id": self.boot_id,
            "uptime": round(time.monotonic() - self.booted_at, 1), "clock": round(
                self.clock(), 3), "volume": self.volume, "state": state,
            "job": job.to_json() if job else None,
            "power": {"source": "battery" if self._on_battery_since else "mains",
                      "battery": self.battery},
            "network": {"iface": "4g", "rssi_dbm": self.signal},
            "temperature": self.temperature, "alarms": alarms,
            "log": {"epoch": self.log_epoch, "seq": self.log_seq}}

    async def _status(self, request: web.Request) -> web.Response:
        self.polls.append(time.monotonic())
        return web.json_response(self.status_body())

    # -- volume -------------------------------------------------------------------------------

    async def _volume_get(self, request: web.Request) -> web.Response:
        return web.json_response({"level": self.volume})

    async def _volume_put(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        self._command(request, body)
        level: Any = body.get("level")
        if not _is_int(level, 0, 100):
            raise Refusal(422, "invalid_request", "level must be an integer 0-100")
        self.volume = int(level)
        self.truth.volume_changes.append((utcnow(), self.volume))
        return web.json_response({"level": self.volume})

    def _command(self, request: web.Request, body: dict[str, Any]) -> None:
        self.truth.commands.append({"at": utcnow(), "method": request.method,
                                    "path": request.path, "body": body,
                                    "nonce": request.headers.get("X-Vang-Nonce")})

    # -- playing ------------------------------------------------------------------------------

    async def _play(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        self._command(request, body)
        url, sha256, size = body.get("url"), body.get("sha256"), body.get("size")
        priority, repeat = body.get("priority", 3), body.get("repeat", 1)
        volume, tag, client = body.get("volume"), body.get("tag"), body.get("client_data")
        duration = body.get("duration")
        problems = [text for bad, text in (
            (not isinstance(url, str) or not url.startswith(("http://", "https://"))
             or len(url) > 2048, "url must be an http(s) URL"),
            (sha256 is not None and not (isinstance(sha256, str)
                                         and re.fullmatch(r"[0-9a-f]{64}", sha256)),
             "sha256 must be 64 lower-case hex digits"),
            (size is not None and not _is_int(size, 0, 2**40), "size must be bytes"),
            (duration is not None and not (isinstance(duration, int | float)
                                           and 0 < duration <= 86400),
             "duration must be 0-86400 seconds"),
            (not _is_int(priority, 1, 9), "priority must be 1-9"),
            (not _is_int(repeat, 1, 100), "repeat must be 1-100"),
            (volume is not None and not _is_int(volume, 0, 100), "volume must be 0-100"),
            (tag is not None and not (isinstance(tag, str) and len(tag) <= 64),
             "tag must be text of at most 64 characters"),
            (client is not None and not (isinstance(client, dict)
                                         and len(json.dumps(client)) <= 512),
             "client_data must be an object of at most 512 bytes"),
        ) if bad]
        if problems:
            raise Refusal(422, "invalid_request", "; ".join(problems))
        self._check_free(priority)
        if sha256 is not None:
            await self._fetch_and_check(str(url), sha256, size)
            self._check_free(priority)  # something may have started while fetching
            seconds = round(float(duration or 1.0) * repeat, 3)
        else:
            seconds = self.stream_seconds  # a stream plays until its source ends
        job_volume = self.volume if volume is None else int(volume)
        record = PlayRecord(started_at=utcnow(), content_id=tag,
                            command_id=_text(client, "command_id"),
                            broadcast_id=_text(client, "broadcast_id"),
                            level=priority_class(priority), volume=job_volume, source=url)
        job = self._begin(Job(self._job_id(), "play", priority, job_volume, seconds, record,
                              self.clock(), url=url, tag=tag, repeat=repeat,
                              client_data=client))
        return web.json_response({"job_id": job.id, "state": "playing", "seconds": seconds},
                                 status=202)

    def _check_free(self, priority: int) -> None:
        job = self.current
        if job is not None and priority < job.priority:
            raise Refusal(409, "busy", f"playing a priority {job.priority} "
                          f"({priority_class(job.priority)}) job; priority {priority} cannot "
                          "interrupt it", job=job.to_json())

    async def _fetch_and_check(self, url: str, sha256: str, size: int | None) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise Refusal(424, "media_unavailable", f"GET {url} answered "
                                  f"{response.status}")
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Refusal(424, "media_unavailable", f"cannot fetch {url}: {exc!r}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256 or (size is not None and len(data) != size):
            raise Refusal(422, "checksum_mismatch", f"the file has sha256 {digest[:12]}… and "
                          f"{len(data)} bytes, not what the request says")

    def _job_id(self) -> str:
        self._jobs += 1
        return f"j{self._jobs}-{self.boot_id[:4]}"

    def _begin(self, job: Job) -> Job:
        if self.current is not None:
            self._end(self.current, "preempted")
        job.record.started_at = utcnow()  # after the preempted one ended: never two at once
        job.started = self.clock()
        self.current = job
        self.truth.plays.append(job.record)
        self._log("start", job)
        job.task = asyncio.create_task(self._playing(job))
        return job

    async def _playing(self, job: Job) -> None:
        if self.has(Fault.PLAYBACK_ERROR):  # the decoder/amplifier gives up part-way
            await asyncio.sleep(min(job.seconds / 2, 0.1))
            self._end(job, "error")
            return
        await asyncio.sleep(job.seconds)
        self._end(job, "completed")

    def _end(self, job: Job, result: str, at: float | None = None) -> None:
        if self.current is not job:
            return
        self.current = None
        task, job.task = job.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        job.record.ended_at, job.record.outcome = utcnow(), OUTCOMES[result]
        self._log("end", job, result=result, at=at)

    def _log(self, event: str, job: Job, *, result: str | None = None,
             at: float | None = None) -> None:
        self.log_seq += 1
        entry = {"seq": self.log_seq, "event": event, "job_id": job.id, "kind": job.kind,
                 "tag": job.tag, "url": job.url, "priority": job.priority,
                 "volume": job.volume, "at": _iso(at if at is not None else self.clock()),
                 "client_data": job.client_data}
        if result is not None:
            entry["result"] = result
        self.log.append(entry)

    async def _stop(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        self._command(request, body)
        job = self.current
        if job is None or any(key in body and body[key] != getattr(job, attr) for key, attr in
                              (("job_id", "id"), ("tag", "tag"))):
            return web.json_response({"stopped": None})
        self._end(job, "stopped")
        return web.json_response({"stopped": job.id})

    async def _test_tone(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        self._command(request, body)
        frequency, seconds = body.get("frequency", 1000), body.get("seconds", 3)
        volume, client = body.get("volume"), body.get("client_data")
        if not _is_int(frequency, 20, 20000) or not (
                isinstance(seconds, int | float) and 0.1 <= seconds <= 60) or (
                volume is not None and not _is_int(volume, 0, 100)):
            raise Refusal(422, "invalid_request", "frequency 20-20000 Hz, seconds 0.1-60, "
                          "volume 0-100")
        if client is not None and not isinstance(client, dict):
            raise Refusal(422, "invalid_request", "client_data must be an object")
        self._check_free(TONE_PRIORITY + 1)  # a tone never interrupts anything
        job_volume = self.volume if volume is None else int(volume)
        record = PlayRecord(started_at=utcnow(), command_id=_text(client, "command_id"),
                            level="test", volume=job_volume, source=f"tone:{frequency}Hz")
        job = self._begin(Job(self._job_id(), "tone", TONE_PRIORITY, job_volume,
                              float(seconds), record, self.clock(), tag="test-tone",
                              client_data=client))
        return web.json_response({"job_id": job.id, "state": "tone", "seconds": seconds},
                                 status=202)

    async def _playlog(self, request: web.Request) -> web.Response:
        after, limit = request.query.get("after", "0"), request.query.get("limit", "50")
        if not (after.isdigit() and limit.isdigit() and 1 <= int(limit) <= 200):
            raise Refusal(400, "invalid_request", "after: a sequence number, limit: 1-200")
        entries = [e for e in self.log if e["seq"] > int(after)][:int(limit)]
        return web.json_response({"epoch": self.log_epoch, "last_seq": self.log_seq,
                                  "first_seq": self.log[0]["seq"] if self.log else None,
                                  "entries": entries})

    async def _reboot(self, request: web.Request) -> web.Response:
        self._command(request, {})
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(
            self._restart({"seconds": 0.3})))
        return web.json_response({"rebooting": True}, status=202)

    async def _restart(self, params: dict[str, Any]) -> None:
        if self.current is not None:
            self._end(self.current, "reboot")
        await self.server.close()
        await asyncio.sleep(float(params.get("seconds", 0.5)))
        self.firmware = str(params.get("firmware", self.firmware))
        self._boot()
        await self.server.listen(self._app())

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            await (self.server.close() if active else self.server.listen(self._app()))
        elif fault is Fault.POWER_LOSS:
            if active:
                await self._lose_power()
            else:
                self._boot()
                if self._lost is not None:  # written at boot: the job it was playing died
                    job, at = self._lost
                    self._lost = None
                    self._log("end", job, result="power_lost", at=at)
                await self.server.listen(self._app())
        elif fault is Fault.POWER_LOSS_BATTERY:
            self._on_battery_since = time.monotonic() if active else None
        elif fault is Fault.REBOOT and active:
            await self._restart(params)
        else:  # drop_connection, end of hang; the rest is consulted per request or job
            self.server.on_fault(fault, active=active)

    async def _lose_power(self) -> None:
        job = self.current
        if job is not None:
            self.current = None
            if job.task is not None:
                job.task.cancel()
            job.record.ended_at, job.record.outcome = utcnow(), "power_lost"
            self._lost = (job, self.clock())
        await self.server.close()

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        job = self.current
        return {"volume": self.volume, "firmware": self.firmware,
                "listening": self.server.listening, "boot_id": self.boot_id,
                "playing": (job.tag or job.url) if job else None,
                "priority": job.priority if job else None,
                "power_source": "battery" if self._on_battery_since else "mains",
                "battery": self.battery, "log_seq": self.log_seq, "polls": len(self.polls)}

    def registration(self) -> dict[str, Any]:
        return {"plugin": "vang", "kind": DeviceKind.IP_SPEAKER.value,
                "config": {"url": self.url, "key_id": self.key_id, "secret": self.secret}}

    def connection_info(self) -> dict[str, Any]:
        return {"protocol": "vang-http/1", "url": self.url, "serial": self.serial,
                "key_id": self.key_id, "secret": self.secret,
                "add": f"ttcs devices add --plugin vang --kind ip_speaker --area AREA "
                       f"--config url={self.url} --config key_id={self.key_id} "
                       f"--config secret={self.secret}",
                "sign": "HMAC-SHA256, headers X-Vang-Key/-Timestamp/-Nonce/-Signature "
                        "(docs/plugins/vang.md)"}


def _canonical(request: web.Request, target: str, stamp: str, nonce: str, body: bytes) -> str:
    """The canonical request, rebuilt from what arrived (docs/plugins/vang.md)."""
    unreserved = "-_.~"
    query = "&".join(f"{quote(k, safe=unreserved)}={quote(v, safe=unreserved)}"
                     for k, v in sorted(request.query.items()))
    return "\n".join((SCHEME, request.method, quote(request.path, safe="/" + unreserved),
                      query, target, stamp, nonce, hashlib.sha256(body).hexdigest()))


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise Refusal(400, "bad_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Refusal(400, "bad_json", "the body must be a JSON object")
    return body


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _text(data: dict[str, Any] | None, key: str) -> str | None:
    value = (data or {}).get(key)
    return value if isinstance(value, str) else None


def _iso(clock: float) -> str:
    return datetime.fromtimestamp(clock, UTC).isoformat(timespec="milliseconds")


async def build(options: SimOptions) -> Fleet:
    prefix = options.serial_prefix or "VT"
    first = int(options.extra.get("first", "1"))
    devices: list[SimulatedDevice] = []
    for n in range(first, first + options.count):
        port = options.port + (n - first) if options.port else 0
        devices.append(VangSpeaker(
            f"{prefix}-{n:04d}", host=options.host, port=port,
            key_id=options.extra.get("key_id", "hub"),
            secret=options.extra.get("secret", "vang-secret"),
            firmware=options.extra.get("firmware", "2.7.1"), mac=_mac(prefix, n),
            stream_seconds=float(options.extra.get("stream_seconds", "5")),
            clock_offset=float(options.extra.get("clock_offset", "0")),
            cert=options.extra.get("cert"), key=options.extra.get("key")))
    return Fleet(devices, info={"vendor": VENDOR})


def _mac(prefix: str, n: int) -> str:
    digest = hashlib.sha256(f"vang-{prefix}-{n}".encode()).digest()
    return ":".join(f"{b:02X}" for b in (b"\x02" + digest[:5]))


SPEC = SimulatorSpec(
    name="vang", kinds=(DeviceKind.IP_SPEAKER.value,), protocol="http (vang-http/1, HMAC)",
    description="VangTech IP/4G speaker the hub calls: REST/JSON, every request HMAC-signed "
                "(--option secret=..., key_id=..., stream_seconds=..., clock_offset=...)",
    build=build)


__all__ = ["SPEC", "VangSpeaker", "build", "priority_class"]
