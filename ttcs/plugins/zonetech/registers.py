"""The ZoneTech ZA-series register map: where each value lives, its type and its scaling.

One source for the driver and the simulator; ``docs/plugins/zonetech.md`` has the same map
as a table for installers (and ``mbpoll``). Addresses are 0-based protocol addresses (the
"PDU address"; ZoneTech's manual numbers coils from 00001 and input registers from 30001).
32-bit values use ZoneTech's word order: **low word first** (``WordOrder.LOW_FIRST``, "CDAB").
"""

from __future__ import annotations

from typing import Final

from ...adapters.registers import WordOrder

WORD_ORDER: Final = WordOrder.LOW_FIRST
MAX_LINES: Final = 8

# -- coils (FC 01 read, 05/15 write) ---------------------------------------------------------
#: coil ``LINE_RELAY + n - 1`` switches loudspeaker line ``n`` (1 = on)
LINE_RELAY: Final = 0

# -- discrete inputs (FC 02) -----------------------------------------------------------------
DI_MAINS: Final = 0  # mains present
DI_ON_BATTERY: Final = 1  # running on the battery
DI_FAULT: Final = 2  # any amplifier fault bit set

# -- holding registers (FC 03 read, 06/16 write) ---------------------------------------------
#: ``LINE_VOLUME + n - 1``: volume of line ``n``, 0-100 %
LINE_VOLUME: Final = 0
MASTER_VOLUME: Final = 16  # 0-100 %
VOLUME_MAX: Final = 100

# -- input registers (FC 04) -----------------------------------------------------------------
SERIAL: Final = 0  # 8 registers, ASCII, 2 characters each (high byte first), NUL padded
SERIAL_WORDS: Final = 8
LINE_COUNT: Final = 8  # number of loudspeaker lines (the model is "ZA-<lines>")
FIRMWARE: Final = 9  # major × 100 + minor
FIRMWARE_BUILD: Final = 10
TEMPERATURE: Final = 20  # heatsink, int16, 0.1 °C
SUPPLY_VOLTAGE: Final = 21  # uint32 (21-22, low word first), mV: mains AC or battery DC
OUTPUT_CURRENT: Final = 23  # uint32 (23-24, low word first), mA, all lines together
FAULT_BITS: Final = 25  # bit field, see FAULTS
POWER_BITS: Final = 26  # bit field, see POWER
BATTERY_CHARGE: Final = 27  # %
UPTIME: Final = 28  # uint32 (28-29, low word first), seconds since power-on
#: ``LINE_CURRENT + n - 1``: current into line ``n``, uint16, mA
LINE_CURRENT: Final = 40
LINE_FAULTS: Final = 48  # bit n-1 set: line n is out of its impedance range
IDENTITY_BLOCK: Final = (0, 11)  # (address, count): serial, lines, firmware
TELEMETRY_BLOCK: Final = (20, 10)  # temperature .. uptime
LINE_BLOCK: Final = (40, 9)  # line currents and the line fault mask

TEMPERATURE_SCALE: Final = 0.1
VOLTAGE_SCALE: Final = 0.001
CURRENT_SCALE: Final = 0.001

#: FAULT_BITS, bit 0 first
FAULTS: Final = ("overtemperature", "output_short", "overload", "psu_fault", "line_fault",
                 "protection", "cabinet_open")
#: POWER_BITS, bit 0 first
POWER: Final = ("mains_present", "on_battery", "battery_charging")
