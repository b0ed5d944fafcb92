"""Driver of a ZoneTech ZA zone controller (kind ``wired_zone_controller``) and its decoder.

The station is two boxes: the controller (amplifier + one relay per loudspeaker line) on
Modbus TCP, and a VietCast decoder on HTTP that feeds the amplifier. This driver composes
them (mapping in ``docs/plugins/zonetech.md``):

- ``play``: refused ``busy`` while a higher-level bulletin plays (an emergency is not cut by
  a normal bulletin; an equal or higher level cuts what plays); make sure lines are on (the
  lines already on, else every line — ZoneTech's "all call"), set the master volume if the
  command has one, then the decoder plays the URL
  with the command's idempotency key as its session. A proof-of-play *started* event follows,
  and *finished*/*failed*/*interrupted* when a later poll sees the session end; with nothing
  else playing, that poll drops the lines the play switched on (``release_lines_on_stop``).
- ``stop``: the decoder stops, then — ZoneTech's rule, ``release_lines_on_stop`` — every
  relay drops, so no line hums between broadcasts.
- ``switch_zones``: the lines named (``"1"``.. or ``"all"``) switch in one Modbus write.
- ``set_volume``: the master volume register.

Status comes from one :class:`~.station.StationSnapshot` per poll, which the zones
(:mod:`.zone`) reuse while it is fresh. Amplifier fault bits become device alarms
(``amplifier_<fault>``, raised and cleared once each); running on battery and the heatsink
temperature reach the hub's health monitor through ``power_source`` and ``temperature``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from pydantic import Field

from ...adapters.errors import map_decode_errors
from ...adapters.modbus import DEFAULT_PORT, ModbusEndpoint
from ...core.driver import DeviceDriver, DriverConfig
from ...core.errors import CommandRejected, DeviceError
from ...schemas import (
    Activity,
    AlarmEvent,
    AlarmSeverity,
    BulletinLevel,
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
    SetVolumeCommand,
    StopCommand,
    SwitchZonesCommand,
)
from ..audio_decoder import AudioDecoder, DecoderFields, DecoderState, playable_source
from . import registers as reg
from .station import Identity, StationSnapshot, decode_amplifier, decode_identity

log = structlog.get_logger("ttcs.plugins.zonetech")

VENDOR = "ZoneTech"
RESULTS_KEPT = 200

#: fault bit -> (alarm code, severity)
FAULT_ALARMS = {
    "overtemperature": ("amplifier_overtemperature", AlarmSeverity.MAJOR),
    "output_short": ("amplifier_output_short", AlarmSeverity.CRITICAL),
    "overload": ("amplifier_overload", AlarmSeverity.MAJOR),
    "psu_fault": ("amplifier_psu_fault", AlarmSeverity.CRITICAL),
    "line_fault": ("line_fault", AlarmSeverity.WARNING),
    "protection": ("amplifier_protection", AlarmSeverity.CRITICAL),
    "cabinet_open": ("tamper", AlarmSeverity.MAJOR),
}
_OUTCOME_PHASE = {"finished": PlayPhase.FINISHED, "failed": PlayPhase.FAILED,
                  "stopped": PlayPhase.INTERRUPTED, "interrupted": PlayPhase.INTERRUPTED,
                  "power_lost": PlayPhase.INTERRUPTED}


class ZoneTechConfig(DecoderFields, DriverConfig):
    host: str = Field(description="controller address (IP or host name)")
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255, description="Modbus unit id (device id)")
    timeout: float | None = Field(default=None, gt=0, description="seconds per Modbus "
                                  "request (default: a quarter of the hub's command timeout)")
    poll_interval: float | None = Field(default=None, gt=0, description="seconds between "
                                        "polls (default 10)")
    release_lines_on_stop: bool = Field(default=True, description="switch every line off "
                                        "when a broadcast stops (ZoneTech's default)")


@dataclass
class _Play:
    """A play this driver started, remembered until the decoder says how it ended."""

    session: str
    command_id: str
    content_id: str | None
    broadcast_id: str | None
    level: BulletinLevel = BulletinLevel.NORMAL
    opened: frozenset[int] = frozenset()  # lines this play switched on (off before it)
    confirmed_at: float = 0.0  # monotonic: when the decoder answered that it plays it


class ZoneControllerDriver(DeviceDriver):
    """A ZoneTech ZA controller with its decoder. Poll: the hub's shared poller reads it."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.WIRED_ZONE_CONTROLLER})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.AUDIO_PLAY, Capability.AUDIO_STREAM, Capability.AUDIO_VOLUME,
        Capability.ZONES_SWITCH})
    config_model = ZoneTechConfig
    iot_class = IotClass.POLL
    poll_interval = 10.0

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._identity: Identity | None = None
        self._snapshot: StationSnapshot | None = None
        self._reading: asyncio.Task[StationSnapshot] | None = None
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self._plays: OrderedDict[str, _Play] = OrderedDict()
        self._alarms: dict[str, bool] = {}  # alarm code -> raised, as last reported
        self._last_uptime: int | None = None
        self._connects_seen = -1
        self._decoder: AudioDecoder | None = None

    @property
    def config(self) -> ZoneTechConfig:
        return self.context.config  # type: ignore[no-any-return]

    @property
    def modbus(self) -> ModbusEndpoint:
        return self.context.transports.modbus(self.config.host, self.config.port)

    @property
    def decoder(self) -> AudioDecoder:
        if self._decoder is None:
            self._decoder = AudioDecoder.from_fields(
                self.context.transports, self.config,
                default_timeout=self.context.settings.command_timeout / 2)
        return self._decoder

    @property
    def request_timeout(self) -> float:
        return self.config.timeout or max(self.context.settings.command_timeout / 4, 0.2)

    # -- Modbus reads -------------------------------------------------------------------------

    async def identity(self, *, fresh: bool = False) -> Identity:
        if self._identity is None or fresh:
            address, count = reg.IDENTITY_BLOCK
            words = await self.modbus.read_input_registers(self.config.unit, address, count,
                                                           timeout=self.request_timeout)
            with map_decode_errors("controller identity"):
                self._identity = decode_identity(words)
        return self._identity

    async def snapshot(self, max_age: float = 0.0) -> StationSnapshot:
        """The station's state, read now or at most ``max_age`` seconds ago. Concurrent
        callers (the controller's poll and its zones') share one read."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.taken_at <= max_age:
            return snap
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        return await asyncio.shield(self._reading)

    async def _read(self) -> StationSnapshot:
        asked_at = time.monotonic()
        decoder_task = asyncio.ensure_future(self._decoder_state())
        try:
            identity = await self.identity()
            unit, timeout = self.config.unit, self.request_timeout
            telemetry = await self.modbus.read_input_registers(unit, *reg.TELEMETRY_BLOCK,
                                                               timeout=timeout)
            line_block = await self.modbus.read_input_registers(unit, *reg.LINE_BLOCK,
                                                                timeout=timeout)
            with map_decode_errors("amplifier telemetry"):
                amplifier = decode_amplifier(telemetry, line_block, identity.lines)
            connects = self.modbus.stats.connects
            if (self._last_uptime is not None and amplifier.uptime < self._last_uptime) or \
                    connects != self._connects_seen:
                # it restarted (or we could not tell: a new connection): firmware may be new
                identity = await self.identity(fresh=True)
            self._last_uptime, self._connects_seen = amplifier.uptime, connects
            relays = await self.modbus.read_coils(unit, reg.LINE_RELAY, identity.lines,
                                                  timeout=timeout)
            volumes = await self.modbus.read_holding_registers(unit, reg.LINE_VOLUME,
                                                               identity.lines, timeout=timeout)
            [master] = await self.modbus.read_holding_registers(unit, reg.MASTER_VOLUME, 1,
                                                                timeout=timeout)
        except BaseException:
            decoder_task.cancel()
            raise
        decoder, decoder_error = await decoder_task
        snap = StationSnapshot(time.monotonic(), identity, relays, volumes, master, amplifier,
                               decoder, decoder_error, decoder_asked_at=asked_at)
        self._snapshot = snap
        return snap

    async def _decoder_state(self) -> tuple[DecoderState | None, str | None]:
        try:
            return await self.decoder.status(), None
        except DeviceError as exc:
            return None, str(exc)

    # -- identity and status ------------------------------------------------------------------

    async def probe(self) -> DeviceInfo:
        identity = await self.identity(fresh=True)
        decoder = await self.decoder.info()  # test before configure: both boxes must answer
        return DeviceInfo(
            serial=identity.serial, vendor=VENDOR, model=identity.model,
            firmware=identity.firmware, kind=DeviceKind.WIRED_ZONE_CONTROLLER,
            capabilities=sorted(self.capabilities),
            address=f"{self.config.host}:{self.config.port}/{self.config.unit}",
            extra={"lines": identity.lines, "decoder_serial": decoder.serial,
                   "decoder_model": f"{decoder.vendor} {decoder.model}",
                   "decoder_firmware": decoder.firmware})

    async def read_status(self) -> DeviceStatus:
        snap = await self.snapshot()
        self._report_alarms(snap)
        ended = self._report_plays(snap)
        if ended and self.config.release_lines_on_stop and not (
                snap.decoder is not None and snap.decoder.playing):
            await self._close_lines(ended)
            snap = await self.snapshot()
        return controller_status(snap)

    async def _close_lines(self, ended: list[_Play]) -> None:
        """A broadcast ended by itself: the lines it switched on drop, as on a ``stop``
        (lines that were on before it are the operator's and stay on)."""
        closing: set[int] = set().union(*(p.opened for p in ended))
        for live in self._plays.values():
            closing -= live.opened
        if not closing:
            return
        try:
            await self.switch(dict.fromkeys(sorted(closing), False))
        except DeviceError as exc:  # the next poll shows the lines as they are
            log.info("zonetech.lines_left_on", lines=sorted(closing), reason=str(exc))

    def _report_alarms(self, snap: StationSnapshot) -> None:
        active = set(snap.amplifier.faults)
        for fault, (code, severity) in FAULT_ALARMS.items():
            raised = fault in active
            if self._alarms.get(code) is raised:
                continue
            first = code not in self._alarms
            self._alarms[code] = raised
            if first and not raised:
                continue  # nothing was said about it yet; saying "cleared" would be noise
            detail = f"{fault.replace('_', ' ')} reported by the amplifier" if raised else \
                f"{fault.replace('_', ' ')} cleared"
            if fault == "line_fault" and raised:
                bad = [str(n + 1) for n, f in enumerate(snap.amplifier.line_faults) if f]
                detail = f"line(s) {', '.join(bad)} out of impedance range"
            self.context.link.report_event(AlarmEvent(code=code, raised=raised,
                                                      severity=severity, detail=detail))

    def _report_plays(self, snap: StationSnapshot) -> list[_Play]:
        """Proof of play: a session this driver started has ended when the decoder no longer
        plays it; its ``last`` says how. Returns the plays that ended."""
        decoder = snap.decoder
        if decoder is None:
            return []
        ended: list[_Play] = []
        for session, play in list(self._plays.items()):
            if decoder.session == session:
                continue
            if play.confirmed_at >= snap.decoder_asked_at:
                continue  # started after the decoder was asked: not in this answer yet
            last = decoder.last
            if last is not None and last.session == session:
                phase, detail = _OUTCOME_PHASE[last.outcome], last.error or last.outcome
            else:
                phase, detail = PlayPhase.INTERRUPTED, "the decoder is playing something else"
            del self._plays[session]
            ended.append(play)
            self.context.link.report_event(PlayEvent(
                phase=phase, content_id=play.content_id, command_id=play.command_id,
                broadcast_id=play.broadcast_id, detail=detail))
        return ended

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        return await self._once(command.idempotency_key, command,
                                lambda: self._execute(command))

    async def execute_for_line(self, command: PlayCommand, line: int) -> CommandResult:
        """Play ``command`` on one line (the zone driver's play), once per idempotency key."""

        async def run() -> CommandResult:
            return CommandResult(command_id=command.id, status=CommandStatus.DONE,
                                 data=await self.play(command, lines=[line]))

        return await self._once(f"{command.idempotency_key}#line{line}", command, run)

    async def _once(self, key: str, command: Command,
                    run: Callable[[], Awaitable[CommandResult]]) -> CommandResult:
        first = self._results.get(key)
        if first is not None:
            return first.model_copy(update={"command_id": command.id})
        try:
            result = await run()
        except CommandRejected as exc:
            result = CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                   code=exc.code, detail=str(exc)[:2000])
        self._results[key] = result
        while len(self._results) > RESULTS_KEPT:
            self._results.popitem(last=False)
        return result

    async def _execute(self, command: Command) -> CommandResult:
        def done(**data: Any) -> CommandResult:
            return CommandResult(command_id=command.id, status=CommandStatus.DONE, data=data)

        if isinstance(command, PlayCommand):
            return done(**await self.play(command, lines=None))
        if isinstance(command, StopCommand):
            return done(**await self.stop_audio(command.content_id))
        if isinstance(command, SetVolumeCommand):
            await self.write_volume(reg.MASTER_VOLUME, command.volume)
            return done(master_volume=command.volume)
        if isinstance(command, SwitchZonesCommand):
            return done(lines_on=await self.switch(self._parse_zones(command.zones)))
        raise CommandRejected(f"a ZoneTech controller does not do '{command.type}'",
                              code="unsupported")

    def _parse_zones(self, zones: dict[str, bool]) -> dict[int, bool]:
        lines = self._identity.lines if self._identity else reg.MAX_LINES
        wanted: dict[int, bool] = {}
        for key, on in zones.items():
            if key == "all":
                wanted |= dict.fromkeys(range(1, lines + 1), on)
                continue
            try:
                line = int(key.removeprefix("line-"))
            except ValueError:
                line = 0
            if not 1 <= line <= lines:
                raise CommandRejected(f"no line {key!r}: this controller has lines 1-{lines} "
                                      "(or 'all')", code="unknown_zone")
            wanted[line] = on
        return wanted

    async def switch(self, wanted: dict[int, bool]) -> list[int]:
        """Set the relays of the lines in ``wanted`` (others unchanged) in one write; return
        the lines on afterwards."""
        identity = await self.identity()
        unit, timeout = self.config.unit, self.request_timeout
        relays = await self.modbus.read_coils(unit, reg.LINE_RELAY, identity.lines,
                                              timeout=timeout)
        for line, on in wanted.items():
            if line > identity.lines:
                raise CommandRejected(f"no line {line} on a {identity.model}",
                                      code="unknown_zone")
            relays[line - 1] = on
        await self.modbus.write_coils(unit, reg.LINE_RELAY, relays, timeout=timeout)
        self._snapshot = None
        return [n + 1 for n, on in enumerate(relays) if on]

    async def write_volume(self, address: int, volume: int) -> None:
        await self.modbus.write_register(self.config.unit, address, volume,
                                         timeout=self.request_timeout)
        self._snapshot = None

    async def play(self, command: PlayCommand, *, lines: list[int] | None) -> dict[str, Any]:
        """Play ``command`` on ``lines`` (switched on, others left as they are), or — with
        ``lines=None`` — on the lines already on, else on every line."""
        timeout = self.context.settings.command_timeout
        url, duration = await playable_source(self.context.transports, command,
                                              timeout=timeout)
        session = command.idempotency_key
        # a lower level does not cut what plays (the decoder itself would take anything)
        await self.decoder.admit(session, command.level,
                                 {s: p.level for s, p in self._plays.items()})
        identity = await self.identity()
        current = await self.modbus.read_coils(self.config.unit, reg.LINE_RELAY,
                                               identity.lines, timeout=self.request_timeout)
        was_on = {n + 1 for n, on in enumerate(current) if on}
        if lines is None:
            lines = sorted(was_on) or list(range(1, identity.lines + 1))
        lines_on = await self.switch(dict.fromkeys(lines, True))
        if command.volume is not None:
            await self.write_volume(reg.MASTER_VOLUME, command.volume)
        state = await self.decoder.play(url, session=session, label=command.content_id,
                                        duration=duration)
        if state.session != session:
            raise CommandRejected(f"the decoder did not take the stream (it reports "
                                  f"{state.state}: {state.error or state.session})",
                                  code="decoder_refused")
        self._plays[session] = _Play(session, command.id, command.content_id,
                                     command.broadcast_id, command.level,
                                     frozenset(set(lines) - was_on), time.monotonic())
        while len(self._plays) > RESULTS_KEPT:
            self._plays.popitem(last=False)
        self.context.link.report_event(PlayEvent(
            phase=PlayPhase.STARTED, content_id=command.content_id, command_id=command.id,
            broadcast_id=command.broadcast_id, detail=f"lines {_lines(lines_on)}"))
        return {"lines_on": lines_on, "session": session, "url": url}

    async def stop_audio(self, content_id: str | None = None) -> dict[str, Any]:
        """Stop the decoder (only if it plays ``content_id``, when given) and, by ZoneTech's
        rule, release every line."""
        state = await self.decoder.status()
        if content_id is not None and state.playing and state.label != content_id:
            return {"stopped": False, "playing": state.label}
        await self.decoder.stop()
        lines_on: list[int] | None = None
        if self.config.release_lines_on_stop:
            lines_on = await self.switch(dict.fromkeys(range(1, (await self.identity()).lines
                                                             + 1), False))
        return {"stopped": True, "lines_on": lines_on}

    async def release_line(self, line: int) -> dict[str, Any]:
        """Switch ``line`` off; stop the decoder when no line is left on."""
        lines_on = await self.switch({line: False})
        stopped = False
        if not lines_on:
            await self.decoder.stop()
            stopped = True
        return {"lines_on": lines_on, "decoder_stopped": stopped}


def _lines(lines: list[int]) -> str:
    return ",".join(str(n) for n in lines) or "none"


def controller_status(snap: StationSnapshot) -> DeviceStatus:
    amp, decoder = snap.amplifier, snap.decoder
    faults = list(amp.faults)
    if amp.on_battery:
        faults.append("on_battery")
    if decoder is None:
        faults.append("decoder_unreachable")
    elif decoder.state == "error":
        faults.append("decoder_error")
    if "protection" in amp.faults:
        activity = Activity.FAULT
    elif snap.audio and snap.lines_on():
        activity = Activity.PLAYING
    else:
        activity = Activity.IDLE
    telemetry: dict[str, float | int | str | bool] = {
        "supply_voltage_v": amp.supply_voltage, "output_current_a": amp.output_current,
        "uptime_s": amp.uptime, "lines": snap.identity.lines,
        "lines_on": _lines(snap.lines_on()), "master_volume": snap.master_volume,
        "mains": "mains_present" in amp.power,
        "decoder_state": decoder.state if decoder else "unreachable",
    }
    for line, on in enumerate(snap.relays, 1):
        telemetry[f"zone.{line}"] = on  # the hub's common reading of a switched zone
    if decoder is not None:
        telemetry["decoder_volume"] = decoder.volume
        if decoder.url:
            telemetry["stream_url"] = decoder.url[:200]
        if decoder.error:
            telemetry["decoder_error"] = decoder.error[:200]
    elif snap.decoder_error:
        telemetry["decoder_error"] = snap.decoder_error[:200]
    return DeviceStatus(
        # the amplifier answers but the audio cannot reach it: working, not healthy
        connectivity=Connectivity.DEGRADED if decoder is None else Connectivity.ONLINE,
        activity=activity, volume=snap.master_volume,
        power_source=PowerSource.BATTERY if amp.on_battery else PowerSource.MAINS,
        battery=amp.battery, temperature=amp.temperature, firmware=snap.identity.firmware,
        faults=faults, current_item=decoder.label if decoder and decoder.playing else None,
        telemetry=telemetry)


__all__ = ["FAULT_ALARMS", "ZoneControllerDriver", "ZoneTechConfig", "controller_status"]
