"""Driver for LEDViet boards: the hub pushes to the board's REST/JSON API (bearer token).

How hub commands map to the vendor API (see ``docs/plugins/ledviet.md``):

- ``show``: the text is uploaded as a ``text/plain`` asset and the media (fetched from the
  hub's media store and checked against its SHA-256) as an image/video asset, both addressed
  by their SHA-256; then the playlist is read, the item added (replacing an item with the same
  id) and written back with ``If-Match`` so a concurrent change is never lost. ``seconds``
  becomes the item's duration *and* ends its validity that long after it starts, so the item
  shows for that long and goes; without ``seconds`` it rotates every ``dwell_seconds`` until
  cleared or ``valid_until``. An emergency item preempts the rest while valid.
- ``clear``: an empty playlist. ``set_brightness``, ``power``, ``reboot``: one call each.
- ``screenshot``: the board's PNG, base64 in ``CommandResult.data`` with the current item.

Every mutating call carries an ``Idempotency-Key`` derived from the command's key, so a
repeated command changes nothing on the board even from another process; the driver also
keeps the first result per key. The board's power schedule comes from the device config and
is re-applied whenever a poll finds the board holding another one.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from ...adapters.errors import map_decode_errors
from ...adapters.rest import RestDevice, fetch_verified
from ...core.driver import DeviceDriver, DriverConfig
from ...core.errors import CommandRejected
from ...core.idempotency import RecentResults
from ...schemas import (
    Activity,
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
    PowerSource,
    RebootCommand,
    ScreenshotCommand,
    SetBrightnessCommand,
    ShowCommand,
)
from ...schemas.base import utcnow
from ..display_common import png_size, remembered, show_window, time_of_day

API = "/api/v2"
RESULTS_KEPT = 200


class LedVietConfig(DriverConfig):
    url: str = Field(description="board API base, e.g. http://10.0.0.5:8080 (https for TLS)",
                     pattern=r"^https?://")
    token: SecretStr = Field(description="the board's API bearer token")
    ca_file: str | None = Field(default=None, description="CA file for an https board")
    verify_tls: bool = Field(default=True, description="false: accept a self-signed "
                             "certificate (only on a closed network)")
    timeout: float | None = Field(default=None, gt=0, description="seconds per request "
                                  "(default: the hub's command timeout)")
    dwell_seconds: float = Field(default=10.0, ge=1, le=3600,
                                 description="how long an item shows per turn by default")
    poll_interval: float | None = Field(default=None, ge=0.1, le=3600,
                                        description="seconds between status polls (default "
                                        "15)")
    power_on: str | None = Field(default=None, description="daily switch-on time HH:MM "
                                 "(local time); with power_off")
    power_off: str | None = Field(default=None, description="daily switch-off time HH:MM")

    @field_validator("power_on", "power_off")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        return time_of_day(value)

    @property
    def schedule(self) -> dict[str, str] | None:
        if self.power_on and self.power_off:
            return {"on": self.power_on, "off": self.power_off}
        return None


class LedVietBoardDriver(DeviceDriver):
    """An LEDViet LED or LCD board. Poll: the hub's shared poller reads its status."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.LED_BOARD,
                                                        DeviceKind.LCD_BOARD})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.DISPLAY_TEXT, Capability.DISPLAY_MEDIA, Capability.DISPLAY_BRIGHTNESS,
        Capability.DISPLAY_SCREENSHOT, Capability.POWER, Capability.REBOOT})
    config_model = LedVietConfig
    iot_class = IotClass.POLL
    poll_interval = 15.0

    _api: RestDevice | None = None

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._results = RecentResults(RESULTS_KEPT)

    @property
    def config(self) -> LedVietConfig:
        return self.context.config  # type: ignore[no-any-return]

    @property
    def api(self) -> RestDevice:
        if self._api is None:
            cfg = self.config
            self._api = RestDevice(self.context.transports, cfg.url, token=cfg.token,
                                   timeout=cfg.timeout or self.context.settings.command_timeout,
                                   ca_file=cfg.ca_file, verify_tls=cfg.verify_tls)
        return self._api

    # -- identity and status ------------------------------------------------------------------

    async def probe(self) -> DeviceInfo:
        data = await self.api.json("GET", f"{API}/device", what="reading board identity")
        with map_decode_errors("board identity"):
            kind = DeviceKind.LCD_BOARD if data["display"] == "lcd" else DeviceKind.LED_BOARD
            return DeviceInfo(
                serial=data["serial"], mac=data.get("mac"), vendor=data.get("vendor", "LEDViet"),
                model=data["model"], firmware=data.get("firmware", "unknown"), kind=kind,
                capabilities=sorted(self.capabilities), address=self.config.url,
                extra={"resolution": data.get("resolution"), "storage": data.get("storage")})

    async def read_status(self) -> DeviceStatus:
        data = await self.api.json("GET", f"{API}/status", what="reading board status")
        with map_decode_errors("board status"):
            status = self._status(data)
            wanted = self.config.schedule
            if data.get("schedule") != wanted:  # drifted (factory reset, someone on site)
                await self.api.json("PUT", f"{API}/power/schedule", json_body=wanted or {},
                                    what="applying the power schedule")
                status.telemetry["power_schedule"] = _schedule_text(wanted)
        return status

    @staticmethod
    def _status(data: dict[str, Any]) -> DeviceStatus:
        screen, power = data["screen"], data["power"]
        storage = data.get("storage") or {}
        on_battery = power.get("source") == "battery"
        if not screen.get("lit"):
            activity = Activity.OFF
        elif screen.get("item_id"):
            activity = Activity.DISPLAYING
        else:
            activity = Activity.IDLE
        faults = ["on_battery"] if on_battery else []
        if storage.get("total") and storage.get("free", 1) / storage["total"] < 0.05:
            faults.append("storage_low")
        telemetry: dict[str, float | int | str | bool] = {
            "uptime_s": float(data.get("uptime", 0)),
            "storage_total_mb": round(storage.get("total", 0) / 1048576, 1),
            "storage_free_mb": round(storage.get("free", 0) / 1048576, 1),
            "playlist_version": int(data.get("playlist", {}).get("version", 0)),
            "playlist_items": int(data.get("playlist", {}).get("items", 0)),
            "lit": bool(screen.get("lit")),
            "power_schedule": _schedule_text(data.get("schedule")),
        }
        if screen.get("dark_reason"):
            telemetry["dark_reason"] = str(screen["dark_reason"])
        if screen.get("text"):
            telemetry["current_text"] = str(screen["text"])[:200]
        return DeviceStatus(
            activity=activity, brightness=data["brightness"]["effective"],
            power_source=PowerSource.BATTERY if on_battery else PowerSource.MAINS,
            battery=power.get("battery"), temperature=data.get("temperature"),
            firmware=data.get("firmware"), faults=faults, current_item=screen.get("item_id"),
            telemetry=telemetry)

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        return await self._results.run(command, lambda: self._carry_out(command),
                                       kept=remembered)

    async def _carry_out(self, command: Command) -> CommandResult:
        try:
            return await self._execute(command)
        except CommandRejected as exc:
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code=exc.code, detail=str(exc)[:2000])

    async def _execute(self, command: Command) -> CommandResult:
        key = command.idempotency_key

        def done(status: CommandStatus = CommandStatus.DONE, **data: Any) -> CommandResult:
            return CommandResult(command_id=command.id, status=status, data=data)

        if isinstance(command, ShowCommand):
            return done(**await self._show(command))
        if isinstance(command, ClearCommand):
            body = await self.api.json("PUT", f"{API}/playlist", json_body={"items": []},
                                       headers={"Idempotency-Key": f"{key}:playlist"},
                                       what="clearing the playlist")
            return done(playlist_version=body.get("version") if isinstance(body, dict) else None)
        if isinstance(command, SetBrightnessCommand):
            body = await self.api.json("PUT", f"{API}/display/brightness",
                                       json_body={"level": command.brightness},
                                       headers={"Idempotency-Key": key},
                                       what="setting brightness")
            return done(brightness=body.get("level") if isinstance(body, dict) else None)
        if isinstance(command, PowerCommand):
            await self.api.json("PUT", f"{API}/power", json_body={"on": command.on},
                                headers={"Idempotency-Key": key}, what="switching power")
            return done(on=command.on)
        if isinstance(command, ScreenshotCommand):
            return done(**await self._screenshot())
        if isinstance(command, RebootCommand):
            await self.api.json("POST", f"{API}/system/reboot", json_body={},
                                headers={"Idempotency-Key": key}, what="rebooting")
            return done(CommandStatus.ACCEPTED)
        raise CommandRejected(f"an LEDViet board does not do '{command.type}'",
                              code="unsupported")

    async def _upload(self, data: bytes, mime: str, key: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        head = await self.api.request("HEAD", f"{API}/assets/{sha}", what="checking an asset",
                                      ok_statuses=(404,))
        if head.status == 404:
            put = await self.api.request(
                "PUT", f"{API}/assets/{sha}", data=data, ok_statuses=(507,),
                headers={"Content-Type": mime, "Idempotency-Key": f"{key}:asset:{sha[:16]}"},
                what=f"uploading a {len(data)}-byte asset")
            if put.status == 507:
                raise CommandRejected(f"the board's storage is full: {put.body[:200]!r}",
                                      code="storage_full")
        return sha

    async def _show(self, command: ShowCommand) -> dict[str, Any]:
        key = command.idempotency_key
        item_id = command.content_id or key
        duration, valid_from, valid_until = show_window(command, self.config.dwell_seconds,
                                                        command.issued_at or utcnow())
        item: dict[str, Any] = {
            "id": item_id, "duration": duration, "priority": command.level.rank,
            "valid_from": valid_from.isoformat() if valid_from else None,
            "valid_until": valid_until.isoformat() if valid_until else None}
        if command.text:
            item["text_asset"] = await self._upload(command.text.encode(),
                                                    "text/plain; charset=utf-8", key)
        if command.media is not None:
            timeout = self.config.timeout or self.context.settings.command_timeout
            data = await fetch_verified(self.context.transports, command.media, timeout=timeout)
            item["media_asset"] = await self._upload(data, command.media.mime, key)
        for attempt in (1, 2):  # If-Match: someone else may have changed the playlist
            current = await self.api.json("GET", f"{API}/playlist", what="reading the playlist")
            with map_decode_errors("board playlist"):
                version = int(current["version"])
                items = [i for i in current["items"] if i["id"] != item_id]
            written = await self.api.request(
                "PUT", f"{API}/playlist", json_body={"items": [*items, item]},
                headers={"If-Match": f'"{version}"',
                         "Idempotency-Key": f"{key}:playlist:{attempt}"},
                ok_statuses=(412,), what="writing the playlist")
            if written.status != 412:
                break
        else:
            raise CommandRejected("the board's playlist kept changing under us",
                                  code="playlist_conflict")
        body = written.json("writing the playlist")
        return {"item_id": item_id, "playlist_version": body.get("version")
                if isinstance(body, dict) else None,
                "valid_from": item["valid_from"], "valid_until": item["valid_until"]}

    async def _screenshot(self) -> dict[str, Any]:
        response = await self.api.request("GET", f"{API}/screenshot", what="taking a screenshot",
                                          headers={"Accept": "image/png"})
        png = response.body
        width, height = png_size(png)
        status = await self.api.json("GET", f"{API}/status", what="reading what is shown")
        with map_decode_errors("board status"):
            screen = status["screen"]
        return {"mime": "image/png", "png_base64": base64.b64encode(png).decode(),
                "width": width, "height": height, "current_item": screen.get("item_id"),
                "text": screen.get("text"), "lit": bool(screen.get("lit"))}


def _schedule_text(schedule: dict[str, str] | None) -> str:
    return f"{schedule['on']}-{schedule['off']}" if schedule else "none"
