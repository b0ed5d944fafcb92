"""The device driver contract: what a plugin implements for each kind of device it supports.

The hub creates one driver instance per registered device and drives it through this
lifecycle::

    driver = DriverClass(context)
    await driver.start()          # open subscriptions / sessions; never block on a dead device
    info = await driver.probe()   # identity: serial, model, firmware (also before registration)
    status = await driver.read_status()
    result = await driver.execute(command)   # only commands whose capability the device has
    await driver.stop()

Push drivers report status and events whenever the device sends them, through
``context.link``; poll drivers are polled by the hub's shared poller every
``poll_interval`` seconds (they never sleep on their own). Errors are the typed exceptions of
:mod:`ttcs.core.errors`: the hub reacts by type (retry, re-authenticate, give up).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import structlog
from pydantic import BaseModel, ConfigDict

from ..schemas import (
    Capability,
    Command,
    CommandResult,
    Device,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    IotClass,
)
from ..schemas.event import AlarmEvent, PlayEvent
from .errors import UnsupportedCommand

if TYPE_CHECKING:
    from ..adapters.pool import Transports
    from .config import Settings


class DriverConfig(BaseModel):
    """Base for a plugin's device configuration. Declare secrets as ``SecretStr``."""

    model_config = ConfigDict(extra="forbid")


class HubLink(Protocol):
    """What a driver may tell the hub at any time (pushed status and events)."""

    def report_status(self, status: DeviceStatus) -> None:
        """A new status from the device; the hub applies it (state, health, events)."""

    def report_event(self, event: PlayEvent | AlarmEvent) -> None:
        """A proof-of-play or alarm event the device raised."""


class NullLink:
    """A link that drops everything: used while probing a device that is not registered yet."""

    def report_status(self, status: DeviceStatus) -> None:
        return None

    def report_event(self, event: PlayEvent | AlarmEvent) -> None:
        return None


@dataclass
class DriverContext:
    """Everything a driver gets from the hub. Plugins never touch the store."""

    config: Any  # an instance of the driver's ``config_model``
    settings: Settings
    transports: Transports
    link: HubLink = field(default_factory=NullLink)
    #: the registered device; ``None`` while probing a device before registration
    device: Device | None = None
    #: returns the driver of the parent device (``via_device``), for child devices
    parent: Callable[[], DeviceDriver | None] = lambda: None
    log: Any = field(default_factory=lambda: structlog.get_logger("ttcs.driver"))


class DeviceDriver(abc.ABC):
    """Base class of every device driver. Subclass it and register the class from your plugin."""

    #: device kinds this driver handles
    kinds: ClassVar[frozenset[DeviceKind]] = frozenset()
    #: capabilities of devices driven by this driver
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: pydantic model validating each device's ``config``
    config_model: ClassVar[type[BaseModel]] = DriverConfig
    #: how status reaches the hub
    iot_class: ClassVar[IotClass] = IotClass.POLL
    #: seconds between polls, for poll drivers (a device's config may set ``poll_interval``)
    poll_interval: ClassVar[float] = 30.0

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    def poll_every(self) -> float:
        """Seconds between polls of this device: its config's ``poll_interval`` if it has one,
        else the driver's default."""
        configured = getattr(self.context.config, "poll_interval", None)
        return float(configured) if configured else type(self).poll_interval

    async def start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Open subscriptions or sessions. An unreachable device must not make this block."""

    async def stop(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release everything ``start`` opened. Called once, also after failures."""

    @abc.abstractmethod
    async def probe(self) -> DeviceInfo:
        """Ask the device who it is. Raises a :class:`~ttcs.core.errors.DeviceError`."""

    @abc.abstractmethod
    async def read_status(self) -> DeviceStatus:
        """Current status (a poll for poll drivers, the latest pushed one for push drivers)."""

    @abc.abstractmethod
    async def execute(self, command: Command) -> CommandResult:
        """Carry out one command. Must honour ``command.idempotency_key``."""


def require_capability(capabilities: frozenset[Capability] | list[Capability],
                       command: Command) -> None:
    """Raise :class:`UnsupportedCommand` unless the device has what ``command`` needs."""
    needed = type(command).capability
    if needed is not None and needed not in capabilities:
        raise UnsupportedCommand(
            f"'{command.type}' needs capability '{needed.value}', which this device lacks")
