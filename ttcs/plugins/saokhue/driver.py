"""Driver for Sao Khuê Radio 4G stations (SKR MQTT v2, :mod:`.protocol`).

How hub commands map to the station (details in ``docs/plugins/saokhue.md``):

- ``play`` → ``phat`` (media by URL with SHA-256 and size, or a live stream), ``stop`` →
  ``dung``, ``set_volume`` → ``am_luong``, ``test_tone`` → ``phat_thu``, ``reboot`` →
  ``khoi_dong_lai``; ``sync_schedule`` → ``dat_lich``, the hub's timeline packed into the
  firmware's rows of dates, weekdays and times (:mod:`.schedule`).
- Heartbeats become :class:`DeviceStatus`; reports become :class:`PlayEvent` proof of play,
  including slots the station *missed* while it was without power (``bo_lo`` → ``failed``).
- Offline: the station's last will, or ``offline_after`` heartbeat periods of silence (one
  watchdog per broker, :mod:`.bus`). A station whose clock is off is set right
  (``dong_bo_gio``), since it plays its schedule by its own clock.
- A command's ``msg_id`` derives from its idempotency key: the station answers a repeated one
  with its first answer, and the driver also keeps the first result per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, TypeAdapter, ValidationError, field_validator

from ...adapters.errors import with_timeout
from ...adapters.pool import Transports
from ...core.driver import DeviceDriver, DriverConfig
from ...core.errors import CommandRejected, ConfigError, DeviceError, DeviceUnreachable
from ...schemas import (
    Activity,
    AlarmEvent,
    AlarmSeverity,
    Capability,
    Command,
    CommandResult,
    CommandStatus,
    Connectivity,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    IotClass,
    PlayCommand,
    PlayEvent,
    PlayPhase,
    PowerSource,
    RebootCommand,
    SetVolumeCommand,
    StopCommand,
    SyncScheduleCommand,
    TestToneCommand,
)
from ...schemas.base import Identifier
from . import protocol as wire
from .bus import StationBus, StationChannel, StationListener
from .schedule import LEVEL_TO_PRIORITY, to_items

VENDOR = "Sao Khuê Radio"
BUS_KEY = "saokhue.bus:"
#: a command without its own expiry is dropped by the station this long after it was sent
DEFAULT_LIFETIME = 120
#: at most one clock correction per station this often
CLOCK_SET_EVERY = 600.0

CAPABILITY_OF_WORD = {"phat": Capability.AUDIO_PLAY, "luong": Capability.AUDIO_STREAM,
                      "am_luong": Capability.AUDIO_VOLUME, "lich": Capability.SCHEDULE_LOCAL,
                      "khoi_dong": Capability.REBOOT, "thu_loa": Capability.AUDIO_TEST_TONE}
ALARM_OF_WORD = {"mo_tu": ("tamper", AlarmSeverity.MAJOR),
                 "qua_nhiet": ("over_temperature", AlarmSeverity.MAJOR),
                 "loi_loa": ("speaker_fault", AlarmSeverity.CRITICAL)}
PHASE_OF_REPORT = {"bat_dau": PlayPhase.STARTED, "ket_thuc": PlayPhase.FINISHED,
                   "loi": PlayPhase.FAILED, "ngat": PlayPhase.INTERRUPTED,
                   "dung": PlayPhase.INTERRUPTED, "bo_lo": PlayPhase.FAILED}
#: station result codes → (hub status, hub code); unknown codes are failures
RESULT_OF_CODE = {
    wire.BAD_REQUEST: (CommandStatus.REJECTED, "bad_request"),
    wire.BUSY: (CommandStatus.REJECTED, "busy"),
    wire.CHECKSUM: (CommandStatus.REJECTED, "checksum_mismatch"),
    wire.FETCH_FAILED: (CommandStatus.FAILED, "media_unavailable"),
    wire.TABLE_FULL: (CommandStatus.REJECTED, "schedule_full"),
    wire.EXPIRED: (CommandStatus.REJECTED, "expired"),
    wire.UNSUPPORTED: (CommandStatus.REJECTED, "unsupported"),
}
MISSED_REASONS = {"mat_nguon": "the station had no power", "treo": "the station was hung",
                  "dang_ban": "a higher-priority item was playing",
                  "chua_tai": "the media was not downloaded"}


class StationConfig(DriverConfig):
    serial: Identifier = Field(description="the serial printed on the module (its topics)")
    broker: str | None = Field(default=None, description="the stations' broker, "
                               "mqtt[s]://host:port[?ca=FILE]; default: the hub's broker")
    username: str | None = Field(default=None, description="the hub's login on that broker")
    password: SecretStr | None = Field(default=None, description="stored encrypted")
    heartbeat: float = Field(default=60.0, gt=0, le=3600, description="heartbeat period "
                             "assumed until the station announces its own (s)")
    offline_after: float = Field(default=2.5, ge=1.5, le=20, description="heartbeat periods "
                                 "of silence after which the station is offline")
    clock_tolerance: float = Field(default=10.0, gt=0, description="seconds of clock error "
                                   "after which the station's clock is set")

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("broker must be mqtt://host:port or mqtts://host:port")
        if parts.username or parts.password:
            raise ValueError("give the broker login as username/password, not in the URL")
        return value

    def broker_url(self, default: str) -> str:
        """The connection URL, with the login (the key of the shared connection)."""
        if self.broker is None:
            if self.username or self.password:
                raise ConfigError("username/password need a broker URL beside them")
            return default
        if not self.username:
            return self.broker
        parts = urlsplit(self.broker)
        secret = self.password.get_secret_value() if self.password else ""
        login = quote(self.username, safe="") + (":" + quote(secret, safe="") if secret else "")
        return urlunsplit(parts._replace(netloc=f"{login}@{parts.netloc}"))


async def station_bus(transports: Transports, url: str) -> StationBus:
    """The process-wide bus for the broker at ``url``."""

    async def make() -> StationBus:
        return await StationBus.attach(await transports.mqtt(url))

    return await transports.shared(BUS_KEY + url, make)


class SaoKhueStationDriver(DeviceDriver, StationListener):
    """A Sao Khuê 4G loudspeaker station. Push: it reports on its own."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.IP_SPEAKER})
    capabilities: ClassVar[frozenset[Capability]] = frozenset(CAPABILITY_OF_WORD.values())
    config_model = StationConfig
    iot_class = IotClass.PUSH

    _bus: StationBus | None = None
    _chan: StationChannel | None = None
    _tasks: set[asyncio.Task[None]]

    @property
    def config(self) -> StationConfig:
        return self.context.config  # type: ignore[no-any-return]

    async def _channel(self) -> StationChannel:
        if self._chan is None:
            url = self.config.broker_url(self.context.settings.mqtt_url)
            self._bus = await station_bus(self.context.transports, url)
            self._chan = self._bus.channel(self.config.serial)
            self._chan.offline_after = self.config.offline_after
            if self._chan.info is None and self._chan.heartbeat is None:
                self._chan.period = self.config.heartbeat
            self._tasks = set()
        return self._chan

    async def start(self) -> None:
        chan = await self._channel()
        chan.listeners.append(self)
        assert self._bus is not None
        self._bus.period_changed()
        if chan.heartbeat is not None:
            self.on_heartbeat(chan.heartbeat)
            return
        if chan.judge(time.monotonic())[0] is not Connectivity.UNKNOWN:
            self._report_status()  # presence known (retained), the state not yet
        # heartbeats are not retained: after a hub restart, ask instead of waiting a period
        # (the bus's task, like the clock correction: a probe stopped at once must not
        # cancel the question on its way)
        self._bus.spawn(self._query(chan))

    async def _query(self, chan: StationChannel) -> None:
        assert self._bus is not None
        with contextlib.suppress(DeviceError):
            await self._bus.connection.wait_connected(self.context.settings.probe_timeout)
            await self._publish(chan, wire.QueryDown(msg_id=_msg_id("hoi_tt", time.time()),
                                                     ts=int(time.time())))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._chan is not None:
            with contextlib.suppress(ValueError):
                self._chan.listeners.remove(self)
            for task in list(self._tasks):
                task.cancel()

    async def _ready(self) -> StationChannel:
        chan = await self._channel()
        assert self._bus is not None
        await self._bus.connection.wait_connected(self.context.settings.probe_timeout)
        return chan

    # -- requests -----------------------------------------------------------------------------

    async def probe(self) -> DeviceInfo:
        chan = await self._ready()
        if not chan.infos.is_set():
            await with_timeout(self.context.settings.probe_timeout,
                               f"station {self.config.serial} announced nothing (no info on "
                               f"{wire.up_topic(self.config.serial, 'info')})",
                               chan.infos.wait())
        info = chan.info
        assert info is not None
        if chan.presence is not None and chan.presence.on == 0:
            raise DeviceUnreachable(f"station {self.config.serial} is offline (last will)")
        caps = sorted(CAPABILITY_OF_WORD[w] for w in info.cap if w in CAPABILITY_OF_WORD)
        extra = {k: v for k, v in (("imei", info.imei), ("iccid", info.iccid),
                                   ("hardware", info.hw)) if v}
        return DeviceInfo(serial=info.sn, mac=info.mac, vendor=VENDOR, model=info.model,
                          firmware=info.fw, kind=DeviceKind.IP_SPEAKER, capabilities=caps,
                          address=chan.heartbeat.ip if chan.heartbeat else None, extra=extra)

    async def read_status(self) -> DeviceStatus:
        chan = await self._ready()
        if chan.heartbeat is None and chan.judge(time.monotonic())[0] is not \
                Connectivity.OFFLINE:
            # the heartbeat is not retained: ask for one rather than wait a period
            await self._query(chan)
            with contextlib.suppress(DeviceError):
                await with_timeout(self.context.settings.probe_timeout, "heartbeat",
                                   chan.heartbeats.wait())
        return self._status(chan)

    async def execute(self, command: Command) -> CommandResult:
        chan = await self._ready()
        key = command.idempotency_key
        first = chan.results.get(key)
        if first is not None:
            return first.model_copy(update={"command_id": command.id})
        if chan.judge(time.monotonic())[0] is Connectivity.OFFLINE:
            raise DeviceUnreachable(f"station {self.config.serial} is offline")
        downlink = self._downlink(chan, command)
        loop = asyncio.get_running_loop()
        future = chan.pending.get(downlink.msg_id) or loop.create_future()
        chan.pending[downlink.msg_id] = future
        try:
            await self._publish(chan, downlink)
            ack = await with_timeout(self.context.settings.command_timeout,
                                     f"station {self.config.serial} did not acknowledge "
                                     f"{command.type}", asyncio.shield(future))
        finally:
            if future.done():
                chan.pending.pop(downlink.msg_id, None)
        result = self._result(chan, command, ack)
        if result.status is not CommandStatus.FAILED:  # a failure may be retried afresh
            chan.remember(key, result)
        return result

    async def _publish(self, chan: StationChannel, message: Any) -> None:
        assert self._bus is not None
        await self._bus.connection.publish(wire.down_topic(chan.serial), wire.dumps(message),
                                           qos=1, timeout=self.context.settings.command_timeout)

    # -- mapping: hub → station ---------------------------------------------------------------

    def _downlink(self, chan: StationChannel, command: Command) -> Any:
        now = int(time.time())
        head: dict[str, Any] = {
            "msg_id": _msg_id(command.idempotency_key, None), "ts": now,
            "han": int(command.expires_at.timestamp()) if command.expires_at
            else now + DEFAULT_LIFETIME}
        if isinstance(command, PlayCommand):
            body: dict[str, Any] = {
                "ma_lich": chan.wire_id(command.id, "rt-"),
                "ma_nd": chan.wire_id(command.content_id, "nd-"),
                "ma_ct": chan.wire_id(command.broadcast_id, "ct-"), "lap": command.repeat,
                "uu_tien": LEVEL_TO_PRIORITY[command.level.value], "vol": command.volume}
            if command.media is not None:
                media = command.media
                body |= {"url": str(media.url), "sha256": media.sha256,
                         "kich_thuoc": media.size, "thoi_luong": media.duration}
            else:
                body |= {"url": str(command.stream_url), "luong": True}
            return wire.PlayDown(**head, **body)
        if isinstance(command, StopCommand):
            return wire.StopDown(**head, ma_nd=chan.wire_id(command.content_id, "nd-"))
        if isinstance(command, SetVolumeCommand):
            return wire.VolumeDown(**head, vol=command.volume)
        if isinstance(command, SyncScheduleCommand):
            offset = chan.info.mui_gio if chan.info else 7
            items = to_items(command.entries, offset)
            for entry in command.entries:  # remember the ids to_items had to shorten
                chan.wire_id(entry.content_id, "nd-")
                chan.wire_id(entry.broadcast_id, "ct-")
            if len(items) > wire.MAX_ITEMS:
                raise CommandRejected(f"the schedule needs {len(items)} rows; the station "
                                      f"holds {wire.MAX_ITEMS}", code="schedule_full")
            version = wire.short_id("v-", wire.dumps(wire.ScheduleDown(
                msg_id="x", ts=0, lich_ver="x", ds=items)))
            return wire.ScheduleDown(**head, lich_ver=version, ds=items)
        if isinstance(command, TestToneCommand):
            return wire.ToneDown(**head, giay=command.seconds, tan_so=command.frequency)
        if isinstance(command, RebootCommand):
            return wire.RebootDown(**head)
        raise CommandRejected(f"a Sao Khuê station cannot do '{command.type}'",
                              code="unsupported")

    def _result(self, chan: StationChannel, command: Command, ack: wire.Ack) -> CommandResult:
        if ack.kq != wire.OK:
            status, code = RESULT_OF_CODE.get(ack.kq, (CommandStatus.FAILED, "device_error"))
            detail = f"{ack.loi or ack.kq}: {ack.mo_ta}" if ack.mo_ta else (ack.loi or None)
            return CommandResult(command_id=command.id, status=status, code=code,
                                 detail=detail)
        data: dict[str, Any] = {}
        if ack.ma_lich:
            data["schedule_id"] = ack.ma_lich
        if ack.ds_ma_lich is not None:
            data["schedule_ids"] = ack.ds_ma_lich
        if ack.lich_ver:
            data["schedule_version"] = ack.lich_ver
        if ack.vol is not None:
            data["volume"] = ack.vol
            if chan.heartbeat is not None:  # the ack is newer than the last heartbeat
                chan.heartbeat = chan.heartbeat.model_copy(update={"vol": ack.vol})
        later = isinstance(command, PlayCommand | TestToneCommand | RebootCommand)
        return CommandResult(command_id=command.id, status=CommandStatus.ACCEPTED if later
                             else CommandStatus.DONE,
                             code="playing" if isinstance(command, PlayCommand | TestToneCommand)
                             else "ok", data=data)

    # -- mapping: station → hub ---------------------------------------------------------------

    def _status(self, chan: StationChannel) -> DeviceStatus:
        connectivity = chan.judge(time.monotonic())[0]
        hb = chan.heartbeat
        if hb is None:
            return DeviceStatus(connectivity=connectivity,
                                firmware=chan.info.fw if chan.info else None)
        faults = [ALARM_OF_WORD[w][0] for w in hb.cb if w in ALARM_OF_WORD]
        if hb.nguon == "pin":
            faults.insert(0, "on_battery")
        telemetry: dict[str, float | int | str | bool] = {"schedule_items": hb.so_lich}
        for name, value in (("csq", hb.csq), ("ip", hb.ip), ("schedule_version", hb.lich_ver)):
            if value is not None:
                telemetry[name] = value
        return DeviceStatus(
            connectivity=connectivity,
            activity=Activity.PLAYING if hb.dang_phat else Activity.IDLE, volume=hb.vol,
            power_source=PowerSource.BATTERY if hb.nguon == "pin" else PowerSource.MAINS,
            battery=hb.pin, signal=hb.rssi if hb.rssi is not None else _csq_dbm(hb.csq),
            temperature=hb.nhiet, firmware=hb.fw, faults=faults,
            current_item=hb.dang_phat.ma_nd if hb.dang_phat else None, telemetry=telemetry)

    def _report_status(self) -> None:
        assert self._chan is not None
        self.context.link.report_status(self._status(self._chan))

    def on_info(self, info: wire.Info) -> None:
        self._report_status()

    def on_connectivity(self, connectivity: Connectivity, reason: str) -> None:
        assert self._chan is not None
        self.context.link.report_status(self._status(self._chan))

    def on_heartbeat(self, heartbeat: wire.Heartbeat) -> None:
        chan = self._chan
        assert chan is not None
        self._report_status()
        self._alarms(chan, heartbeat)
        self._check_clock(chan, heartbeat)

    def _alarms(self, chan: StationChannel, heartbeat: wire.Heartbeat) -> None:
        now = {w for w in heartbeat.cb if w in ALARM_OF_WORD}
        before = chan.alarms or set()
        for word in sorted(now ^ before):
            code, severity = ALARM_OF_WORD[word]
            self.context.link.report_event(AlarmEvent(
                code=code, raised=word in now, severity=severity,
                detail=f"station reports '{word}'" if word in now else f"'{word}' cleared"))
        chan.alarms = now

    def _check_clock(self, chan: StationChannel, heartbeat: wire.Heartbeat) -> None:
        skew = heartbeat.ts - time.time()
        if abs(skew) <= self.config.clock_tolerance:
            return
        now = time.monotonic()
        if chan.clock_set_at is not None and now - chan.clock_set_at < CLOCK_SET_EVERY:
            return
        chan.clock_set_at = now
        self.context.log.info("saokhue.clock_set", serial=chan.serial, skew=round(skew, 1))
        assert self._bus is not None
        # the bus owns the correction: the driver that saw the skew may be a probe, stopped
        # a moment later, and the channel would then wait CLOCK_SET_EVERY for nothing
        self._bus.spawn(self._set_clock(chan))

    async def _set_clock(self, chan: StationChannel) -> None:
        stamp = time.time()
        try:
            await self._publish(chan, wire.ClockDown(msg_id=_msg_id("dong_bo_gio", stamp),
                                                     ts=round(stamp)))
        except asyncio.CancelledError:
            chan.clock_set_at = None  # not sent: the next heartbeat tries again
            raise
        except DeviceError as exc:
            chan.clock_set_at = None
            self.context.log.warning("saokhue.clock_set_failed", serial=chan.serial,
                                     error=str(exc))

    def on_report(self, report: wire.Report) -> None:
        chan = self._chan
        assert chan is not None
        command_id = chan.hub_id(report.ma_lich) if report.nguon == "truc_tiep" else None
        detail = report.ly_do
        device_time = datetime.fromtimestamp(report.ts, UTC)
        if report.loai == "bo_lo":
            slot = (datetime.fromtimestamp(report.gio_lich, UTC)
                    if report.gio_lich is not None else device_time)
            device_time = slot
            why = MISSED_REASONS.get(report.ly_do or "", report.ly_do or "unknown reason")
            detail = f"missed: {why} (slot {slot.isoformat()}, row {report.ma_lich})"
        elif report.loai == "dung":
            detail = "stopped"
        event_id = wire.short_id("evt-skr-", f"{chan.serial}|{report.stt}|{report.ts}|"
                                            f"{report.loai}")
        self.context.link.report_event(PlayEvent(
            id=event_id, phase=PHASE_OF_REPORT[report.loai],
            content_id=_ident(chan.hub_id(report.ma_nd)), command_id=_ident(command_id),
            broadcast_id=_ident(chan.hub_id(report.ma_ct)),
            device_time=device_time, detail=detail))


def _msg_id(key: str, salt: float | None) -> str:
    """The station-side id of a command: derived from the idempotency key, so a repeated key
    is recognised by the station itself (``salt`` for messages that must never repeat)."""
    return wire.short_id("m-", key if salt is None else f"{key}@{salt!r}")


def _csq_dbm(csq: int | None) -> int | None:
    """3GPP TS 27.007: CSQ 0..31 is -113 dBm + 2 dB per step; 99 is unknown."""
    if csq is None or csq == 99:
        return None
    return -113 + 2 * csq


_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def _ident(value: str | None) -> str | None:
    """A wire id the hub can store as an identifier, else nothing (devices send odd ids)."""
    if value is None:
        return None
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError:
        return None


__all__ = ["VENDOR", "SaoKhueStationDriver", "StationConfig", "station_bus"]
