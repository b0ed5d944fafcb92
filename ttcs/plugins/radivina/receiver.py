"""Driver of an FM receiver cluster: a row of its transmitter's zone table.

A cluster has no address of its own: the hub reaches it through its transmitter's driver
(``context.parent()``), which reads the zone's row and sends the zone's in-band code. Its
identity is the transmitter's serial and the zone index (``RV-0001-Z2``).

- status: the zone's row; *playing* while the zone is on, the carrier on and programme audio
  present; *off* while the zone or the carrier is off;
- ``power``: switch the zone on or off; ``play``: switch the zone on and play through the
  transmitter's decoder (plays of one broadcast to several clusters share one decoder
  session); ``stop``: switch the zone off (other clusters may still be listening).
"""

from __future__ import annotations

from typing import ClassVar

from ...core.driver import DeviceDriver
from ...core.errors import CommandRejected, DeviceUnreachable
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
    StopCommand,
)
from .config import ReceiverConfig
from .transmitter import VENDOR, RadiVinaTransmitterDriver, switched_at


class RadiVinaReceiverDriver(DeviceDriver):
    """A receiver cluster switched by its RadiVina transmitter."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.FM_RECEIVER})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.POWER, Capability.AUDIO_PLAY, Capability.AUDIO_STREAM})
    config_model = ReceiverConfig
    iot_class = IotClass.POLL
    poll_interval = 60.0

    @property
    def config(self) -> ReceiverConfig:
        return self.context.config  # type: ignore[no-any-return]

    def transmitter(self) -> RadiVinaTransmitterDriver:
        parent = self.context.parent()
        if not isinstance(parent, RadiVinaTransmitterDriver):
            raise DeviceUnreachable(
                "a receiver cluster is reached through its RadiVina transmitter: register it "
                "with --parent TRANSMITTER_ID" if parent is None else
                f"the parent device is a {type(parent).__name__}, not a RadiVina transmitter")
        return parent

    async def probe(self) -> DeviceInfo:
        tx = self.transmitter()
        info = await tx.probe()
        zone, *_ = await tx.zone(self.config.zone)
        return DeviceInfo(
            serial=f"{info.serial}-Z{self.config.zone}", vendor=VENDOR,
            model=f"{info.model} zone", firmware=info.firmware, kind=DeviceKind.FM_RECEIVER,
            capabilities=sorted(self.capabilities), address=info.address,
            extra={"zone": self.config.zone, "code": zone["code"], "name": zone["name"],
                   "transmitter": info.serial})

    async def read_status(self) -> DeviceStatus:
        zone, rf_on, audio, uptime = await self.transmitter().zone(self.config.zone)
        if not zone["on"] or not rf_on:
            activity = Activity.OFF
        else:
            activity = Activity.PLAYING if audio else Activity.IDLE
        telemetry: dict[str, float | int | str | bool] = {
            "zone": zone["index"], "zone_code": zone["code"], "zone_name": zone["name"],
            "zone_on": zone["on"], "rf_on": rf_on, "switch_count": zone["switches"]}
        when = switched_at(zone, uptime)
        if when is not None:
            telemetry["last_switched"] = when
        return DeviceStatus(activity=activity, telemetry=telemetry)

    async def execute(self, command: Command) -> CommandResult:
        tx = self.transmitter()
        index = str(self.config.zone)
        try:
            if isinstance(command, PowerCommand):
                zones = await tx.switch_zones({index: command.on})
                return CommandResult(command_id=command.id, status=CommandStatus.DONE,
                                     data={"zones": zones})
            if isinstance(command, StopCommand):
                zones = await tx.switch_zones({index: False})
                return CommandResult(command_id=command.id, status=CommandStatus.DONE,
                                     data={"zones": zones})
            if isinstance(command, PlayCommand):
                return await tx.play_on_zones(command, [self.config.zone], self.context.link)
        except CommandRejected as exc:
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code=exc.code, detail=str(exc)[:2000])
        return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                             code="unsupported",
                             detail=f"a receiver cluster does not do '{command.type}'")


__all__ = ["RadiVinaReceiverDriver"]
