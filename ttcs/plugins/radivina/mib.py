"""RADIVINA-FM-MIB (``docs/spec/RADIVINA-FM-MIB.mib``) as numbers: the OIDs and values the
driver reads and writes and the simulator serves. A test checks every name here against the
MIB file with net-snmp's ``snmptranslate``, so the two cannot drift apart."""

from __future__ import annotations

Oid = tuple[int, ...]

ENTERPRISE = 99137  # invented: see the MIB file
RADIVINA: Oid = (1, 3, 6, 1, 4, 1, ENTERPRISE)
FM_MIB: Oid = (*RADIVINA, 1)
PRODUCT_FMT30: Oid = (*RADIVINA, 2, 1)  # sysObjectID of an RV-FMT30

_OBJECTS = (*FM_MIB, 1)
_IDENTITY, _TX, _RDS, _ALARMS, _ZONES = ((*_OBJECTS, n) for n in range(1, 6))

#: object types (without instance) by their MIB name
OBJECTS: dict[str, Oid] = {
    "rvFmSerialNumber": (*_IDENTITY, 1),
    "rvFmModelName": (*_IDENTITY, 2),
    "rvFmFirmwareVersion": (*_IDENTITY, 3),
    "rvFmRatedPower": (*_IDENTITY, 4),
    "rvFmRfEnable": (*_TX, 1),
    "rvFmFrequency": (*_TX, 2),
    "rvFmPowerSetpoint": (*_TX, 3),
    "rvFmForwardPower": (*_TX, 4),
    "rvFmReflectedPower": (*_TX, 5),
    "rvFmVswr": (*_TX, 6),
    "rvFmPaTemperature": (*_TX, 7),
    "rvFmSupplyVoltage": (*_TX, 8),
    "rvFmPowerSource": (*_TX, 9),
    "rvFmBatteryCharge": (*_TX, 10),
    "rvFmAudioInput": (*_TX, 11),
    "rvFmRdsPs": (*_RDS, 1),
    "rvFmRdsRt": (*_RDS, 2),
    "rvFmRdsPi": (*_RDS, 3),
    "rvFmAlarmBits": (*_ALARMS, 1),
    "rvFmVswrAlarmThreshold": (*_ALARMS, 2),
    "rvFmPaTempAlarmThreshold": (*_ALARMS, 3),
    "rvFmZoneCount": (*_ZONES, 1),
    "rvFmZoneCode": (*_ZONES, 2, 1, 2),
    "rvFmZoneName": (*_ZONES, 2, 1, 3),
    "rvFmZoneState": (*_ZONES, 2, 1, 4),
    "rvFmZoneLastSwitched": (*_ZONES, 2, 1, 5),
    "rvFmZoneSwitchCount": (*_ZONES, 2, 1, 6),
}
ZONE_TABLE: Oid = (*_ZONES, 2)
ZONE_COLUMNS = ("rvFmZoneCode", "rvFmZoneName", "rvFmZoneState", "rvFmZoneLastSwitched",
                "rvFmZoneSwitchCount")

#: the SNMPv2-MIB system group every agent has
SYSTEM: dict[str, Oid] = {
    "sysDescr": (1, 3, 6, 1, 2, 1, 1, 1),
    "sysObjectID": (1, 3, 6, 1, 2, 1, 1, 2),
    "sysUpTime": (1, 3, 6, 1, 2, 1, 1, 3),
    "sysContact": (1, 3, 6, 1, 2, 1, 1, 4),
    "sysName": (1, 3, 6, 1, 2, 1, 1, 5),
    "sysLocation": (1, 3, 6, 1, 2, 1, 1, 6),
}


def scalar(name: str) -> Oid:
    """The instance OID of a scalar (``.0`` appended)."""
    return (*(OBJECTS.get(name) or SYSTEM[name]), 0)


def zone(column: str, index: int) -> Oid:
    """The instance OID of a zone table cell."""
    return (*OBJECTS[column], index)


ON, OFF = 1, 2  # RvOnOff
MAINS, BATTERY = 1, 2  # rvFmPowerSource
AUDIO_PRESENT, AUDIO_SILENT = 1, 2  # rvFmAudioInput

#: rvFmAlarmBits: bit number -> the fault name the hub shows
ALARM_BITS: dict[int, str] = {0: "high_vswr", 1: "pa_over_temperature", 2: "on_battery",
                              3: "low_battery", 4: "audio_silent", 5: "rf_foldback"}

FREQUENCY_KHZ = (54_000, 68_000)  # the band for commune FM stations
FREQUENCY_STEP_KHZ = 10
ZONE_CODE_SYMBOLS = frozenset("0123456789ABCD*#")


def zone_command(code: str, on: bool) -> str:
    """The DTMF sequence the transmitter keys to switch the zone with ``code``."""
    return f"*{code}{'1' if on else '0'}#"


def bits_to_int(octets: bytes) -> int:
    """A BITS value (bit 0 is the high bit of the first octet) as an integer bit mask."""
    mask = 0
    for n, byte in enumerate(octets):
        for bit in range(8):
            if byte & (0x80 >> bit):
                mask |= 1 << (n * 8 + bit)
    return mask
