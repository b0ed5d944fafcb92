"""Driver of a RadiVina FM transmitter: SNMP (RADIVINA-FM-MIB) plus the decoder that feeds it.

Mapping (see ``docs/plugins/radivina.md``):

- status: one GET of the scalars, one GETBULK walk of the zone table, the decoder's status;
  telemetry in SI units (``forward_power_w``, ``reflected_power_w``, ``vswr``,
  ``pa_temperature``, ...), so the hub's health monitor raises ``high_vswr``,
  ``high_temperature`` and ``on_battery`` from it; ``rvFmAlarmBits`` become ``faults``;
- ``set_rf``: SET ``rvFmRfEnable``; ``tune``: SET ``rvFmFrequency`` (kHz);
- ``switch_zones``: one SET PDU of ``rvFmZoneState`` for every zone named (index, name or
  code), so the transmitter applies all or none; refused while the carrier is off;
- ``play``: refused ``busy`` while a higher-level bulletin is on air; the decoder plays the
  approved media (checked against its SHA-256 first) or the stream into the transmitter, the
  carrier switched on first if ``rf_on_for_play``; a receiver cluster's play also switches
  its zone on (:meth:`play_on_zones`). Proof of play: ``started`` at once,
  ``finished``/``failed``/``interrupted`` when a poll sees the decoder's session end; that
  poll also switches off the zones the play switched on (``release_zones_after_play``), so
  receivers do not stay open between bulletins;
- ``stop``, ``set_volume``: the decoder.

Reads use the read credentials, SETs the write ones (``write_community``), so a station can
be monitored with a read-only community alone.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any, ClassVar

import structlog

from ...adapters.snmp import SnmpManager, SnmpType, Varbind
from ...core.driver import DeviceDriver, HubLink
from ...core.errors import CommandRejected, DeviceError, PermanentDeviceError, ProtocolError
from ...schemas import (
    Activity,
    Capability,
    Command,
    CommandResult,
    CommandStatus,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    IotClass,
    PlayCommand,
    PlayEvent,
    PlayPhase,
    PowerSource,
    SetRfCommand,
    SetVolumeCommand,
    StopCommand,
    SwitchZonesCommand,
    TuneCommand,
)
from ...schemas.base import utcnow
from ..audio_decoder import AudioDecoder, DecoderState, playable_source
from . import mib
from .config import TransmitterConfig

log = structlog.get_logger("ttcs.plugins.radivina")

VENDOR = "RadiVina"
RESULTS_KEPT = 200

#: the scalars one status poll reads, in one GET
STATUS_SCALARS = ("sysUpTime", "rvFmFirmwareVersion", "rvFmRfEnable", "rvFmFrequency",
                  "rvFmPowerSetpoint", "rvFmForwardPower", "rvFmReflectedPower", "rvFmVswr",
                  "rvFmPaTemperature", "rvFmSupplyVoltage", "rvFmPowerSource",
                  "rvFmBatteryCharge", "rvFmAudioInput", "rvFmRdsPs", "rvFmRdsRt",
                  "rvFmAlarmBits")
_OUTCOMES = {"finished": PlayPhase.FINISHED, "failed": PlayPhase.FAILED,
             "stopped": PlayPhase.INTERRUPTED, "interrupted": PlayPhase.INTERRUPTED,
             "power_lost": PlayPhase.INTERRUPTED}


class Zone(dict[str, Any]):
    """One row of the zone table as read: index, code, name, on, last_switched, switches."""


class RadiVinaTransmitterDriver(DeviceDriver):
    """An RV-FMT30 transmitter and its audio decoder. Poll: the hub's poller reads status."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.FM_TRANSMITTER})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.FM_RF, Capability.FM_TUNE, Capability.ZONES_SWITCH, Capability.AUDIO_PLAY,
        Capability.AUDIO_STREAM, Capability.AUDIO_VOLUME})
    config_model = TransmitterConfig
    iot_class = IotClass.POLL
    poll_interval = 30.0

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self._decoder: AudioDecoder | None = None
        #: decoder sessions we started and whose end is not reported yet -> the plays in it
        #: (one per receiver cluster joining a broadcast) and where to report them
        self._playing: dict[str, list[tuple[PlayCommand, HubLink]]] = {}
        #: when the decoder confirmed each session (monotonic): a status asked for before
        #: that cannot tell whether the session ended
        self._confirmed: dict[str, float] = {}
        #: decoder session -> the zones its plays switched on (that were off before)
        self._opened: dict[str, set[int]] = {}

    @property
    def config(self) -> TransmitterConfig:
        return self.context.config  # type: ignore[no-any-return]

    @property
    def decoder(self) -> AudioDecoder:
        if self._decoder is None:
            self._decoder = AudioDecoder.from_fields(
                self.context.transports, self.config,
                default_timeout=self.context.settings.command_timeout)
        return self._decoder

    async def _snmp(self) -> SnmpManager:
        return await self.context.transports.snmp()

    async def _get(self, names: tuple[str, ...] | list[str], what: str) -> dict[str, Varbind]:
        snmp = await self._snmp()
        answer = await snmp.get(self.config.target(), [mib.scalar(n) for n in names], what=what)
        if len(answer) != len(names):
            raise ProtocolError(f"{what}: asked {len(names)} objects, got {len(answer)}")
        for name, vb in zip(names, answer, strict=True):
            if vb.missing:
                raise ProtocolError(f"{what}: the agent has no {name} ({vb.type}); "
                                    "is this a RadiVina transmitter?")
        return dict(zip(names, answer, strict=True))

    async def _set(self, values: list[tuple[Any, SnmpType, Any]], what: str) -> None:
        snmp = await self._snmp()
        await snmp.set(self.config.target(write=True), values, what=what)

    # -- identity and status ------------------------------------------------------------------

    async def probe(self) -> DeviceInfo:
        got = await self._get(("sysObjectID", "rvFmSerialNumber", "rvFmModelName",
                               "rvFmFirmwareVersion", "rvFmRatedPower"),
                              "reading transmitter identity")
        product = got["sysObjectID"].object_id()
        if product[:len(mib.RADIVINA)] != mib.RADIVINA:
            raise PermanentDeviceError(f"{self.config.host} is not a RadiVina transmitter "
                                       f"(sysObjectID {'.'.join(map(str, product))})")
        decoder = await self.decoder.info()  # test before configure: the audio path too
        return DeviceInfo(
            serial=got["rvFmSerialNumber"].text(), vendor=VENDOR,
            model=got["rvFmModelName"].text(), firmware=got["rvFmFirmwareVersion"].text(),
            kind=DeviceKind.FM_TRANSMITTER, capabilities=sorted(self.capabilities),
            address=f"{self.config.host}:{self.config.port}",
            extra={"rated_power_w": got["rvFmRatedPower"].integer() / 10,
                   "decoder": {"serial": decoder.serial, "model": decoder.model,
                               "firmware": decoder.firmware}})

    async def read_status(self) -> DeviceStatus:
        got = await self._get(STATUS_SCALARS, "reading transmitter status")
        decoder: DecoderState | None = None
        decoder_error = ""
        asked = time.monotonic()
        try:
            decoder = await self.decoder.status()
        except DeviceError as exc:  # the carrier is still up: say so, do not go offline
            decoder_error = str(exc)[:200]
        released = await self._close_zones(self._report_ended_plays(decoder, asked)) \
            if decoder else []
        status = self._status(got, await self.zones())
        await self._keep_rds(got, status)
        if released:
            status.telemetry["zones_released"] = ",".join(map(str, released))
        if decoder is None:
            status.faults.append("decoder_unreachable")
            status.telemetry["decoder_error"] = decoder_error
            return status
        status.volume = decoder.volume
        status.telemetry["decoder_state"] = decoder.state
        if decoder.playing:
            status.current_item = decoder.label
            status.telemetry["decoder_url"] = (decoder.url or "")[:200]
            if status.activity is Activity.IDLE:
                status.activity = Activity.PLAYING
        if decoder.state == "error":
            status.faults.append("decoder_error")
        return status

    @staticmethod
    def _status(got: dict[str, Varbind], zones: list[Zone]) -> DeviceStatus:
        rf_on = got["rvFmRfEnable"].integer() == mib.ON
        on_battery = got["rvFmPowerSource"].integer() == mib.BATTERY
        bits = mib.bits_to_int(got["rvFmAlarmBits"].octets())
        faults = [name for bit, name in mib.ALARM_BITS.items() if bits >> bit & 1]
        pa = got["rvFmPaTemperature"].integer() / 10
        telemetry: dict[str, float | int | str | bool] = {
            "rf_on": rf_on,
            "frequency_mhz": got["rvFmFrequency"].integer() / 1000,
            "power_setpoint_w": got["rvFmPowerSetpoint"].integer() / 10,
            "forward_power_w": got["rvFmForwardPower"].integer() / 10,
            "reflected_power_w": got["rvFmReflectedPower"].integer() / 100,
            "pa_temperature": pa,
            "supply_voltage": got["rvFmSupplyVoltage"].integer() / 10,
            "audio_input": ("present" if got["rvFmAudioInput"].integer() == mib.AUDIO_PRESENT
                            else "silent"),
            "rds_ps": got["rvFmRdsPs"].text(), "rds_rt": got["rvFmRdsRt"].text(),
            "uptime_s": got["sysUpTime"].integer() / 100,
            "zone_count": len(zones),
            "zones_on": ",".join(str(z["index"]) for z in zones if z["on"]),
        }
        for z in zones:
            telemetry[f"zone.{z['index']}"] = bool(z["on"])  # the hub's common zone reading
        vswr = got["rvFmVswr"].integer()
        if vswr:  # 0: no forward power to measure it with (carrier off)
            telemetry["vswr"] = vswr / 100
        return DeviceStatus(
            activity=Activity.IDLE if rf_on else Activity.OFF,
            power_source=PowerSource.BATTERY if on_battery else PowerSource.MAINS,
            battery=got["rvFmBatteryCharge"].integer(), temperature=pa,
            firmware=got["rvFmFirmwareVersion"].text(), faults=faults, telemetry=telemetry)

    async def _keep_rds(self, got: dict[str, Varbind], status: DeviceStatus) -> None:
        """Put the configured RDS texts back if someone changed them on site."""
        wanted = [(name, text) for name, text in (("rvFmRdsPs", self.config.rds_ps),
                                                  ("rvFmRdsRt", self.config.rds_rt))
                  if text is not None and got[name].text() != text]
        if not wanted:
            return
        try:
            await self._set([(mib.scalar(n), SnmpType.OCTETS, t) for n, t in wanted],
                            "applying the RDS texts")
        except CommandRejected as exc:
            status.faults.append("rds_not_applied")
            status.telemetry["rds_error"] = str(exc)[:200]
            return
        for name, text in wanted:
            status.telemetry["rds_ps" if name == "rvFmRdsPs" else "rds_rt"] = text

    async def zones(self) -> list[Zone]:
        """The zone table, by a GETBULK walk."""
        snmp = await self._snmp()
        cells = await snmp.walk(self.config.target(), mib.ZONE_TABLE, what="reading zones")
        by_column = {mib.OBJECTS[c][-1]: c for c in mib.ZONE_COLUMNS}
        rows: dict[int, dict[str, Varbind]] = {}
        base = len(mib.ZONE_TABLE) + 1  # ZONE_TABLE.1.column.index
        for vb in cells:
            if len(vb.oid) != base + 2 or vb.oid[base] not in by_column:
                continue  # a column this driver does not know (newer firmware)
            rows.setdefault(vb.oid[-1], {})[by_column[vb.oid[base]]] = vb
        zones = []
        for index, row in sorted(rows.items()):
            if len(row) != len(mib.ZONE_COLUMNS):
                raise ProtocolError(f"zone {index}: incomplete row in the zone table")
            zones.append(_zone(index, row))
        return zones

    async def zone(self, index: int) -> tuple[Zone, bool, bool, int]:
        """One zone's row with the carrier state, audio input and sysUpTime (for children)."""
        snmp = await self._snmp()
        oids = [mib.zone(c, index) for c in mib.ZONE_COLUMNS] + [
            mib.scalar("rvFmRfEnable"), mib.scalar("rvFmAudioInput"), mib.scalar("sysUpTime")]
        answer = await snmp.get(self.config.target(), oids, what=f"reading zone {index}")
        if any(vb.missing for vb in answer[:len(mib.ZONE_COLUMNS)]):
            raise PermanentDeviceError(f"the transmitter has no zone {index}")
        row = dict(zip(mib.ZONE_COLUMNS, answer, strict=False))
        rf, audio, uptime = answer[len(mib.ZONE_COLUMNS):]
        return (_zone(index, row), rf.integer() == mib.ON,
                audio.integer() == mib.AUDIO_PRESENT, uptime.integer())

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        first = self._results.get(command.idempotency_key)
        if first is not None:
            return first.model_copy(update={"command_id": command.id})
        try:
            result = await self._execute(command)
        except CommandRejected as exc:
            result = CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                   code=exc.code, detail=str(exc)[:2000])
        self._results[command.idempotency_key] = result
        while len(self._results) > RESULTS_KEPT:
            self._results.popitem(last=False)
        return result

    async def _execute(self, command: Command) -> CommandResult:
        def done(status: CommandStatus = CommandStatus.DONE, **data: Any) -> CommandResult:
            return CommandResult(command_id=command.id, status=status, data=data)

        if isinstance(command, SetRfCommand):
            await self._set([(mib.scalar("rvFmRfEnable"), SnmpType.INTEGER,
                              mib.ON if command.on else mib.OFF)], "switching RF")
            return done(rf_on=command.on)
        if isinstance(command, TuneCommand):
            khz = round(command.frequency_mhz * 1000)
            await self._set([(mib.scalar("rvFmFrequency"), SnmpType.UNSIGNED, khz)],
                            f"tuning to {khz} kHz")
            return done(frequency_khz=khz)
        if isinstance(command, SwitchZonesCommand):
            return done(zones=await self.switch_zones(command.zones))
        if isinstance(command, PlayCommand):
            return await self.play_on_zones(command, [])
        if isinstance(command, StopCommand):
            state = await self.decoder.stop()
            return done(decoder_state=state.state)
        if isinstance(command, SetVolumeCommand):
            state = await self.decoder.set_volume(command.volume)
            return done(volume=state.volume)
        raise CommandRejected(f"a RadiVina transmitter does not do '{command.type}'",
                              code="unsupported")

    async def switch_zones(self, wanted: dict[str, bool]) -> dict[str, bool]:
        """Switch zones named by index, name or code, in one SET; returns index -> on."""
        zones = await self.zones()
        chosen: dict[int, bool] = {}
        for key, on in wanted.items():
            match = [z for z in zones if key.strip().casefold() in (
                str(z["index"]), z["name"].casefold(), z["code"].casefold())]
            if not match:
                known = ", ".join(f"{z['index']} ({z['name']})" for z in zones)
                raise CommandRejected(f"no zone '{key}' on this transmitter (zones: {known})",
                                      code="unknown_zone")
            chosen[match[0]["index"]] = on
        await self._switch(chosen)
        return {str(i): on for i, on in sorted(chosen.items())}

    async def _switch(self, chosen: dict[int, bool]) -> None:
        if not chosen:
            return
        rf = await self._get(("rvFmRfEnable",), "reading the carrier")
        if rf["rvFmRfEnable"].integer() != mib.ON:
            raise CommandRejected("the carrier is off: zone codes are sent on it; switch RF "
                                  "on first", code="rf_off")
        await self._set([(mib.zone("rvFmZoneState", i), SnmpType.INTEGER,
                          mib.ON if on else mib.OFF) for i, on in sorted(chosen.items())],
                        f"switching zones {', '.join(map(str, sorted(chosen)))}")

    async def play_on_zones(self, command: PlayCommand, zones: list[int],
                            link: HubLink | None = None) -> CommandResult:
        """Play ``command`` on the air, with ``zones`` switched on first (a receiver cluster's
        play, whose proof of play goes to its own ``link``); a play already running for the
        same broadcast is joined, not restarted."""
        url, duration = await playable_source(self.context.transports, command,
                                              timeout=self.context.settings.command_timeout)
        session = _session(command)
        # a lower level does not cut what is on air (the decoder itself would take anything)
        await self.decoder.admit(session, command.level, {
            s: max((c.level for c, _ in plays), key=lambda lv: lv.rank)
            for s, plays in self._playing.items() if plays})
        rf = await self._get(("rvFmRfEnable",), "reading the carrier")
        if rf["rvFmRfEnable"].integer() != mib.ON:
            if not self.config.rf_on_for_play:
                raise CommandRejected("the carrier is off (rf_on_for_play is false)",
                                      code="rf_off")
            await self._set([(mib.scalar("rvFmRfEnable"), SnmpType.INTEGER, mib.ON)],
                            "switching RF on for a play")
        before = {z["index"]: z["on"] for z in await self.zones()}
        await self._switch(dict.fromkeys(zones, True))
        self._opened.setdefault(session, set()).update(z for z in zones if not before.get(z))
        state = await self.decoder.play(url, session=session, label=command.content_id,
                                        volume=command.volume, duration=duration)
        if not state.playing:
            raise CommandRejected(f"the decoder did not start: {state.error or state.state}",
                                  code="decoder_failed")
        self._confirmed[session] = time.monotonic()
        plays = self._playing.setdefault(session, [])
        if all(c.idempotency_key != command.idempotency_key for c, _ in plays):
            plays.append((command, link or self.context.link))
            _report_play(link or self.context.link, command, PlayPhase.STARTED)
        return CommandResult(command_id=command.id, status=CommandStatus.ACCEPTED,
                             data={"session": session, "url": url, "zones_on": zones})

    def _report_ended_plays(self, decoder: DecoderState, asked: float) -> list[str]:
        """Proof of play for the sessions we started that the decoder no longer plays;
        returns those sessions. ``asked`` is when the decoder was asked: a session it
        confirmed later is not in that answer yet, and has not ended."""
        last = decoder.last
        ended: list[str] = []
        for session in list(self._playing):
            if decoder.playing and decoder.session == session:
                continue
            if self._confirmed.get(session, 0.0) >= asked:
                continue
            if last is not None and last.session == session:
                phase = _OUTCOMES.get(last.outcome, PlayPhase.INTERRUPTED)
                detail = last.error or (None if last.outcome == "finished" else last.outcome)
            else:  # cut by a later play before a poll saw it end
                phase, detail = PlayPhase.INTERRUPTED, "replaced by another play"
            self._confirmed.pop(session, None)
            for command, link in self._playing.pop(session):
                _report_play(link, command, phase, detail)
            ended.append(session)
        return ended

    async def _close_zones(self, sessions: list[str]) -> list[int]:
        """Switch off the zones that ended plays opened and no running play still uses;
        returns those switched off."""
        closing: set[int] = set()
        for session in sessions:
            closing |= self._opened.pop(session, set())
        for still in self._opened.values():
            closing -= still
        if not closing or not self.config.release_zones_after_play:
            return []
        try:
            await self._switch(dict.fromkeys(sorted(closing), False))
        except DeviceError as exc:  # carrier off or agent gone: the zones are silent anyway
            log.info("fm.zones_left_on", zones=sorted(closing), reason=str(exc))
            return []
        return sorted(closing)


def _report_play(link: HubLink, command: PlayCommand, phase: PlayPhase,
                 detail: str | None = None) -> None:
    link.report_event(PlayEvent(phase=phase, content_id=command.content_id,
                                command_id=command.id, broadcast_id=command.broadcast_id,
                                detail=detail))


def _session(command: PlayCommand) -> str:
    """The decoder session of a play: one per broadcast (so the receiver clusters of one
    bulletin join one play), else the command's idempotency key."""
    return f"bc:{command.broadcast_id}" if command.broadcast_id else command.idempotency_key


def _zone(index: int, row: dict[str, Varbind]) -> Zone:
    return Zone(index=index, code=row["rvFmZoneCode"].text(), name=row["rvFmZoneName"].text(),
                on=row["rvFmZoneState"].integer() == mib.ON,
                last_switched=row["rvFmZoneLastSwitched"].integer(),
                switches=row["rvFmZoneSwitchCount"].integer())


def switched_at(zone: Zone, uptime_ticks: int) -> str | None:
    """When a zone was last switched, as an ISO time (None: not since the agent started)."""
    ticks = int(zone["last_switched"])
    if not ticks or ticks > uptime_ticks:
        return None
    return (utcnow() - timedelta(seconds=(uptime_ticks - ticks) / 100)).isoformat(
        timespec="seconds")


__all__ = ["RadiVinaTransmitterDriver", "Zone", "switched_at"]
