"""A simulated ZoneTech ZA-8 wired-station zone controller: amplifier and line relays on
Modbus TCP (pymodbus's server on a real socket), fed by a VietCast decoder.

Register map: :mod:`ttcs.plugins.zonetech.registers` (and ``docs/plugins/zonetech.md``).
The model is the authority: every Modbus read is answered from it and every write goes
through it (a volume above 100 or a coil past the last line is refused with Modbus exception
2/3, as the real controller does).

Ground truth, beside the base :class:`~ttcs.simulators.base.GroundTruth`:

- ``truth.relays``: every relay change ``{"at", "line", "on", "cause"}`` (cause ``modbus``,
  ``power_loss``, ``reboot``); ``truth.zone_changes``: every line's relay after each write
  that changed one ``{"at", "zones": {"1": on, …}, "cause"}`` (the conformance kit's key);
- ``truth.zone_audio``: what was audible on which line ``{"line", "session", "label", "url",
  "from", "until", "outcome"}`` — a line is audible while its relay is on, the decoder plays
  and the amplifier is powered and not in protection;
- :meth:`telemetry` — what the registers hold now, in engineering units.

Faults: ``offline`` stops listening; ``slow`` delays every answer (``delay``); ``garbage``
answers frames that are not Modbus (``mode: "frame"``, the default) or Modbus exception 4
(``mode: "exception"``); ``drop_connection`` resets the connection under the next request;
``power_loss`` stops listening and drops the relays (they come back off); ``power_loss_battery``
runs on the battery (mains bit off, 24.6 V, charge falling); ``reboot`` restarts with the relays
off (optional ``firmware``, e.g. ``"2.5.0"``); ``hang`` accepts connections and never answers;
``playback_error`` trips the amplifier's thermal protection ``after`` seconds of audio
(85 °C, output muted); ``tamper`` opens the cabinet. ``wrong_credentials`` has no meaning:
Modbus TCP has no credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ..adapters.registers import (
    i16_to_word,
    text_to_words,
    u32_to_words,
    unscaled,
    word_from_bits,
)
from ..plugins.zonetech import registers as reg
from ..schemas import DeviceKind
from .audio_decoder import AudioDecoder
from .base import Fault, Fleet, GroundTruth, SimOptions, SimulatedDevice, SimulatorSpec
from .base import now as utcnow

log = structlog.get_logger("ttcs.sim.zonetech")

VENDOR = "ZoneTech"
PLUGIN = "zonetech"


@dataclass
class ControllerTruth(GroundTruth):
    relays: list[dict[str, Any]] = field(default_factory=list)
    zone_changes: list[dict[str, Any]] = field(default_factory=list)
    zone_audio: list[dict[str, Any]] = field(default_factory=list)


def _bits_to_words(bits: Sequence[bool]) -> list[int]:
    words = []
    for start in range(0, len(bits), 16):
        word = 0
        for n, bit in enumerate(bits[start:start + 16]):
            word |= int(bool(bit)) << n
        words.append(word)
    return words


class ZoneController(SimulatedDevice):
    """One ZA controller (unit id ``unit``) listening on ``host:port``."""

    def __init__(self, serial: str, *, decoder: AudioDecoder | None = None,
                 host: str = "127.0.0.1", port: int = 0, unit: int = 1, lines: int = 8,
                 firmware: str = "2.4.17", ambient: float = 31.5) -> None:
        super().__init__(serial)
        if not 1 <= lines <= reg.MAX_LINES:
            raise ValueError(f"a ZA controller has 1 to {reg.MAX_LINES} lines")
        self.truth: ControllerTruth = ControllerTruth()
        self.decoder = decoder
        self.host, self.port, self.unit, self.lines = host, port, unit, lines
        self.firmware = firmware
        self.ambient = ambient
        self.relays = [False] * lines
        self.volumes = [70] * lines
        self.master = 80
        self.line_faults = [False] * lines
        self.mains = True
        self.battery = 100
        self.booted_at = time.monotonic()
        self._battery_since: float | None = None
        self._audio_since: float | None = None  # when audio last started on any line
        self._audible: dict[int, dict[str, Any]] = {}  # line -> open zone_audio entry
        self._server: ModbusTcpServer | None = None
        self._released = asyncio.Event()
        self._tripped = False  # thermal protection latched by playback_error
        self._drop_next = False
        self.dropped = 0  # connections reset by drop_connection
        self.inflight = self.peak_inflight = 0  # requests being answered at once
        if decoder is not None:
            decoder.listeners.append(self._audio_changed)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()

    async def stop(self) -> None:
        self._close_audio("stopped")
        await self._close()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        blocks = (
            [SimData(reg.LINE_RELAY, values=[False] * self.lines, datatype=DataType.BITS)],
            [SimData(0, values=[False] * 3, datatype=DataType.BITS)],
            [SimData(reg.LINE_VOLUME, values=[0] * self.lines, datatype=DataType.REGISTERS),
             SimData(reg.MASTER_VOLUME, values=[0], datatype=DataType.REGISTERS)],
            [SimData(reg.SERIAL, values=[0] * reg.IDENTITY_BLOCK[1],
                     datatype=DataType.REGISTERS),
             SimData(reg.TELEMETRY_BLOCK[0], values=[0] * reg.TELEMETRY_BLOCK[1],
                     datatype=DataType.REGISTERS),
             SimData(reg.LINE_BLOCK[0], values=[0] * reg.LINE_BLOCK[1],
                     datatype=DataType.REGISTERS)],
        )
        device = SimDevice(self.unit, simdata=blocks, action=self._action)
        server = ModbusTcpServer(device, address=(self.host, self.port),
                                 trace_packet=self._trace)
        await server.serve_forever(background=True)
        sockets = getattr(server.transport, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])  # the same port after a restart
        self._released.clear()
        self._server = server

    async def _close(self) -> None:
        server, self._server = self._server, None
        self._released.set()
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

    def _boot(self) -> None:
        self.booted_at = time.monotonic()
        self._tripped = False
        self._set_relays(dict.fromkeys(range(1, self.lines + 1), False), "reboot")

    # -- the Modbus side ----------------------------------------------------------------------

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None
                      ) -> ExcCodes | None:
        """Called by pymodbus for every request: answer from the model, write through it."""
        self.inflight += 1
        self.peak_inflight = max(self.peak_inflight, self.inflight)
        try:
            return await self._answer(function_code, start_address, address, registers,
                                      values)
        finally:
            self.inflight -= 1

    async def _answer(self, function_code: int, start_address: int, address: int,
                      registers: list[int], values: list[int] | list[bool] | None
                      ) -> ExcCodes | None:
        if self.has(Fault.HANG):
            await self._released.wait()
            return ExcCodes.DEVICE_BUSY
        if self._drop_next and self._server is not None:
            self._drop_next = False
            self.dropped += 1
            for connection in list(self._server.active_connections.values()):
                if connection.transport is not None:
                    connection.transport.abort()  # type: ignore[attr-defined]
            return ExcCodes.DEVICE_BUSY  # never sent: the connection is gone
        await self.slow_down()
        if self.has(Fault.GARBAGE) and self.faults[Fault.GARBAGE].get("mode") == "exception":
            return ExcCodes.DEVICE_FAILURE
        if function_code in (1, 5, 15):
            if values:
                if address + len(values) > self.lines:
                    return ExcCodes.ILLEGAL_ADDRESS
                self._set_relays({address + offset + 1: bool(on)
                                  for offset, on in enumerate(values)}, "modbus")
            words = _bits_to_words(self.relays)
            registers[:len(words)] = words
        elif function_code == 2:
            registers[:1] = _bits_to_words(self.discrete_inputs())
        elif function_code in (3, 6, 16):
            if values:
                result = self._write_volumes(address, cast(list[int], values))
                if result is not None:
                    return result
            registers[:] = self.holding_registers(len(registers))
        elif function_code == 4:
            registers[:] = self.input_registers(start_address, len(registers))
        return None

    def _write_volumes(self, address: int, values: list[int]) -> ExcCodes | None:
        targets = list(range(address, address + len(values)))
        if any(not 0 <= v <= reg.VOLUME_MAX for v in values):
            return ExcCodes.ILLEGAL_VALUE
        for target, value in zip(targets, values, strict=True):
            if target == reg.MASTER_VOLUME:
                self.master = value
            elif reg.LINE_VOLUME <= target < reg.LINE_VOLUME + self.lines:
                self.volumes[target - reg.LINE_VOLUME] = value
            else:
                return ExcCodes.ILLEGAL_ADDRESS
        self.truth.volume_changes.append((utcnow(), self.master))
        return None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending and self.has(Fault.GARBAGE) and \
                self.faults[Fault.GARBAGE].get("mode", "frame") == "frame":
            return b"\x13\x37" + bytes(random.getrandbits(8) for _ in range(max(len(data), 9)))
        return data

    # -- what the registers hold ----------------------------------------------------------------

    def discrete_inputs(self) -> list[bool]:
        return [self.mains, not self.mains, bool(self.fault_names())]

    def holding_registers(self, size: int) -> list[int]:
        words = [0] * size
        words[:self.lines] = self.volumes
        if size > reg.MASTER_VOLUME:
            words[reg.MASTER_VOLUME] = self.master
        return words

    def input_registers(self, start: int, size: int) -> list[int]:
        """The input register block starting at ``start`` (as pymodbus lays it out: every
        defined register from the block's first address, gaps included)."""
        t = self.telemetry()
        words: dict[int, int] = {}
        for n, w in enumerate(text_to_words(self.serial, reg.SERIAL_WORDS)):
            words[reg.SERIAL + n] = w
        major, minor, build = (int(p) for p in [*self.firmware.split("."), "0", "0"][:3])
        words[reg.LINE_COUNT] = self.lines
        words[reg.FIRMWARE] = major * 100 + minor
        words[reg.FIRMWARE_BUILD] = build
        words[reg.TEMPERATURE] = i16_to_word(unscaled(t["temperature"],
                                                      reg.TEMPERATURE_SCALE))
        for base, value in ((reg.SUPPLY_VOLTAGE, unscaled(t["supply_voltage"],
                                                          reg.VOLTAGE_SCALE)),
                            (reg.OUTPUT_CURRENT, unscaled(t["output_current"],
                                                          reg.CURRENT_SCALE)),
                            (reg.UPTIME, int(t["uptime"]))):
            low_high = u32_to_words(value, reg.WORD_ORDER)
            words[base], words[base + 1] = low_high
        words[reg.FAULT_BITS] = word_from_bits(t["faults"], reg.FAULTS)
        words[reg.POWER_BITS] = word_from_bits(t["power"], reg.POWER)
        words[reg.BATTERY_CHARGE] = t["battery"]
        for n, current in enumerate(t["line_currents"]):
            words[reg.LINE_CURRENT + n] = unscaled(current, reg.CURRENT_SCALE)
        words[reg.LINE_FAULTS] = sum(1 << n for n, bad in enumerate(self.line_faults) if bad)
        return [words.get(start + n, 0) for n in range(size)]

    def fault_names(self) -> list[str]:
        names = []
        if self._tripped:
            names += ["overtemperature", "protection"]
        if any(self.line_faults):
            names.append("line_fault")
        if self.has(Fault.TAMPER):
            names.append("cabinet_open")
        return names

    @property
    def audio_present(self) -> bool:
        return self.decoder is not None and self.decoder.current is not None

    def audible_lines(self) -> list[int]:
        if not self.audio_present or self._tripped or self._server is None:
            return []
        return [n + 1 for n, on in enumerate(self.relays) if on]

    def telemetry(self) -> dict[str, Any]:
        """The amplifier's readings now, in engineering units (what the registers encode)."""
        audible = set(self.audible_lines())
        line_currents = []
        for n, on in enumerate(self.relays):
            if not on:
                line_currents.append(0.0)
            elif n + 1 in audible:  # current follows the level on the line
                line_currents.append(round(0.04 + 1.2 * self.volumes[n] * self.master / 1e4, 3))
            else:
                line_currents.append(0.012)  # relay closed, no programme: quiescent current
        load = sum(line_currents)
        temperature = 85.0 if self._tripped else round(self.ambient + 6.0 * load, 1)
        voltage = 230.4 if self.mains else 24.6  # mains AC in, or the battery bank's DC
        power = ["mains_present"] if self.mains else ["on_battery"]
        if self.mains and self.battery < 100:
            power.append("battery_charging")
        return {"temperature": temperature, "supply_voltage": voltage,
                "output_current": round(load, 3), "line_currents": line_currents,
                "faults": self.fault_names(), "power": power, "battery": self.battery_charge,
                "uptime": int(time.monotonic() - self.booted_at),
                "relays": list(self.relays), "volumes": list(self.volumes),
                "master_volume": self.master, "audible_lines": sorted(audible)}

    @property
    def battery_charge(self) -> int:
        if self._battery_since is None:
            return self.battery
        # one percent a minute while the amplifier runs on the battery
        return max(self.battery - int((time.monotonic() - self._battery_since) / 60), 0)

    # -- relays and what is audible where -------------------------------------------------------

    def _set_relays(self, wanted: dict[int, bool], cause: str) -> None:
        """Set the relays of ``wanted`` (line -> on) at once, as one write does."""
        changed = False
        for line, on in wanted.items():
            if self.relays[line - 1] != on:
                self.relays[line - 1] = on
                changed = True
                self.truth.relays.append({"at": utcnow(), "line": line, "on": on,
                                          "cause": cause})
        if changed:
            self.truth.zone_changes.append({"at": utcnow(), "zones": self.zones(),
                                            "cause": cause})
        self._audio_changed()

    def zones(self) -> dict[str, bool]:
        """Every line's relay, by line number as text (the kit's ``zone.<id>``)."""
        return {str(n): on for n, on in enumerate(self.relays, 1)}

    def _audio_changed(self) -> None:
        """Open and close ``zone_audio`` entries after anything that changes what is heard."""
        now = utcnow()
        cur = self.decoder.current if self.decoder is not None else None
        audible = set(self.audible_lines())
        for line in list(self._audible):
            entry = self._audible[line]
            if line not in audible or cur is None or entry["session"] != cur.session:
                entry["until"] = now
                entry["outcome"] = self._why_silent(line, cur is None)
                del self._audible[line]
        for line in audible - set(self._audible):
            assert cur is not None
            entry = {"line": line, "session": cur.session, "label": cur.label, "url": cur.url,
                     "from": now, "until": None, "outcome": "playing"}
            self._audible[line] = entry
            self.truth.zone_audio.append(entry)
        if audible and self._audio_since is None:
            self._audio_since = time.monotonic()
            if self.has(Fault.PLAYBACK_ERROR):
                self._arm_trip()
        elif not audible:
            self._audio_since = None

    def _why_silent(self, line: int, decoder_stopped: bool) -> str:
        if self._server is None:
            return "power_lost"
        if self._tripped:
            return "failed"
        if not self.relays[line - 1]:
            return "switched_off"
        return "ended" if decoder_stopped else "interrupted"

    def _close_audio(self, outcome: str) -> None:
        for entry in self._audible.values():
            entry["until"], entry["outcome"] = utcnow(), outcome
        self._audible.clear()

    def _arm_trip(self) -> None:
        after = float(self.faults[Fault.PLAYBACK_ERROR].get("after", 0.3))

        def trip() -> None:
            if self.has(Fault.PLAYBACK_ERROR) and self._audio_since is not None:
                self._tripped = True
                self._audio_changed()

        asyncio.get_running_loop().call_later(after, trip)

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        if fault is Fault.OFFLINE:
            await (self._close() if active else self._listen())
        elif fault is Fault.POWER_LOSS:
            if active:
                await self._close()
                self._close_audio("power_lost")
                self._set_relays(dict.fromkeys(range(1, self.lines + 1), False), "power_loss")
            else:
                self.booted_at = time.monotonic()
                self._tripped = False
                await self._listen()
        elif fault is Fault.POWER_LOSS_BATTERY:
            if active:
                self.mains, self._battery_since = False, time.monotonic()
            else:
                self.battery, self.mains, self._battery_since = self.battery_charge, True, None
        elif fault is Fault.REBOOT and active:
            await self._close()
            self._close_audio("interrupted")
            await asyncio.sleep(float(params.get("seconds", 0.3)))
            self.firmware = str(params.get("firmware", self.firmware))
            self._boot()
            await self._listen()
        elif fault is Fault.DROP_CONNECTION and active:
            self._drop_next = True  # the link breaks under the next request
        elif fault is Fault.HANG and not active:
            self._released.set()
            self._released = asyncio.Event()
        elif fault is Fault.PLAYBACK_ERROR:
            if active and self._audio_since is not None:
                self._arm_trip()
            elif not active:
                self._tripped = False
                self._audio_changed()

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {**self.telemetry(), "serial": self.serial, "firmware": self.firmware,
                "unit": self.unit, "lines": self.lines, "listening": self._server is not None,
                "zones": self.zones()}

    def registration(self) -> dict[str, Any]:
        """How to register this controller. Its lines are registered as ``wired_zone``
        children of it: see :meth:`children`."""
        config: dict[str, Any] = {"host": self.host, "port": self.port, "unit": self.unit}
        if self.decoder is not None:
            config |= {"decoder_url": self.decoder.url, "decoder_api_key": self.decoder.api_key}
        return {"plugin": PLUGIN, "kind": DeviceKind.WIRED_ZONE_CONTROLLER.value,
                "config": config}

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """One registration per line, as children of the controller registered as
        ``parent_id``: ``{"plugin", "kind": "wired_zone", "parent_id", "config": {"line"}}``."""
        return [{"plugin": PLUGIN, "kind": DeviceKind.WIRED_ZONE.value, "parent_id": parent_id,
                 "config": {"line": n}} for n in range(1, self.lines + 1)]

    def connection_info(self) -> dict[str, Any]:
        config = self.registration()["config"]
        args = " ".join(f"--config {k}={v}" for k, v in config.items())
        return {"protocol": "modbus-tcp", "host": self.host, "port": self.port,
                "unit": self.unit, "serial": self.serial, "lines": self.lines,
                "decoder": self.decoder.serial if self.decoder else None,
                "add": f"ttcs devices add --plugin {PLUGIN} --kind wired_zone_controller "
                       f"--area AREA {args}",
                "add_zone": f"ttcs devices add --plugin {PLUGIN} --kind wired_zone --area AREA "
                            "--parent CONTROLLER_ID --config line=N",
                "mbpoll": f"mbpoll -m tcp -a {self.unit} -p {self.port} -0 -1 -t 3:int -r 21 -c 2 "
                          f"{self.host}"}


async def build(options: SimOptions) -> Fleet:
    """``ttcs sim run zonetech``: ``--count`` controllers, each with its own decoder.

    Options: ``lines`` (1-8), ``unit``, ``firmware``, ``api_key`` (of the decoders). With
    ``--port P`` controller *n* listens on ``P + n - 1`` (a non-root user cannot bind 502).
    """
    prefix = options.serial_prefix or "ZT"
    lines = int(options.extra.get("lines", "8"))
    unit = int(options.extra.get("unit", "1"))
    api_key = options.extra.get("api_key", "vc-secret")
    devices: list[SimulatedDevice] = []
    for n in range(1, options.count + 1):
        decoder = AudioDecoder(f"VC{prefix}-{n:04d}", host=options.host, api_key=api_key,
                               mac=_mac(prefix, n))
        port = options.port + n - 1 if options.port else 0
        devices += [ZoneController(f"{prefix}-{n:04d}", decoder=decoder, host=options.host,
                                   port=port, unit=unit, lines=lines,
                                   firmware=options.extra.get("firmware", "2.4.17")), decoder]
    return Fleet(devices, info={"vendor": VENDOR, "lines": lines})


def _mac(prefix: str, n: int) -> str:
    digest = hashlib.sha256(f"vietcast-{prefix}-{n}".encode()).digest()
    return ":".join(f"{b:02X}" for b in (b"\x02" + digest[:5]))


SPEC = SimulatorSpec(
    name=PLUGIN, kinds=(DeviceKind.WIRED_ZONE_CONTROLLER.value, DeviceKind.WIRED_ZONE.value),
    protocol="modbus-tcp + http (vietcast decoder)",
    description="ZoneTech ZA wired-station controller (relays, volumes, amplifier telemetry "
                "on Modbus TCP) with its VietCast audio decoder (--option lines=8, unit=1)",
    build=build)


__all__ = ["SPEC", "ControllerTruth", "ZoneController", "build"]
