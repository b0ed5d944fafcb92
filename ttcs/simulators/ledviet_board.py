"""A simulated LEDViet board: the REST/JSON API of a board the hub pushes to.

The vendor API (``/api/v2``, bearer token, JSON; documented in ``docs/plugins/ledviet.md``)::

    GET    /api/v2/device                  identity, resolution, storage
    GET    /api/v2/status                  power, brightness, what is shown, temperature, uptime
    PUT    /api/v2/assets/{sha256}         upload an asset (text, image, video) by content
    HEAD   /api/v2/assets/{sha256}         is it stored?    GET /api/v2/assets  list
    DELETE /api/v2/assets/{sha256}
    GET    /api/v2/playlist                {"version", "items"}
    PUT    /api/v2/playlist                replace it (If-Match: version → 412 if it moved)
    GET|PUT /api/v2/display/brightness     {"level": 0-100}
    GET|PUT /api/v2/power                  {"on": bool}
    GET|PUT /api/v2/power/schedule         {"on": "05:30", "off": "22:00"} or {} to remove
    GET    /api/v2/screenshot              image/png of what is on the screen now
    POST   /api/v2/system/reboot

Mutating requests honour an ``Idempotency-Key`` header: a repeated key gets the first
answer again and changes nothing. Errors are ``{"error": CODE, "message": TEXT}`` with 401
(token), 404, 409/412 (playlist moved), 422 (invalid item, missing asset, checksum), 507
(storage full).

Faults (see :class:`~ttcs.simulators.base.Fault`): ``offline`` closes the port; ``slow``
delays every answer; ``garbage`` answers 200 with bytes that are neither JSON nor PNG;
``drop_connection`` aborts the next request's connection; ``power_loss`` goes dark and
closes the port until cleared (playlist kept, uptime restarts); ``power_loss_battery`` runs on
battery with brightness capped; ``reboot`` restarts (optionally with a new ``firmware``);
``wrong_credentials`` — the board's token was reset, so it refuses the hub's until cleared;
``hang`` accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from ..schemas import DeviceKind
from .base import Fault, Fleet, Rejection, SimOptions, SimulatedDevice, SimulatorSpec
from .base import now as utcnow
from .board_display import BoardDisplay, BoardItem, BoardTruth, PowerSchedule
from .http_device import Handler, HttpDeviceServer

log = structlog.get_logger("ttcs.sim.ledviet")

VENDOR = "LEDViet"
API = "/api/v2"
MAX_ITEMS = 200


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


class LedVietBoard(SimulatedDevice):
    """One LEDViet board (LED or LCD) serving its REST API on ``host:port``."""

    def __init__(self, serial: str, *, host: str = "127.0.0.1", port: int = 0,
                 token: str = "lv-secret",  # noqa: S107 - a simulator's
                 display: str = "led", firmware: str = "3.2.1",
                 width: int | None = None, height: int | None = None,
                 storage_bytes: int = 64 * 1024 * 1024, mac: str | None = None,
                 cert: str | None = None, key: str | None = None) -> None:
        super().__init__(serial)
        self.truth: BoardTruth = BoardTruth()
        self.token = token
        self.display_type = display
        self.model = "LV-P10-OUT-320" if display == "led" else "LV-LCD55-FHD"
        self.firmware = firmware
        self.mac = mac
        self.width = width or (320 if display == "led" else 960)
        self.height = height or (160 if display == "led" else 540)
        self.storage_bytes = storage_bytes
        self.assets: dict[str, tuple[bytes, str]] = {}
        self.playlist_version = 0
        self.display = BoardDisplay(self.truth, width=self.width, height=self.height,
                                    led=display == "led", assets=self._asset_bytes)
        self.booted_at = time.monotonic()
        self.boot_id = uuid.uuid4().hex[:12]
        self._idempotent: OrderedDict[str, tuple[int, bytes, str]] = OrderedDict()
        self.server = HttpDeviceServer(self, host=host, port=port, cert=cert, key=key,
                                       garbage_prefix=b"\x00\xffLV")

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.display.start()
        await self._listen()

    async def stop(self) -> None:
        await self._close()
        await self.display.stop()

    async def _listen(self) -> None:
        app = web.Application(middlewares=[self.server.faults, self._auth, self._idempotency],
                              client_max_size=self.storage_bytes)
        r = app.router
        r.add_get(f"{API}/device", self._device)
        r.add_get(f"{API}/status", self._status)
        r.add_get(f"{API}/assets", self._assets_list)
        r.add_route("HEAD", f"{API}/assets/{{sha256}}", self._asset_head)
        r.add_get(f"{API}/assets/{{sha256}}", self._asset_get, allow_head=False)
        r.add_put(f"{API}/assets/{{sha256}}", self._asset_put)
        r.add_delete(f"{API}/assets/{{sha256}}", self._asset_delete)
        r.add_get(f"{API}/playlist", self._playlist_get)
        r.add_put(f"{API}/playlist", self._playlist_put)
        r.add_get(f"{API}/display/brightness", self._brightness_get)
        r.add_put(f"{API}/display/brightness", self._brightness_put)
        r.add_get(f"{API}/power", self._power_get)
        r.add_put(f"{API}/power", self._power_put)
        r.add_get(f"{API}/power/schedule", self._schedule_get)
        r.add_put(f"{API}/power/schedule", self._schedule_put)
        r.add_get(f"{API}/screenshot", self._screenshot)
        r.add_post(f"{API}/system/reboot", self._reboot)
        await self.server.listen(app)

    async def _close(self) -> None:
        await self.server.close()

    def _boot(self) -> None:
        self.booted_at = time.monotonic()
        self.boot_id = uuid.uuid4().hex[:12]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def dropped(self) -> int:
        """Connections aborted by ``drop_connection``."""
        return self.server.dropped

    # -- middlewares (after the server's faults): token, idempotency --------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self.token if not self.has(Fault.WRONG_CREDENTIALS) else (
            str(self.faults[Fault.WRONG_CREDENTIALS].get("token", "factory-reset-token")))
        given = request.headers.get("Authorization", "")
        if given != f"Bearer {token}":
            response = _error(401, "invalid_token", "missing or wrong bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="ledviet", error="invalid_token"'
            return response
        return await handler(request)

    @web.middleware
    async def _idempotency(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method in ("GET", "HEAD"):
            return await handler(request)
        self.truth.commands.append({"at": utcnow(), "method": request.method,
                                    "path": request.path, "idempotency_key": key})
        if key and key in self._idempotent:
            status, body, ctype = self._idempotent[key]
            replay = web.Response(body=body, status=status, content_type=ctype)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        response = await handler(request)
        if (key and isinstance(response, web.Response) and response.status < 500
                and isinstance(response.body, bytes | bytearray | None)):
            self._idempotent[key] = (response.status, bytes(response.body or b""),
                                     response.content_type)
            while len(self._idempotent) > 1000:
                self._idempotent.popitem(last=False)
        return response

    def _reject(self, request: web.Request, status: int, code: str, message: str
                ) -> web.Response:
        self.truth.rejections.append(Rejection(utcnow(), f"{request.method} {request.path}",
                                               request.headers.get("Idempotency-Key"), code,
                                               message))
        return _error(status, code, message)

    # -- identity and status ------------------------------------------------------------------

    @property
    def uptime(self) -> float:
        return round(time.monotonic() - self.booted_at, 1)

    @property
    def storage_used(self) -> int:
        return sum(len(data) for data, _ in self.assets.values())

    @property
    def temperature(self) -> float:
        lit = self.display.dark_reason() is None
        return round(31.0 + (self.display.effective_brightness * 0.12 if lit else 0), 1)

    def _identity(self) -> dict[str, Any]:
        return {"serial": self.serial, "vendor": VENDOR, "model": self.model,
                "firmware": self.firmware, "mac": self.mac, "display": self.display_type,
                "resolution": {"width": self.width, "height": self.height},
                "storage": {"total": self.storage_bytes,
                            "free": self.storage_bytes - self.storage_used}}

    async def _device(self, request: web.Request) -> web.Response:
        return web.json_response(self._identity())

    def status_body(self) -> dict[str, Any]:
        screen = self.display.snapshot()
        return {
            "serial": self.serial, "firmware": self.firmware, "boot_id": self.boot_id,
            "uptime": self.uptime, "temperature": self.temperature,
            "power": {"on": self.display.switched_on,
                      "source": "battery" if self.display.on_battery else "mains",
                      "battery": self.battery},
            "brightness": {"level": self.display.brightness,
                           "effective": self.display.effective_brightness},
            "schedule": self.display.schedule.to_json() if self.display.schedule else None,
            "screen": screen,
            "playlist": {"version": self.playlist_version, "items": len(self.display.items)},
            "storage": {"total": self.storage_bytes,
                        "free": self.storage_bytes - self.storage_used},
        }

    @property
    def battery(self) -> int:
        return 87 if self.display.on_battery else 100

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status_body())

    # -- assets -------------------------------------------------------------------------------

    def _asset_bytes(self, sha256: str) -> bytes | None:
        entry = self.assets.get(sha256)
        return entry[0] if entry else None

    async def _assets_list(self, request: web.Request) -> web.Response:
        return web.json_response([{"sha256": k, "size": len(v), "mime": m}
                                  for k, (v, m) in self.assets.items()])

    async def _asset_head(self, request: web.Request) -> web.Response:
        entry = self.assets.get(request.match_info["sha256"])
        if entry is None:
            return web.Response(status=404)
        return web.Response(status=200, headers={"Content-Length": str(len(entry[0])),
                                                 "Content-Type": entry[1]})

    async def _asset_get(self, request: web.Request) -> web.Response:
        entry = self.assets.get(request.match_info["sha256"])
        if entry is None:
            return _error(404, "no_asset", "no such asset")
        return web.Response(body=entry[0], content_type=entry[1].split(";")[0])

    async def _asset_put(self, request: web.Request) -> web.Response:
        sha = request.match_info["sha256"]
        body = await request.read()
        mime = request.headers.get("Content-Type", "application/octet-stream")
        if hashlib.sha256(body).hexdigest() != sha:
            return self._reject(request, 422, "checksum_mismatch",
                                "the body's sha256 is not the one in the URL")
        if sha in self.assets:
            return web.json_response({"sha256": sha, "size": len(body), "stored": "existing"})
        if self.storage_used + len(body) > self.storage_bytes:
            return self._reject(request, 507, "storage_full",
                                f"{len(body)} bytes do not fit in "
                                f"{self.storage_bytes - self.storage_used} free")
        self.assets[sha] = (body, mime)
        return web.json_response({"sha256": sha, "size": len(body), "stored": "new"},
                                 status=201)

    async def _asset_delete(self, request: web.Request) -> web.Response:
        sha = request.match_info["sha256"]
        if any(sha in (i.media, _text_sha(i)) for i in self.display.items):
            return self._reject(request, 409, "asset_in_use", "the playlist uses this asset")
        self.assets.pop(sha, None)
        return web.Response(status=204)

    # -- playlist -----------------------------------------------------------------------------

    def _playlist_json(self) -> dict[str, Any]:
        return {"version": self.playlist_version, "items": [self._item_json(i) for i in
                                                            self.display.items]}

    def _item_json(self, item: BoardItem) -> dict[str, Any]:
        return {"id": item.id, "text_asset": _text_sha(item), "media_asset": item.media,
                "duration": item.duration, "priority": item.priority,
                "valid_from": item.valid_from.isoformat() if item.valid_from else None,
                "valid_until": item.valid_until.isoformat() if item.valid_until else None}

    async def _playlist_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._playlist_json(),
                                 headers={"ETag": f'"{self.playlist_version}"'})

    async def _playlist_put(self, request: web.Request) -> web.Response:
        match = request.headers.get("If-Match")
        if match is not None and match.strip('"') != str(self.playlist_version):
            return _error(412, "version_moved", f"the playlist is at version "
                          f"{self.playlist_version}, not {match}")
        try:
            body = await request.json()
            raw_items = body["items"]
            if not isinstance(raw_items, list):
                raise TypeError("items must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return self._reject(request, 400, "bad_request", f"send {{\"items\": [...]}}: {exc}")
        items: list[BoardItem] = []
        problems: list[str] = []
        for raw in raw_items[:MAX_ITEMS + 1]:
            item, problem = self._parse_item(raw)
            if problem is not None:
                item_id = raw.get("id") if isinstance(raw, dict) else None
                self.truth.rejections.append(Rejection(utcnow(), "playlist_item", item_id,
                                                       problem[0], problem[1]))
                problems.append(f"{item_id}: {problem[1]}")
            elif item is not None:
                items.append(item)
        if len(raw_items) > MAX_ITEMS:
            problems.append(f"at most {MAX_ITEMS} items")
        if len({i.id for i in items}) != len(items):
            problems.append("item ids must be unique")
        if problems:
            return _error(422, "invalid_playlist", "; ".join(problems))
        self.playlist_version += 1
        self.display.set_playlist(items, self.playlist_version)
        return web.json_response(self._playlist_json(),
                                 headers={"ETag": f'"{self.playlist_version}"'})

    def _parse_item(self, raw: Any) -> tuple[BoardItem | None, tuple[str, str] | None]:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            return None, ("bad_item", "every item needs a string 'id'")
        text_sha, media_sha = raw.get("text_asset"), raw.get("media_asset")
        if not text_sha and not media_sha:
            return None, ("bad_item", "an item needs 'text_asset' or 'media_asset'")
        text = None
        if text_sha:
            entry = self.assets.get(text_sha)
            if entry is None:
                return None, ("missing_asset", f"text asset {text_sha[:12]}… is not uploaded")
            if not entry[1].startswith("text/"):
                return None, ("bad_item", "text_asset must be a text/plain asset")
            text = entry[0].decode("utf-8", errors="replace")
        mime = None
        if media_sha:
            entry = self.assets.get(media_sha)
            if entry is None:
                return None, ("missing_asset", f"media asset {media_sha[:12]}… is not uploaded")
            mime = entry[1]
            if not mime.startswith(("image/", "video/")):
                return None, ("bad_item", f"media asset is {mime}, not an image or video")
        try:
            duration = float(raw.get("duration", 10))
            valid_from = _time(raw.get("valid_from"))
            valid_until = _time(raw.get("valid_until"))
            priority = int(raw.get("priority", 0))
        except (TypeError, ValueError) as exc:
            return None, ("bad_item", str(exc))
        if not 0.5 <= duration <= 86400:
            return None, ("bad_item", "duration must be 0.5 to 86400 seconds")
        if valid_from and valid_until and valid_until <= valid_from:
            return None, ("invalid_window", "valid_until must be after valid_from")
        return BoardItem(id=raw["id"], text=text, media=media_sha, media_mime=mime,
                         duration=duration, valid_from=valid_from, valid_until=valid_until,
                         priority=priority), None

    # -- brightness, power, schedule ----------------------------------------------------------

    async def _brightness_get(self, request: web.Request) -> web.Response:
        return web.json_response({"level": self.display.brightness,
                                  "effective": self.display.effective_brightness})

    async def _brightness_put(self, request: web.Request) -> web.Response:
        try:
            level = (await request.json())["level"]
            if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
                raise ValueError("level must be an integer 0-100")
        except (ValueError, KeyError, TypeError) as exc:
            return self._reject(request, 422, "bad_level", str(exc))
        self.display.set_brightness(level)
        return await self._brightness_get(request)

    async def _power_get(self, request: web.Request) -> web.Response:
        return web.json_response({"on": self.display.switched_on,
                                  "lit": self.display.dark_reason() is None})

    async def _power_put(self, request: web.Request) -> web.Response:
        try:
            on = (await request.json())["on"]
            if not isinstance(on, bool):
                raise TypeError("on must be true or false")
        except (ValueError, KeyError, TypeError) as exc:
            return self._reject(request, 422, "bad_power", str(exc))
        self.display.switch(on)
        return await self._power_get(request)

    async def _schedule_get(self, request: web.Request) -> web.Response:
        schedule = self.display.schedule
        return web.json_response(schedule.to_json() if schedule else {})

    async def _schedule_put(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            schedule = PowerSchedule.parse(body["on"], body["off"]) if body else None
        except (ValueError, KeyError, TypeError) as exc:
            return self._reject(request, 422, "bad_schedule",
                                f"send {{\"on\": \"HH:MM\", \"off\": \"HH:MM\"}} or {{}}: {exc}")
        self.display.set_schedule(schedule)
        return await self._schedule_get(request)

    # -- screenshot, reboot -------------------------------------------------------------------

    async def _screenshot(self, request: web.Request) -> web.Response:
        png = self.display.render_png()
        return web.Response(body=png, content_type="image/png",
                            headers={"X-Item": self.display.current.id
                                     if self.display.current else ""})

    async def _reboot(self, request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(
            self._restart({"seconds": 0.3})))
        return web.json_response({"rebooting": True}, status=202)

    async def _restart(self, params: dict[str, Any]) -> None:
        await self._close()
        self.display.set_power(False)
        await asyncio.sleep(float(params.get("seconds", 0.5)))
        self.firmware = str(params.get("firmware", self.firmware))
        self._boot()
        self.display.set_power(True)
        await self._listen()

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            await (self._close() if active else self._listen())
        elif fault is Fault.POWER_LOSS:
            if active:
                await self._close()
                self.display.set_power(False)
            else:
                self._boot()
                self.display.set_power(True)
                await self._listen()
        elif fault is Fault.POWER_LOSS_BATTERY:
            self.display.set_battery(active)
        elif fault is Fault.REBOOT and active:
            await self._restart(params)
        else:  # drop_connection, end of hang; slow, garbage, wrong_credentials: per request
            self.server.on_fault(fault, active=active)

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {**self.status_body(), "listening": self.server.listening,
                "playlist_items": [i.summary() for i in self.display.items],
                "assets": len(self.assets)}

    def registration(self) -> dict[str, Any]:
        kind = "led_board" if self.display_type == "led" else "lcd_board"
        return {"plugin": "ledviet", "kind": kind,
                "config": {"url": self.url, "token": self.token}}

    def connection_info(self) -> dict[str, Any]:
        kind = "led_board" if self.display_type == "led" else "lcd_board"
        return {"protocol": "ledviet-rest/2", "url": self.url, "serial": self.serial,
                "token": self.token,
                "add": f"ttcs devices add --plugin ledviet --kind {kind} --area AREA "
                       f"--config url={self.url} --config token={self.token}",
                "curl": f"curl -H 'Authorization: Bearer {self.token}' {self.url}{API}/status"}


def _text_sha(item: BoardItem) -> str | None:
    return hashlib.sha256(item.text.encode()).hexdigest() if item.text is not None else None


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"time {value} needs a time zone")
    return parsed


async def build(options: SimOptions) -> Fleet:
    prefix = options.serial_prefix or "LV"
    display = options.extra.get("display", "led")
    token = options.extra.get("token", "lv-secret")
    first = int(options.extra.get("first", "1"))
    devices: list[SimulatedDevice] = []
    for n in range(first, first + options.count):
        port = options.port + (n - first) if options.port else 0
        devices.append(LedVietBoard(
            f"{prefix}-{n:04d}", host=options.host, port=port, token=token, display=display,
            firmware=options.extra.get("firmware", "3.2.1"), mac=_mac(prefix, n),
            cert=options.extra.get("cert"), key=options.extra.get("key")))
    return Fleet(devices, info={"vendor": VENDOR, "display": display})


def _mac(prefix: str, n: int) -> str:
    digest = hashlib.sha256(f"ledviet-{prefix}-{n}".encode()).digest()
    return ":".join(f"{b:02X}" for b in (b"\x02" + digest[:5]))


SPEC = SimulatorSpec(
    name="ledviet", kinds=(DeviceKind.LED_BOARD.value, DeviceKind.LCD_BOARD.value),
    protocol="http (ledviet-rest/2)",
    description="LEDViet LED/LCD board the hub pushes to: REST/JSON with a bearer token "
                "(--option display=lcd, token=..., cert=/key= for HTTPS)",
    build=build)


__all__ = ["SPEC", "LedVietBoard", "build"]
