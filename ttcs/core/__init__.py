"""The hub runtime and the plugin SDK.

What a plugin author needs is exported here: :class:`DeviceDriver` and its
:class:`DriverContext`, the :data:`hookimpl` marker, the registrars handed to the hooks, and
the typed errors. The hook contract itself is documented in :mod:`ttcs.core.hookspecs`.
"""

from .driver import DeviceDriver, DriverConfig, DriverContext, HubLink, require_capability
from .errors import (
    AuthFailed,
    CommandRejected,
    DeviceError,
    DeviceNotReady,
    DeviceTimeout,
    DeviceUnreachable,
    PermanentDeviceError,
    ProtocolError,
    UnsupportedCommand,
)
from .hookspecs import ENTRY_POINT_GROUP, hookimpl, hookspec
from .registrars import DriverRegistrar, SimulatorRegistrar

__all__ = [
    "ENTRY_POINT_GROUP", "AuthFailed", "CommandRejected", "DeviceDriver", "DeviceError",
    "DeviceNotReady", "DeviceTimeout", "DeviceUnreachable", "DriverConfig", "DriverContext",
    "DriverRegistrar", "HubLink", "PermanentDeviceError", "ProtocolError", "SimulatorRegistrar",
    "UnsupportedCommand", "hookimpl", "hookspec", "require_capability",
]
