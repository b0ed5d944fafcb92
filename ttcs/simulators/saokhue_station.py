"""A simulated Sao Khuê Radio 4G station speaking SKR MQTT v2 over a real broker.

It behaves as the vendor's firmware does (``docs/plugins/saokhue.md``):

- connects with a persistent session, its last will ``{"on": 0}`` on ``online`` (retained),
  then publishes ``info`` (retained), ``online`` and a heartbeat; a heartbeat every
  ``heartbeat`` seconds and whenever its state changes;
- answers every command on ``ack`` by ``msg_id``; a repeated ``msg_id`` gets the first answer
  and is not acted on again (``loi_tai`` answers are not remembered, so a retry is tried
  afresh); a command that arrives after its ``han`` by the station clock is refused;
- fetches media by URL and refuses it unless its SHA-256 and size match; keeps fetched media
  in its flash cache by SHA-256;
- keeps a schedule table (replaced atomically by ``dat_lich``) in flash and plays it by its
  own clock — also while the 4G link is down; reports (``rpt``) are kept in flash and sent in
  order once connected; slots that pass while the station has no power, is rebooting or hung
  are reported as missed (``bo_lo``) when it is back.

Faults (:class:`~ttcs.simulators.base.Fault`): ``offline`` drops the 4G link (clean goodbye)
while the station keeps playing its schedule; ``power_loss`` cuts power (will fires, the
schedule stops, missed slots are reported on power-up); ``power_loss_battery`` runs on
battery; ``reboot`` restarts (new ``firmware``, new IP); ``drop_connection`` breaks the link
once; ``wrong_credentials`` logs in with a wrong password; ``hang`` keeps the TCP session but
the application answers nothing and plays nothing; ``slow`` delays every answer;
``garbage`` corrupts uplink payloads; ``playback_error`` makes items fail part-way;
``tamper`` raises the cabinet-open alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import random
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import SecretStr, ValidationError

from ..adapters.mqtt import Message, MqttConnection, MqttEndpoint, Will
from ..aio import wait_event
from ..core.config import DEFAULT_MQTT_PORT
from ..plugins.saokhue import protocol as wire
from ..plugins.saokhue.schedule import PRIORITY_TO_LEVEL, next_slot, slots
from ..schemas import DeviceKind
from .base import (
    Fault,
    Fleet,
    GroundTruth,
    PlayRecord,
    Rejection,
    SimOptions,
    SimulatedDevice,
    SimulatorSpec,
)
from .base import now as utcnow

#: a slot found this late (clock jumped, loop starved) is missed rather than played
LATE_GRACE = timedelta(seconds=60)
#: msg_ids remembered (RAM: lost on power-up, as in the firmware)
ACKS_KEPT = 64
#: missed slots looked back for on power-up
MISSED_LOOKBACK = timedelta(hours=24)


@dataclasses.dataclass
class StationTruth(GroundTruth):
    """The common ground truth, and every schedule table the station installed, under the
    conformance kit's key ``schedules``: ``{"at", "version", "items": [{"id", "content_id",
    "broadcast_id"}]}``."""

    schedules: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Playback:
    """What the station plays now."""

    record: PlayRecord
    ma_lich: str
    priority: int
    nguon: str
    slot: int | None
    task: asyncio.Task[None] | None = None


class SaoKhueStation(SimulatedDevice):
    def __init__(self, serial: str, broker_url: str, *, firmware: str = "SKR4G_2.3.1",
                 heartbeat: float = 60.0, model: str = "SKR-4G30", mac: str | None = None,
                 stream_seconds: float = 5.0, clock_offset: float = 0.0, utc_offset: int = 7,
                 hub_login: tuple[str, str] | None = None) -> None:
        super().__init__(serial)
        self.truth: StationTruth = StationTruth()
        self.broker_url = broker_url
        self.firmware = firmware
        self.model = model
        self.mac = mac or _mac(serial)
        self.imei = "86" + str(int(hashlib.sha256(serial.encode()).hexdigest(), 16))[:13]
        self.heartbeat = heartbeat
        self.stream_seconds = stream_seconds
        self.clock_offset = timedelta(seconds=clock_offset)
        self.utc_offset = utc_offset
        self.hub_login = hub_login
        self.ip = _cgnat_ip()
        self.volume = 70
        self.powered = False
        self.power_source = "dien"
        self.battery = 100
        self.csq = random.randint(14, 28)
        self.temperature = 36.5
        # flash: survives power loss and reboots
        self.schedule: list[wire.ScheduleItem] = []
        self.schedule_version: str | None = None
        self.schedule_history: list[dict[str, Any]] = []
        self.media: dict[str, int] = {}  # sha256 -> size
        self.outbox: list[wire.Report] = []
        self.reports_sent: list[wire.Report] = []
        self._stt = 0
        self._last_alive: datetime | None = None  # device clock when it last ran
        self._down_reason = "tat_nguon"
        # RAM
        self.playing: Playback | None = None
        self._acks: OrderedDict[str, wire.Ack] = OrderedDict()
        self._running: dict[str, asyncio.Future[None]] = {}
        self._conn: MqttConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._password_override: str | None = None
        self._schedule_changed = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._cursor: datetime | None = None
        self._announced = False

    # -- the station's clock ------------------------------------------------------------------

    def clock(self) -> datetime:
        return utcnow() + self.clock_offset

    def _ts(self) -> int:
        return int(self.clock().timestamp())

    # -- power and network --------------------------------------------------------------------

    async def start(self) -> None:
        """Power up: report what was missed while down, connect, run the schedule."""
        if self.powered:
            return
        self.powered = True
        self._report_missed_since_down()
        self._cursor = self.clock()
        self._tasks = [asyncio.create_task(self._heartbeat_loop()),
                       asyncio.create_task(self._schedule_loop())]
        await self._net_up()

    async def stop(self) -> None:
        """Switch off cleanly (goodbye on ``online``)."""
        await self._power_down("tat_nguon", clean=True)

    async def _power_down(self, reason: str, *, clean: bool) -> None:
        if not self.powered:
            await self._net_down(clean=clean)
            return
        self.powered = False
        self._last_alive, self._down_reason = self.clock(), reason
        if self.playing is not None:
            playback, self.playing = self.playing, None
            if playback.task is not None:
                playback.task.cancel()
            playback.record.ended_at = utcnow()
            playback.record.outcome = "power_lost" if reason == "mat_nguon" else "interrupted"
            self._queue(playback, "ngat", ly_do=reason)  # in flash: sent after power-up
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        await self._net_down(clean=clean)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _net_up(self) -> None:
        if self._conn is not None:
            return
        endpoint = MqttEndpoint.from_url(self.broker_url)
        if self._password_override is not None:
            endpoint = dataclasses.replace(endpoint, username=endpoint.username or self.serial,
                                           password=SecretStr(self._password_override))
        will = Will(wire.up_topic(self.serial, "online"),
                    wire.dumps(wire.Presence(on=0, ly_do="lwt")), qos=1, retain=True)
        self._conn = MqttConnection(endpoint, client_id=f"skr-{self.serial}", will=will,
                                    keepalive=int(max(5, min(120, self.heartbeat * 2))),
                                    clean_session=False, on_connect=self._on_connect,
                                    backoff=(0.2, 5.0))
        await self._conn.subscribe(wire.down_topic(self.serial), self._on_command)
        await self._conn.start()

    async def _net_down(self, *, clean: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if clean and conn.connected.is_set():
            with contextlib.suppress(Exception):
                await conn.publish(wire.up_topic(self.serial, "online"), wire.dumps(
                    wire.Presence(on=0, ts=self._ts(), ly_do="ngat")), retain=True, timeout=2)
        elif not clean:
            conn.drop()
            await asyncio.sleep(0.05)
        await conn.stop()

    @property
    def connected(self) -> bool:
        """Connected and announced (info, presence, heartbeat published)."""
        return self._announced and self._conn is not None and self._conn.connected.is_set()

    async def _on_connect(self) -> None:
        self._announced = False
        info = wire.Info(sn=self.serial, mac=self.mac, imei=self.imei,
                         iccid="8984" + self.imei[:15], model=self.model, fw=self.firmware,
                         hw="V3.1", cap=list(wire.CAP_WORDS), chu_ky=self.heartbeat,
                         mui_gio=self.utc_offset, ts=self._ts())
        await self._publish("info", wire.dumps(info), retain=True)
        await self._publish("online", wire.dumps(wire.Presence(on=1, ts=self._ts(),
                                                               ly_do="ket_noi")), retain=True)
        await self.publish_heartbeat()
        self._announced = True
        asyncio.create_task(self._flush())  # noqa: RUF006 - ends by itself

    async def _publish(self, leaf: str, payload: str, *, retain: bool = False,
                       qos: int = 1) -> bool:
        conn = self._conn
        if conn is None or not conn.connected.is_set() or self.has(Fault.HANG):
            return False
        if self.has(Fault.GARBAGE) and leaf in ("hb", "ack", "rpt"):
            payload = "\x00\xff{khong phai json" + "#" * random.randint(0, 40)
        try:
            await conn.publish(wire.up_topic(self.serial, leaf), payload, qos=qos,
                               retain=retain, timeout=5)
        except Exception:  # the link went down meanwhile: a report stays in flash
            return False
        return True

    # -- heartbeat ----------------------------------------------------------------------------

    def heartbeat_message(self) -> wire.Heartbeat:
        playing = self.playing
        return wire.Heartbeat(
            sn=self.serial, ts=self._ts(), fw=self.firmware, ip=self.ip, csq=self.csq,
            rssi=-113 + 2 * self.csq, vol=self.volume, nguon=self.power_source,
            pin=self.battery, nhiet=self.temperature,
            dang_phat=wire.Playing(ma_lich=playing.ma_lich, ma_nd=playing.record.content_id,
                                   uu_tien=playing.priority, nguon=playing.nguon)
            if playing else None,
            lich_ver=self.schedule_version, so_lich=len(self.schedule),
            cb=["mo_tu"] if self.has(Fault.TAMPER) else [], chu_ky=self.heartbeat)

    async def publish_heartbeat(self) -> None:
        await self._publish("hb", wire.dumps(self.heartbeat_message()), qos=0)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if self.power_source == "pin":
                self.battery = max(0, self.battery - 1)
            await self.publish_heartbeat()

    # -- reports (kept in flash until the broker has them) -------------------------------------

    def _queue(self, playback: Playback, kind: str, *, ly_do: str | None = None,
               at: datetime | None = None) -> None:
        self._stt += 1
        record = playback.record
        self.outbox.append(wire.Report(
            stt=self._stt, loai=kind, ma_lich=playback.ma_lich,
            ma_nd=record.content_id, ma_ct=record.broadcast_id,
            nguon=playback.nguon, gio_lich=playback.slot,
            ts=int((at or self.clock()).timestamp()), ly_do=ly_do))

    def _queue_missed(self, item: wire.ScheduleItem, slot: datetime, reason: str) -> None:
        self._stt += 1
        self.outbox.append(wire.Report(
            stt=self._stt, loai="bo_lo", ma_lich=item.ma_lich, ma_nd=item.ma_nd,
            ma_ct=item.ma_ct, nguon="lich", gio_lich=int(slot.timestamp()), ts=self._ts(),
            ly_do=reason))
        self.truth.rejections.append(Rejection(utcnow(), "slot", item.ma_lich, "missed",
                                               f"{slot.isoformat()}: {reason}"))

    async def _flush(self) -> None:
        async with self._flush_lock:
            while self.outbox and self.connected and not self.has(Fault.HANG):
                report = self.outbox[0]
                if not await self._publish("rpt", wire.dumps(report)):
                    return
                self.reports_sent.append(self.outbox.pop(0))

    def _report_missed_since_down(self) -> None:
        if self._last_alive is None:
            return
        now = self.clock()
        since = max(self._last_alive, now - MISSED_LOOKBACK)
        missed = sorted((at, item.ma_lich, item) for item in self.schedule
                        for at in slots(item, self.utc_offset, after=since, until=now))
        for at, _, item in missed:
            self._queue_missed(item, at, self._down_reason)
        self._last_alive = None

    # -- commands -----------------------------------------------------------------------------

    async def _on_command(self, message: Message) -> None:
        if self.has(Fault.HANG) or not self.powered:
            return
        raw = message.payload
        try:
            command = wire.DOWNLINK.validate_json(raw)
        except ValidationError as exc:
            reason = str(exc).splitlines()[0][:300]
            self.truth.rejections.append(Rejection(utcnow(), "unparseable", None, "sai_lenh",
                                                   reason))
            msg_id = wire.peek_msg_id(raw)
            if msg_id:
                await self._ack(wire.Ack(msg_id=msg_id, kq=wire.BAD_REQUEST, loi="sai_lenh",
                                         mo_ta=reason, ts=self._ts()))
            return
        self.truth.commands.append({"at": utcnow(), "id": command.msg_id,
                                    "type": command.lenh})
        asyncio.create_task(self._handle(command))  # noqa: RUF006 - answered on ack

    async def _handle(self, command: Any) -> None:
        await self.slow_down()
        msg_id = command.msg_id
        running = self._running.get(msg_id)
        if running is not None:  # the same command is still being carried out
            await asyncio.shield(running)
        first = self._acks.get(msg_id)
        if first is not None:  # seen before: the same answer, nothing done again
            await self._ack(first)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[msg_id] = done
        try:
            ack = await self._execute(command)
            if ack.kq != wire.FETCH_FAILED:
                self._acks[msg_id] = ack
                while len(self._acks) > ACKS_KEPT:
                    self._acks.popitem(last=False)
        finally:
            del self._running[msg_id]
            done.set_result(None)
        if ack.kq != wire.OK:
            self.truth.rejections.append(Rejection(utcnow(), command.lenh, msg_id,
                                                   ack.loi, ack.mo_ta or ""))
        await self._ack(ack)

    async def _ack(self, ack: wire.Ack) -> None:
        await self._publish("ack", wire.dumps(ack))

    async def _execute(self, command: Any) -> wire.Ack:
        def ok(**fields: Any) -> wire.Ack:
            return wire.Ack(msg_id=command.msg_id, kq=wire.OK, ts=self._ts(), **fields)

        if command.han is not None and command.han < self._ts():
            return self._error(command, wire.EXPIRED, "the command arrived after its 'han'")
        lenh = command.lenh
        if lenh == "am_luong":
            self._set_volume(command.vol)
            await self.publish_heartbeat()
            return ok(vol=self.volume)
        if lenh == "dung":
            playing = self.playing
            if playing is not None and command.ma_nd not in (None, playing.record.content_id):
                return ok(mo_ta="khong_phat")  # something else plays: nothing to stop
            await self._end("stopped")
            return ok()
        if lenh == "phat":
            return await self._play_now(command)
        if lenh == "dat_lich":
            return await self._install(command)
        if lenh == "phat_thu":
            record = PlayRecord(started_at=utcnow(), source=f"tone:{command.tan_so}Hz",
                                volume=self.volume)
            await self._begin(Playback(record, f"thu-{self._stt + 1}", 1, "thu", None),
                              command.giay)
            return ok()
        if lenh == "dong_bo_gio":
            self.clock_offset = timedelta(seconds=command.ts - utcnow().timestamp())
            self._cursor = self.clock()
            self._schedule_changed.set()
            return ok()
        if lenh == "hoi_tt":
            await self.publish_heartbeat()
            return ok()
        if lenh == "khoi_dong_lai":
            asyncio.create_task(self.on_fault(Fault.REBOOT, {}, active=True))  # noqa: RUF006
            return ok()
        return self._error(command, wire.UNSUPPORTED, f"unknown lenh {lenh}")

    def _error(self, command: Any, code: int, text: str) -> wire.Ack:
        return wire.Ack(msg_id=command.msg_id, kq=code, loi=wire.CODE_NAMES[code], mo_ta=text,
                        ts=self._ts())

    def _set_volume(self, volume: int) -> None:
        self.volume = volume
        self.truth.volume_changes.append((utcnow(), volume))

    async def _fetch(self, url: str, sha256: str, size: int) -> tuple[int, str] | None:
        """Fetch and check media into the flash cache; an error (code, text) or None."""
        if self.media.get(sha256) == size:
            return None
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    return wire.FETCH_FAILED, f"GET media answered {response.status}"
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return wire.FETCH_FAILED, f"cannot fetch media: {exc!r}"[:300]
        digest = hashlib.sha256(body).hexdigest()
        if digest != sha256 or len(body) != size:
            return wire.CHECKSUM, (f"media sha256 {digest[:12]}… / {len(body)} bytes do not "
                                   "match; altered content refused")
        self.media[sha256] = size
        return None

    async def _play_now(self, command: wire.PlayDown) -> wire.Ack:
        playing = self.playing
        if playing is not None and command.uu_tien < playing.priority:
            return self._error(command, wire.BUSY, f"playing a priority {playing.priority} "
                               "item; a lower one cannot interrupt it")
        if command.luong:
            seconds = self.stream_seconds
        else:
            if command.sha256 is None or command.kich_thuoc is None:
                return self._error(command, wire.BAD_REQUEST, "media needs sha256 and size")
            error = await self._fetch(command.url, command.sha256, command.kich_thuoc)
            if error is not None:
                return self._error(command, *error)
            seconds = command.thoi_luong if command.thoi_luong is not None else 1.0
        if command.vol is not None:
            self._set_volume(command.vol)
        record = PlayRecord(started_at=utcnow(), content_id=command.ma_nd,
                            command_id=command.ma_lich, broadcast_id=command.ma_ct,
                            level=PRIORITY_TO_LEVEL[command.uu_tien], volume=self.volume,
                            source=command.url)
        await self._begin(Playback(record, command.ma_lich, command.uu_tien, "truc_tiep", None),
                          seconds * command.lap)
        return wire.Ack(msg_id=command.msg_id, kq=wire.OK, ma_lich=command.ma_lich,
                        ts=self._ts())

    async def _install(self, command: wire.ScheduleDown) -> wire.Ack:
        if len(command.ds) > wire.MAX_ITEMS:
            return self._error(command, wire.TABLE_FULL, f"{len(command.ds)} rows; the table "
                               f"holds {wire.MAX_ITEMS}")
        for item in command.ds:  # all or nothing: the old table stays on any error
            error = await self._fetch(item.url, item.sha256, item.kich_thuoc)
            if error is not None:
                return self._error(command, error[0], f"row {item.ma_lich}: {error[1]}")
        self.schedule, self.schedule_version = list(command.ds), command.lich_ver
        self.schedule_history.append({"at": utcnow(), "version": command.lich_ver,
                                      "rows": [i.ma_lich for i in command.ds]})
        self.truth.schedules.append({"at": utcnow(), "version": command.lich_ver, "items": [
            {"id": i.ma_lich, "content_id": i.ma_nd, "broadcast_id": i.ma_ct}
            for i in command.ds]})
        self._cursor = self.clock()
        self._schedule_changed.set()
        await self.publish_heartbeat()
        return wire.Ack(msg_id=command.msg_id, kq=wire.OK, lich_ver=command.lich_ver,
                        ds_ma_lich=[i.ma_lich for i in command.ds], ts=self._ts())

    # -- playing ------------------------------------------------------------------------------

    async def _begin(self, playback: Playback, seconds: float) -> None:
        await self._end("interrupted")
        playback.record.started_at = utcnow()  # after the cut item ended: never two at once
        self.playing = playback
        self.truth.plays.append(playback.record)
        playback.task = asyncio.create_task(self._play(playback, seconds))
        self._queue(playback, "bat_dau")
        await self._flush()
        await self.publish_heartbeat()

    async def _play(self, playback: Playback, seconds: float) -> None:
        if self.has(Fault.PLAYBACK_ERROR):
            await asyncio.sleep(min(seconds / 2, 0.1))
            await self._finish(playback, "failed")
            return
        await asyncio.sleep(seconds)
        await self._finish(playback, "finished")

    async def _end(self, outcome: str) -> None:
        playback = self.playing
        if playback is None:
            return
        if playback.task is not None and playback.task is not asyncio.current_task():
            playback.task.cancel()
        await self._finish(playback, outcome)

    async def _finish(self, playback: Playback, outcome: str) -> None:
        if self.playing is not playback:
            return
        self.playing = None
        playback.record.ended_at, playback.record.outcome = utcnow(), outcome
        kind = {"finished": "ket_thuc", "failed": "loi", "stopped": "dung"}.get(outcome, "ngat")
        self._queue(playback, kind, ly_do="giai_ma" if outcome == "failed" else None)
        with contextlib.suppress(Exception):
            await self._flush()
            await self.publish_heartbeat()

    # -- the schedule, by the station's own clock ---------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            self._schedule_changed.clear()
            assert self._cursor is not None
            found = next_slot(self.schedule, self._cursor, self.utc_offset)
            wait = None if found is None else (found[0] - self.clock()).total_seconds()
            if wait is None or wait > 0:
                await wait_event(self._schedule_changed, wait)
                continue  # woken by a new table or clock, or the slot is due: look again
            assert found is not None
            at, item = found
            self._cursor = at
            await self._slot(at, item)

    async def _slot(self, at: datetime, item: wire.ScheduleItem) -> None:
        if self.clock() - at > LATE_GRACE:
            self._queue_missed(item, at, "lech_gio")
        elif self.has(Fault.HANG):
            self._queue_missed(item, at, "treo")
        elif self.media.get(item.sha256) != item.kich_thuoc:
            self._queue_missed(item, at, "chua_tai")
        elif self.playing is not None and self.playing.priority > item.uu_tien:
            self._queue_missed(item, at, "dang_ban")
        else:
            if item.vol is not None:
                self._set_volume(item.vol)
            record = PlayRecord(started_at=utcnow(), content_id=item.ma_nd,
                                broadcast_id=item.ma_ct, level=PRIORITY_TO_LEVEL[item.uu_tien],
                                volume=self.volume, source=item.url)
            await self._begin(Playback(record, item.ma_lich, item.uu_tien, "lich",
                                       int(at.timestamp())), item.thoi_luong * item.lap)
            return
        await self._flush()

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            await (self._net_down(clean=True) if active else self._net_up())
        elif fault is Fault.DROP_CONNECTION and active and self._conn is not None:
            self._conn.drop()  # the connection comes back by itself, as the modem's does
        elif fault is Fault.POWER_LOSS:
            await (self._power_down("mat_nguon", clean=False) if active else self.start())
        elif fault is Fault.POWER_LOSS_BATTERY:
            self.power_source = "pin" if active else "dien"
            await self.publish_heartbeat()
        elif fault is Fault.REBOOT and active:
            await self._power_down("khoi_dong_lai", clean=False)
            await asyncio.sleep(float(params.get("seconds", 0.5)))
            self.firmware = str(params.get("firmware", self.firmware))
            self.ip = _cgnat_ip()  # the 4G network hands out another address
            await self.start()
        elif fault is Fault.WRONG_CREDENTIALS:
            await self._net_down(clean=True)
            self._password_override = str(params.get("password", "sai-mat-khau")) if (
                active) else None
            if self.powered:
                await self._net_up()
        elif fault is Fault.HANG and not active:
            await self.publish_heartbeat()
            await self._flush()
        elif fault is Fault.TAMPER:
            await self.publish_heartbeat()

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        playing = self.playing
        return {"volume": self.volume, "powered": self.powered, "connected": self.connected,
                "firmware": self.firmware, "ip": self.ip, "power_source": self.power_source,
                "battery": self.battery,
                "clock_offset": round(self.clock_offset.total_seconds(), 3),
                "playing": (playing.record.content_id or playing.record.source)
                if playing else None,
                "level": playing.record.level if playing else None,
                "schedule": {"version": self.schedule_version,
                             "rows": [i.model_dump(mode="json") for i in self.schedule]},
                "reports_waiting": len(self.outbox)}

    def registration(self) -> dict[str, Any]:
        endpoint = MqttEndpoint.from_url(self.broker_url)
        config: dict[str, Any] = {"serial": self.serial, "heartbeat": self.heartbeat,
                                  "broker": _without_login(self.broker_url)}
        login = self.hub_login or ((endpoint.username, endpoint.password.get_secret_value())
                                   if endpoint.username and endpoint.password else None)
        if login is not None:
            config |= {"username": login[0], "password": login[1]}
        return {"plugin": "saokhue", "kind": DeviceKind.IP_SPEAKER.value, "config": config}

    def connection_info(self) -> dict[str, Any]:
        endpoint = MqttEndpoint.from_url(self.broker_url)
        login = " --config username=USER --config password=PASSWORD" if (
            endpoint.username) else ""
        return {"protocol": "skr-mqtt/2", "broker": endpoint.display, "serial": self.serial,
                "topics": [wire.up_topic(self.serial, "#"), wire.down_topic(self.serial)],
                "add": f"ttcs devices add --plugin saokhue --kind ip_speaker --area AREA "
                       f"--config serial={self.serial} --config broker="
                       f"{_without_login(self.broker_url)}{login}"}


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc))


def _mac(serial: str) -> str:
    digest = hashlib.sha256(serial.encode()).digest()
    return ":".join(f"{b:02X}" for b in (b"\x02" + digest[:5]))


def _cgnat_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


async def build(options: SimOptions) -> Fleet:
    broker = options.broker or f"mqtt://{options.host}:{options.port or DEFAULT_MQTT_PORT}"
    prefix = options.serial_prefix or "SKR"
    extra = options.extra
    first = int(extra.get("first", "1"))
    hub_login = (extra["hub_user"], extra.get("hub_password", "")) if "hub_user" in extra \
        else None
    devices: list[SimulatedDevice] = [
        SaoKhueStation(f"{prefix}-{n:06d}", broker,
                       heartbeat=float(extra.get("heartbeat", "60")),
                       firmware=extra.get("firmware", "SKR4G_2.3.1"),
                       clock_offset=float(extra.get("clock_offset", "0")),
                       stream_seconds=float(extra.get("stream_seconds", "5")),
                       hub_login=hub_login)
        for n in range(first, first + options.count)]
    return Fleet(devices, info={"broker": MqttEndpoint.from_url(broker).display})


SPEC = SimulatorSpec(
    name="saokhue", kinds=(DeviceKind.IP_SPEAKER.value,), protocol="mqtt (skr-mqtt/2)",
    description="Sao Khuê Radio 4G station: SKR MQTT v2, device-side schedules, missed-slot "
                "reports, TLS + login",
    build=build)
