"""A simulated RadiVina RV-FMT30 FM station: the transmitter's SNMP agent, with its decoder.

The agent implements ``RADIVINA-FM-MIB`` (``docs/spec/RADIVINA-FM-MIB.mib``) and the SNMPv2-MIB
system group over UDP: SNMPv2c with a read-only community (its SETs are refused, ``noAccess``)
and a read-write one, and SNMPv3 USM users (authPriv). Its readings follow simple physics:

- forward power is the setpoint while the carrier is on, 0 when off; reflected power is
  forward × Γ², Γ = (VSWR − 1)/(VSWR + 1); above 3 W reflected the transmitter folds back
  (lowers forward power until reflected is 3 W) and says so (``rfFoldback``);
- the PA heats towards ambient + 1.3 °C/W × dissipation (DC input at 55 % efficiency minus
  output, plus the reflected power) with a time constant ``thermal_tau``;
- on battery the charge falls with the load and the supply reads 24-26.5 V; on mains 28 V.

The programme audio comes from a VietCast decoder (:mod:`ttcs.simulators.audio_decoder`),
the station's second box, whose output is wired into the transmitter: the silence detector
(``rvFmAudioInput``) follows what the decoder plays. ``ttcs sim run radivina`` starts both per
station.

Ground truth (``truth``): ``rf`` (carrier on/off over time, with the cause), ``zone_switches``
(each in-band code keyed: zone, on/off, the DTMF sequence sent), ``timeline`` (carrier,
frequency and zones on after every change), ``commands`` (every SET with who sent it and how
it ended), ``rejections`` (refused SETs); under the conformance kit's keys also
``rf_changes`` ``{"at", "on"}``, ``tunes`` ``{"at", "frequency_mhz"}`` and ``zone_changes``
``{"at", "zones": {"1": on, …}}``; :meth:`RadiVinaTransmitter.on_air` joins the timeline with
the decoder's plays: what was broadcast, when, on which zones.

Faults: ``offline`` closes the UDP port (the engine keeps running); ``slow`` answers after
``delay`` s; ``garbage`` answers bytes that are not SNMP, or with ``{"mode": "types"}``
well-formed answers whose values have the wrong syntax; ``drop_connection`` loses the next
``requests`` (default 1) requests; ``power_loss`` drops the carrier and the agent until cleared,
then boots (snmpEngineBoots + 1, uptime from 0, carrier back as it was switched);
``power_loss_battery`` runs on the battery; ``reboot`` restarts (``seconds``, ``firmware``);
``hang`` takes requests and answers none; ``wrong_credentials`` — the transmitter was reset
to factory communities and keys; ``antenna`` raises the antenna VSWR (``vswr``, default 3.0).
``playback_error`` and ``tamper`` are the decoder's or not applicable (no door switch).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..plugins.radivina import mib
from ..schemas import DeviceKind
from .audio_decoder import AudioDecoder
from .base import Fault, Fleet, GroundTruth, Rejection, SimOptions, SimulatedDevice, SimulatorSpec
from .base import now as utcnow
from .snmp_agent import (
    AgentCredentials,
    MibObject,
    Refused,
    SetRecord,
    SnmpAgent,
    V3User,
    engine_id,
)

VENDOR = "RadiVina"
MODEL = "RV-FMT30"
RATED_W = 30.0
EFFICIENCY = 0.55
THERMAL_RESISTANCE = 1.3  # °C per watt dissipated
FOLDBACK_REFLECTED_W = 3.0
FACTORY_COMMUNITIES = {"factory-ro": False, "factory-rw": True}
FACTORY_KEY = "factory-reset-0000"


@dataclass
class Zone:
    """One receiver-cluster row of the zone table."""

    index: int
    code: str
    name: str
    on: bool = False
    last_switched: int = 0  # sysUpTime (ticks) of the last code sent, 0: not since boot
    switches: int = 0


@dataclass
class FmTruth(GroundTruth):
    """What the transmitter did, beside the common ground truth."""

    rf: list[dict[str, Any]] = field(default_factory=list)
    zone_switches: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    # under the conformance kit's keys: the carrier switch, tunings, zones after each SET PDU
    rf_changes: list[dict[str, Any]] = field(default_factory=list)
    tunes: list[dict[str, Any]] = field(default_factory=list)
    zone_changes: list[dict[str, Any]] = field(default_factory=list)


def default_zones() -> list[Zone]:
    return [Zone(1, "1031", "Thôn Lương Viện"), Zone(2, "1032", "Thôn Phú Lễ"),
            Zone(3, "1033", "Chợ Phú Vinh"), Zone(4, "1034", "Bến đò")]


class RadiVinaTransmitter(SimulatedDevice):
    """One RV-FMT30 answering SNMP on ``host:port`` (UDP)."""

    def __init__(self, serial: str, *, host: str = "127.0.0.1", port: int = 0,
                 read_community: str = "public", write_community: str = "private",
                 users: list[V3User] | None = None, firmware: str = "2.4.1",
                 frequency_khz: int = 60_500, setpoint_w: float = 25.0, rf_on: bool = True,
                 zones: list[Zone] | None = None, decoder: AudioDecoder | None = None,
                 ambient: float = 32.0, thermal_tau: float = 60.0,
                 antenna_vswr: float = 1.15, battery_drain_per_min: float = 2.0,
                 location: str = "Tram truyen thanh xa", snmp_version: str = "2c") -> None:
        super().__init__(serial)
        if snmp_version not in ("2c", "3"):
            raise ValueError("snmp_version is 2c or 3")
        self.snmp_version = snmp_version  # how registration() says to reach it
        self.truth: FmTruth = FmTruth()
        self.firmware = firmware
        self.frequency_khz = frequency_khz
        self.setpoint_w = setpoint_w
        self.rf_enable = rf_on  # the switch, kept in NVRAM across power cuts
        self.zones = {z.index: z for z in (zones if zones is not None else default_zones())}
        self.decoder = decoder
        self.ambient = ambient
        self.thermal_tau = thermal_tau
        self.base_vswr = antenna_vswr
        self.battery_drain_per_min = battery_drain_per_min
        self.location = location
        self.rds: dict[str, Any] = {"ps": "TTCS FM", "rt": "Dai truyen thanh xa", "pi": 0x5A01}
        self.vswr_threshold = 200
        self.temp_threshold = 700
        self.battery = 100.0
        self.powered = True
        self.booting = False
        self.booted_at = time.monotonic()
        self._temperature = ambient
        self._advanced_at = time.monotonic()
        self._on_air = False
        self.credentials = AgentCredentials(
            communities={read_community: False, write_community: True},
            users=users if users is not None else [
                V3User("ttcs", "ttcs-auth-key", "ttcs-priv-key"),
                V3User("monitor", "monitor-auth-key", "monitor-priv-key", write=False)])
        self.agent = SnmpAgent(self._objects, host=host, port=port,
                               engine_id=engine_id(mib.ENTERPRISE, serial),
                               credentials=self.credentials, on_set=self._record_set)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.agent.start()
        self._carrier_changed("power_on")

    async def stop(self) -> None:
        await self.agent.stop()

    @property
    def host(self) -> str:
        return self.agent.host

    @property
    def port(self) -> int:
        return self.agent.port

    def _boot(self) -> None:
        self.booted_at = time.monotonic()
        for z in self.zones.values():  # per the MIB: counted since the agent started
            z.last_switched, z.switches = 0, 0

    @property
    def uptime_ticks(self) -> int:
        return int((time.monotonic() - self.booted_at) * 100)

    # -- physics ------------------------------------------------------------------------------

    @property
    def on_battery(self) -> bool:
        return self.has(Fault.POWER_LOSS_BATTERY)

    @property
    def antenna_vswr(self) -> float:
        if self.has(Fault.ANTENNA):
            return float(self.faults[Fault.ANTENNA].get("vswr", 3.0))
        return self.base_vswr

    @property
    def carrier(self) -> bool:
        return self.powered and not self.booting and self.rf_enable

    def _powers(self) -> tuple[float, float, bool]:
        """(forward W, reflected W, folded back) now."""
        if not self.carrier:
            return 0.0, 0.0, False
        gamma2 = ((self.antenna_vswr - 1) / (self.antenna_vswr + 1)) ** 2
        forward = self.setpoint_w
        folded = forward * gamma2 > FOLDBACK_REFLECTED_W
        if folded:
            forward = FOLDBACK_REFLECTED_W / gamma2
        return forward, forward * gamma2, folded

    def _equilibrium(self) -> float:
        forward, reflected, _ = self._powers()
        dissipated = forward / EFFICIENCY - forward + reflected
        return self.ambient + THERMAL_RESISTANCE * dissipated

    def _advance(self) -> None:
        """Bring temperature and battery up to now under the conditions that held since the
        last change (called before every change and every reading)."""
        now = time.monotonic()
        dt, self._advanced_at = now - self._advanced_at, now
        target = self._equilibrium()
        if self.thermal_tau <= 0:
            self._temperature = target
        else:
            self._temperature = target + (self._temperature - target) * math.exp(
                -dt / self.thermal_tau)
        forward, _, _ = self._powers()
        if self.on_battery:
            load = 0.3 + 0.7 * forward / RATED_W
            self.battery = max(0.0, self.battery - self.battery_drain_per_min * load * dt / 60)
        else:
            self.battery = min(100.0, self.battery + dt / 60)

    def readings(self) -> dict[str, Any]:
        """What the transmitter measures now, in the MIB's units."""
        self._advance()
        forward, reflected, folded = self._powers()
        vswr = round(self.antenna_vswr * 100) if forward > 0 else 0
        pa = round(self._temperature * 10)
        if self.on_battery:
            supply = round((24.0 + 2.5 * self.battery / 100) * 10)
        else:
            supply = round((28.0 - 0.02 * (forward / EFFICIENCY) / 28.0) * 10)
        audio = self.audio_source() is not None
        bits = 0
        if vswr > self.vswr_threshold:
            bits |= 1 << 0
        if pa > self.temp_threshold:
            bits |= 1 << 1
        if self.on_battery:
            bits |= 1 << 2
            if self.battery < 20:
                bits |= 1 << 3
        if self.carrier and not audio:
            bits |= 1 << 4
        if folded:
            bits |= 1 << 5
        return {"forward": round(forward * 10), "reflected": round(reflected * 100),
                "vswr": vswr, "pa_temperature": pa, "supply": supply,
                "source": mib.BATTERY if self.on_battery else mib.MAINS,
                "battery": round(self.battery), "audio": audio, "alarm_bits": bits}

    def audio_source(self) -> str | None:
        """The URL the decoder feeds into the transmitter now (None: silence)."""
        decoder = self.decoder
        if decoder is None or decoder.current is None:
            return None
        return decoder.current.url

    # -- ground truth -------------------------------------------------------------------------

    def _carrier_changed(self, cause: str) -> None:
        on = self.carrier
        if on != self._on_air or not self.truth.rf:
            self._on_air = on
            self.truth.rf.append({"at": utcnow(), "on": on, "cause": cause})
            self.truth.rf_changes.append({"at": utcnow(), "on": on})
        self._snapshot()

    def _snapshot(self) -> None:
        self.truth.timeline.append({"at": utcnow(), "carrier": self.carrier,
                                    "frequency_khz": self.frequency_khz,
                                    "zones_on": sorted(i for i, z in self.zones.items() if z.on)})

    def on_air(self) -> list[dict[str, Any]]:
        """What went out on the air: each decoder play cut to the times the carrier was on,
        with the zones that were switched on while it played."""
        if self.decoder is None:
            return []
        out = []
        timeline = self.truth.timeline
        for play in self.decoder.truth.plays:
            start, end = play.started_at, play.ended_at or utcnow()
            states = [s for n, s in enumerate(timeline)
                      if s["at"] < end and (n + 1 == len(timeline)
                                            or timeline[n + 1]["at"] > start)]
            carried = [s for s in states if s["carrier"]]
            if not carried:
                continue
            out.append({"source": play.source, "label": play.content_id,
                        "session": play.command_id, "from": max(start, carried[0]["at"]),
                        "until": play.ended_at, "outcome": play.outcome,
                        "frequency_khz": carried[-1]["frequency_khz"],
                        "zones": sorted({i for s in carried for i in s["zones_on"]})})
        return out

    def _record_set(self, record: SetRecord) -> None:
        names = {oid: name for name, oid in mib.OBJECTS.items()}
        name = names.get(record.oid[:-1], ".".join(map(str, record.oid)))
        entry = {"at": utcnow(), "principal": record.principal, "object": name,
                 "oid": ".".join(map(str, record.oid)), "value": record.value,
                 "outcome": record.outcome}
        self.truth.commands.append(entry)
        if record.outcome != "ok":
            self.truth.rejections.append(Rejection(utcnow(), f"SET {name}", None,
                                                   record.outcome, record.principal))

    # -- the MIB ------------------------------------------------------------------------------

    def _objects(self) -> list[MibObject]:
        s = mib.scalar
        r = self.readings

        def text(value: str) -> Any:
            return value.encode

        objects = [
            MibObject(s("sysDescr"), "OctetString", self._description),
            MibObject(s("sysObjectID"), "ObjectIdentifier", lambda: mib.PRODUCT_FMT30),
            MibObject(s("sysUpTime"), "TimeTicks", lambda: self.uptime_ticks),
            MibObject(s("sysContact"), "OctetString", text("ky-thuat@radivina.invalid")),
            MibObject(s("sysName"), "OctetString", text(self.serial)),
            MibObject(s("sysLocation"), "OctetString", lambda: self.location.encode()),  # noqa: PLW0108
            MibObject(s("rvFmSerialNumber"), "OctetString", text(self.serial)),
            MibObject(s("rvFmModelName"), "OctetString", text(MODEL)),
            MibObject(s("rvFmFirmwareVersion"), "OctetString",
                      lambda: self.firmware.encode()),  # noqa: PLW0108 - changes on reboot
            MibObject(s("rvFmRatedPower"), "Unsigned32", lambda: round(RATED_W * 10)),
            MibObject(s("rvFmRfEnable"), "Integer32",
                      lambda: mib.ON if self.rf_enable else mib.OFF,
                      set=self._set_rf, check=_on_off),
            MibObject(s("rvFmFrequency"), "Unsigned32", lambda: self.frequency_khz,
                      set=self._set_frequency, check=_frequency),
            MibObject(s("rvFmPowerSetpoint"), "Unsigned32", lambda: round(self.setpoint_w * 10),
                      set=self._set_power, check=_within(0, round(RATED_W * 10))),
            MibObject(s("rvFmForwardPower"), "Gauge32", lambda: r()["forward"]),
            MibObject(s("rvFmReflectedPower"), "Gauge32", lambda: r()["reflected"]),
            MibObject(s("rvFmVswr"), "Gauge32", lambda: r()["vswr"]),
            MibObject(s("rvFmPaTemperature"), "Integer32", lambda: r()["pa_temperature"]),
            MibObject(s("rvFmSupplyVoltage"), "Gauge32", lambda: r()["supply"]),
            MibObject(s("rvFmPowerSource"), "Integer32", lambda: r()["source"]),
            MibObject(s("rvFmBatteryCharge"), "Integer32", lambda: r()["battery"]),
            MibObject(s("rvFmAudioInput"), "Integer32",
                      lambda: mib.AUDIO_PRESENT if r()["audio"] else mib.AUDIO_SILENT),
            MibObject(s("rvFmRdsPs"), "OctetString", lambda: str(self.rds["ps"]).encode(),
                      set=lambda v: self.rds.__setitem__("ps", v.decode()),
                      check=_rds_text(8)),
            MibObject(s("rvFmRdsRt"), "OctetString", lambda: str(self.rds["rt"]).encode(),
                      set=lambda v: self.rds.__setitem__("rt", v.decode()),
                      check=_rds_text(64)),
            MibObject(s("rvFmRdsPi"), "Unsigned32", lambda: int(self.rds["pi"]),
                      set=lambda v: self.rds.__setitem__("pi", v), check=_within(0, 65535)),
            MibObject(s("rvFmAlarmBits"), "Bits", lambda: r()["alarm_bits"]),
            MibObject(s("rvFmVswrAlarmThreshold"), "Unsigned32", lambda: self.vswr_threshold,
                      set=lambda v: setattr(self, "vswr_threshold", v),
                      check=_within(110, 500)),
            MibObject(s("rvFmPaTempAlarmThreshold"), "Integer32", lambda: self.temp_threshold,
                      set=lambda v: setattr(self, "temp_threshold", v),
                      check=_within(300, 1200)),
            MibObject(s("rvFmZoneCount"), "Integer32", lambda: len(self.zones)),
        ]
        for index in sorted(self.zones):
            objects.extend(self._zone_objects(self.zones[index]))
        return objects

    def _description(self) -> bytes:
        return f"{VENDOR} {MODEL} FM transmitter, firmware {self.firmware}".encode()

    def _zone_objects(self, z: Zone) -> list[MibObject]:
        cell = mib.zone
        return [
            MibObject(cell("rvFmZoneCode", z.index), "OctetString",
                      lambda: z.code.encode(),  # noqa: PLW0108 - the code may be SET
                      set=lambda v: setattr(z, "code", v.decode()),
                      check=lambda v: self._check_code(z, v)),
            MibObject(cell("rvFmZoneName", z.index), "OctetString",
                      lambda: z.name.encode(),  # noqa: PLW0108 - the name may be SET
                      set=lambda v: setattr(z, "name", v.decode()), check=_utf8(32)),
            MibObject(cell("rvFmZoneState", z.index), "Integer32",
                      lambda: mib.ON if z.on else mib.OFF,
                      set=lambda v: self._switch(z, v == mib.ON),
                      check=self._check_switch),
            MibObject(cell("rvFmZoneLastSwitched", z.index), "TimeTicks",
                      lambda: z.last_switched),
            MibObject(cell("rvFmZoneSwitchCount", z.index), "Counter32", lambda: z.switches),
        ]

    # -- setters ------------------------------------------------------------------------------

    def _set_rf(self, value: int) -> None:
        self._advance()
        self.rf_enable = value == mib.ON
        self._carrier_changed("snmp_set")

    def _set_frequency(self, value: int) -> None:
        self.frequency_khz = value
        self.truth.tunes.append({"at": utcnow(), "frequency_mhz": value / 1000})
        self._snapshot()

    def _set_power(self, value: int) -> None:
        self._advance()
        self.setpoint_w = value / 10

    def _check_switch(self, value: int) -> None:
        _on_off(value)
        if not self.carrier:
            raise Refused("inconsistentValue", "zone codes need the carrier on")

    def _switch(self, z: Zone, on: bool) -> None:
        z.on, z.switches, z.last_switched = on, z.switches + 1, max(1, self.uptime_ticks)
        self.truth.zone_switches.append({"at": utcnow(), "zone": z.index, "name": z.name,
                                         "code": z.code, "on": on,
                                         "sent": mib.zone_command(z.code, on),
                                         "frequency_khz": self.frequency_khz})
        self.truth.zone_changes.append({"at": utcnow(), "zones": {
            str(i): zone.on for i, zone in sorted(self.zones.items())}})
        self._snapshot()

    def _check_code(self, z: Zone, value: bytes) -> None:
        code = value.decode("ascii", errors="replace")
        if not 2 <= len(code) <= 8 or set(code) - mib.ZONE_CODE_SYMBOLS:
            raise Refused("wrongValue", "2-8 DTMF symbols")
        if any(o.code == code and o is not z for o in self.zones.values()):
            raise Refused("inconsistentValue", "another zone has this code")

    # -- faults -------------------------------------------------------------------------------

    async def on_fault(self, fault: Fault, params: dict[str, Any], *, active: bool) -> None:
        agent = self.agent
        self._advance()
        if fault is Fault.OFFLINE:
            agent.close_port() if active else agent.open_port()
        elif fault is Fault.SLOW:
            agent.faults.delay = float(params.get("delay", 3.0)) if active else 0.0
        elif fault is Fault.GARBAGE:
            mode = params.get("mode", "bytes")
            agent.faults.garbage = active and mode != "types"
            agent.faults.wrong_types = active and mode == "types"
        elif fault is Fault.DROP_CONNECTION and active:
            agent.faults.drop_next = int(params.get("requests", 1))
        elif fault is Fault.HANG:
            agent.faults.hang = active
        elif fault is Fault.WRONG_CREDENTIALS:
            agent.reconfigure(self._factory_credentials() if active else self.credentials)
        elif fault is Fault.POWER_LOSS:
            if active:
                self.powered = False
                self._carrier_changed("power_loss")
                await agent.stop()
            else:
                self.powered = True
                self._boot()
                await agent.start()
                self._carrier_changed("boot")
        elif fault is Fault.REBOOT and active:
            self.booting = True
            self._carrier_changed("reboot")
            await agent.stop()
            await asyncio.sleep(float(params.get("seconds", 0.3)))
            self.firmware = str(params.get("firmware", self.firmware))
            self._boot()
            self.booting = False
            await agent.start()
            self._carrier_changed("boot")
        # power_loss_battery and antenna are read by the physics on every reading

    def _factory_credentials(self) -> AgentCredentials:
        return AgentCredentials(communities=dict(FACTORY_COMMUNITIES),
                                users=[V3User(u.name, FACTORY_KEY, FACTORY_KEY if u.priv_key
                                              else None, u.auth, u.priv, u.write)
                                       for u in self.credentials.users])

    # -- introspection ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        reading = self.readings()
        return {
            "listening": self.agent.listening, "powered": self.powered,
            "firmware": self.firmware, "uptime_s": round(self.uptime_ticks / 100, 1),
            "rf_enable": self.rf_enable, "carrier": self.carrier,
            "frequency_khz": self.frequency_khz, "setpoint_w": self.setpoint_w,
            "forward_w": reading["forward"] / 10, "reflected_w": reading["reflected"] / 100,
            "vswr": reading["vswr"] / 100, "pa_temperature": reading["pa_temperature"] / 10,
            "supply_v": reading["supply"] / 10, "power_source":
                "battery" if reading["source"] == mib.BATTERY else "mains",
            "battery": reading["battery"], "audio_source": self.audio_source(),
            "alarms": [name for bit, name in mib.ALARM_BITS.items()
                       if reading["alarm_bits"] >> bit & 1],
            "rds": dict(self.rds),
            "zones": [{"index": z.index, "code": z.code, "name": z.name, "on": z.on,
                       "switches": z.switches} for z in self.zones.values()],
            "snmp_engine_boots": self.agent.boots,
            "on_air": self.on_air(),
        }

    def registration(self) -> dict[str, Any]:
        """How to register the transmitter: with its communities (v2c), or — built with
        ``snmp_version=3`` — as its first read-write USM user, authPriv."""
        config: dict[str, Any] = {"host": self.host, "port": self.port,
                                  "snmp_version": self.snmp_version}
        if self.snmp_version == "3":
            user = next(u for u in self.credentials.users if u.write and u.priv_key)
            config |= {"user": user.name, "auth_protocol": user.auth, "auth_key": user.auth_key,
                       "priv_protocol": user.priv, "priv_key": user.priv_key}
        else:
            config |= {"community": self._community(False),
                       "write_community": self._community(True)}
        if self.decoder is not None:
            config.update(decoder_url=self.decoder.url, decoder_api_key=self.decoder.api_key)
        return {"plugin": "radivina", "kind": DeviceKind.FM_TRANSMITTER.value,
                "config": config}

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """One receiver cluster per row of the zone table, as children of the transmitter
        registered as ``parent_id``."""
        return [{"plugin": "radivina", "kind": DeviceKind.FM_RECEIVER.value,
                 "parent_id": parent_id, "config": {"zone": i}} for i in sorted(self.zones)]

    def _community(self, writable: bool) -> str:
        return next(c for c, w in self.credentials.communities.items() if w is writable)

    def connection_info(self) -> dict[str, Any]:
        reg = self.registration()
        extra = " ".join(f"--config {k}={v}" for k, v in reg["config"].items())
        user = self.credentials.users[0]
        return {
            "protocol": "snmp (v2c, v3)", "host": self.host, "port": self.port,
            "serial": self.serial, "read_community": self._community(False),
            "write_community": self._community(True),
            "v3_users": [{"user": u.name, "auth": u.auth, "auth_key": u.auth_key,
                          "priv": u.priv, "priv_key": u.priv_key, "write": u.write}
                         for u in self.credentials.users],
            "decoder": self.decoder.connection_info() if self.decoder else None,
            "add": f"ttcs devices add --plugin radivina --kind fm_transmitter --area AREA "
                   f"{extra}",
            "snmpwalk": f"snmpwalk -v2c -c {self._community(False)} "
                        f"-M +docs/spec -m +RADIVINA-FM-MIB {self.host}:{self.port} radivina",
            "snmpget_v3": f"snmpget -v3 -l authPriv -u {user.name} -a SHA -A {user.auth_key} "
                          f"-x AES -X {user.priv_key} {self.host}:{self.port} "
                          "1.3.6.1.4.1.99137.1.1.2.1.0",
        }


# -- value checks (raise Refused with the error-status the MIB says) ----------------------------


def _on_off(value: int) -> None:
    if value not in (mib.ON, mib.OFF):
        raise Refused("wrongValue", "on(1) or off(2)")


def _frequency(value: int) -> None:
    low, high = mib.FREQUENCY_KHZ
    if not low <= value <= high or value % mib.FREQUENCY_STEP_KHZ:
        raise Refused("wrongValue", f"{low}-{high} kHz on a {mib.FREQUENCY_STEP_KHZ} kHz raster")


def _within(low: int, high: int) -> Any:
    def check(value: int) -> None:
        if not low <= value <= high:
            raise Refused("wrongValue", f"{low}-{high}")
    return check


def _rds_text(size: int) -> Any:
    def check(value: bytes) -> None:
        if len(value) > size:
            raise Refused("wrongLength", f"at most {size} characters")
        if any(b < 0x20 or b > 0x7E for b in value):  # the RDS basic character set
            raise Refused("wrongValue", "printable ASCII only")
    return check


def _utf8(size: int) -> Any:
    def check(value: bytes) -> None:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused("wrongValue", "UTF-8 text") from exc
        if len(text) > size:
            raise Refused("wrongLength", f"at most {size} characters")
    return check


# -- the fleet --------------------------------------------------------------------------------


async def build(options: SimOptions) -> Fleet:
    """One transmitter and its decoder per station (``--count``); options: ``community``,
    ``write_community``, ``decoder_key``, ``firmware``, ``zones`` (count, default 4),
    ``thermal_tau``, ``ambient``, ``snmp_version`` (``3``: the registration it prints uses
    the SNMPv3 user ``ttcs``, authPriv, instead of the communities)."""
    prefix = options.serial_prefix or "RV"
    extra = options.extra
    devices: list[SimulatedDevice] = []
    for n in range(1, options.count + 1):
        port = options.port + (n - 1) * 2 if options.port else 0
        decoder = AudioDecoder(f"{prefix}-{n:04d}-DEC", host=options.host,
                               port=port + 1 if port else 0,
                               api_key=extra.get("decoder_key", "vc-secret"))
        zones = [Zone(i, f"{1030 + i}", f"Cụm loa {i}")
                 for i in range(1, int(extra.get("zones", "4")) + 1)]
        devices.append(RadiVinaTransmitter(
            f"{prefix}-{n:04d}", host=options.host, port=port,
            read_community=extra.get("community", "public"),
            write_community=extra.get("write_community", "private"),
            firmware=extra.get("firmware", "2.4.1"), zones=zones, decoder=decoder,
            thermal_tau=float(extra.get("thermal_tau", "60")),
            ambient=float(extra.get("ambient", "32")),
            snmp_version=extra.get("snmp_version", "2c")))
        devices.append(decoder)
    return Fleet(devices, info={"vendor": VENDOR, "model": MODEL,
                                "mib": "docs/spec/RADIVINA-FM-MIB.mib"})


SPEC = SimulatorSpec(
    name="radivina", kinds=(DeviceKind.FM_TRANSMITTER.value, DeviceKind.FM_RECEIVER.value),
    protocol="snmp v2c/v3 (RADIVINA-FM-MIB) + http (decoder)",
    description="RadiVina RV-FMT30 FM transmitter (SNMP agent, zone table) with its VietCast "
                "audio decoder (--option community=..., write_community=..., zones=N)",
    build=build)


__all__ = ["SPEC", "FmTruth", "RadiVinaTransmitter", "Zone", "build"]
