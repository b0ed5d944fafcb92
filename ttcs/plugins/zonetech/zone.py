"""Driver of one loudspeaker line of a ZoneTech station (kind ``wired_zone``).

A line is no box of its own: it is a relay, a volume register and a current reading inside
its controller, and it is reached only through the controller's driver
(``context.parent()``, the hub's ``via_device`` link). Its identity is the controller's serial
and the line number (``ZT-0001-L3``). When the controller goes offline the hub marks its
lines offline too and stops polling them until it is back.

- ``play``: this line's relay on (the others as they are), then the decoder plays — the
  programme is heard on every line that is on, as on any wired station with one amplifier.
- ``stop``: this line's relay off; the decoder stops when no line is left on.
- ``power``: the relay alone. ``set_volume``: this line's volume register.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from ...core.driver import DeviceDriver, DriverConfig
from ...core.errors import CommandRejected, DeviceUnreachable, PermanentDeviceError
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
    PowerCommand,
    PowerSource,
    SetVolumeCommand,
    StopCommand,
)
from . import registers as reg
from .controller import VENDOR, ZoneControllerDriver
from .station import StationSnapshot


class ZoneConfig(DriverConfig):
    line: int = Field(ge=1, le=reg.MAX_LINES, description="line number on the controller, "
                      "1 = the first relay")
    poll_interval: float | None = Field(default=None, gt=0, description="seconds between "
                                        "polls (default 10)")


class WiredZoneDriver(DeviceDriver):
    """One line of a ZoneTech controller, driven through the controller's driver."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.WIRED_ZONE})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.AUDIO_PLAY, Capability.AUDIO_STREAM, Capability.AUDIO_VOLUME,
        Capability.POWER})
    config_model = ZoneConfig
    iot_class = IotClass.POLL
    poll_interval = 10.0

    @property
    def line(self) -> int:
        return int(self.context.config.line)

    def controller(self) -> ZoneControllerDriver:
        parent = self.context.parent()
        if parent is None:
            raise DeviceUnreachable(f"line {self.line}: its controller is not running in this "
                                    "hub (register the line with --parent CONTROLLER_ID)")
        if not isinstance(parent, ZoneControllerDriver):
            raise PermanentDeviceError(f"line {self.line}: the parent device is not a ZoneTech "
                                       f"controller but a {type(parent).__name__}")
        return parent

    async def _snapshot(self) -> StationSnapshot:
        # the controller's poll and every line's share one read of the station while fresh
        snap = await self.controller().snapshot(max_age=self.poll_every() / 2)
        if self.line > snap.identity.lines:
            raise PermanentDeviceError(f"line {self.line} does not exist on this "
                                       f"{snap.identity.model}")
        return snap

    async def probe(self) -> DeviceInfo:
        controller = self.controller()
        identity = await controller.identity(fresh=True)
        if self.line > identity.lines:
            raise PermanentDeviceError(f"the {identity.model} {identity.serial} has lines "
                                       f"1-{identity.lines}, not {self.line}")
        return DeviceInfo(serial=f"{identity.serial}-L{self.line}", vendor=VENDOR,
                          model=f"{identity.model} line", firmware=identity.firmware,
                          kind=DeviceKind.WIRED_ZONE, capabilities=sorted(self.capabilities),
                          address=f"{controller.config.host}:{controller.config.port}/"
                                  f"{controller.config.unit}#line{self.line}",
                          extra={"controller_serial": identity.serial, "line": self.line})

    async def read_status(self) -> DeviceStatus:
        return zone_status(await self._snapshot(), self.line)

    async def execute(self, command: Command) -> CommandResult:
        controller = self.controller()
        try:
            data = await self._execute(controller, command)
        except CommandRejected as exc:
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code=exc.code, detail=str(exc)[:2000])
        return CommandResult(command_id=command.id, status=CommandStatus.DONE, data=data)

    async def _execute(self, controller: ZoneControllerDriver, command: Command
                       ) -> dict[str, Any]:
        if isinstance(command, PlayCommand):
            # the controller remembers results by idempotency key: a repeat plays once
            result = await controller.execute_for_line(command, self.line)
            if not result.ok:
                raise CommandRejected(result.detail or result.code, code=result.code)
            return result.data
        if isinstance(command, StopCommand):
            return await controller.release_line(self.line)
        if isinstance(command, PowerCommand):
            return {"lines_on": await controller.switch({self.line: command.on})}
        if isinstance(command, SetVolumeCommand):
            await controller.write_volume(reg.LINE_VOLUME + self.line - 1, command.volume)
            return {"volume": command.volume}
        raise CommandRejected(f"a ZoneTech line does not do '{command.type}'",
                              code="unsupported")


def zone_status(snap: StationSnapshot, line: int) -> DeviceStatus:
    amp = snap.amplifier
    on = snap.relays[line - 1]
    line_fault = amp.line_faults[line - 1]
    audible = on and snap.audio
    if line_fault or (on and "protection" in amp.faults):
        activity = Activity.FAULT
    elif not on:
        activity = Activity.OFF
    elif audible:
        activity = Activity.PLAYING
    else:
        activity = Activity.IDLE
    faults = ["line_fault"] if line_fault else []
    return DeviceStatus(
        activity=activity, volume=snap.volumes[line - 1],
        power_source=PowerSource.BATTERY if amp.on_battery else PowerSource.MAINS,
        firmware=snap.identity.firmware, faults=faults,
        current_item=snap.decoder.label if audible and snap.decoder else None,
        telemetry={"relay_on": on, "line_current_a": amp.line_currents[line - 1],
                   "line": line, "controller_serial": snap.identity.serial})


__all__ = ["WiredZoneDriver", "ZoneConfig", "zone_status"]
