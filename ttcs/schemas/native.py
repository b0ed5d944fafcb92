"""The native device protocol: MQTT + JSON, spoken by devices that need no plugin.

Topics (``{serial}`` is the device serial; the prefix is ``ttcs/v1``):

==============================  ===========  ==========================================
topic                           direction    payload
==============================  ===========  ==========================================
``ttcs/v1/dev/{serial}/birth``  device→hub   :class:`Birth`, retained
``ttcs/v1/dev/{serial}/conn``   device→hub   :class:`Presence`, retained; also the
                                             device's last will (``online: false``)
``ttcs/v1/dev/{serial}/status`` device→hub   :class:`~ttcs.schemas.device.DeviceStatus`
``ttcs/v1/dev/{serial}/event``  device→hub   :class:`DeviceEvent`
``ttcs/v1/dev/{serial}/cmd``    hub→device   a :data:`~ttcs.schemas.command.Command`
``ttcs/v1/dev/{serial}/ack``    device→hub   :class:`~ttcs.schemas.command.CommandResult`
==============================  ===========  ==========================================

QoS 1 everywhere; the device answers each command on ``ack`` with the command's id and
must treat a repeated ``idempotency_key`` as already done (answer with the first result).
``rejected`` is final (bad input, altered media, not allowed) and remembered under the key;
``failed`` means a passing problem (media server unreachable) and is *not* remembered, so the
hub's retry of the same key is attempted afresh.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import AwareDatetime, Identifier, Model, utcnow
from .device import DeviceInfo
from .event import AlarmEvent, PlayEvent

PREFIX = "ttcs/v1/dev"
PROTOCOL_VERSION: Literal["ttcs-native/1"] = "ttcs-native/1"


def topic(serial: str, leaf: str) -> str:
    """Topic of one device: ``topic("SPK-1", "cmd") == "ttcs/v1/dev/SPK-1/cmd"``."""
    return f"{PREFIX}/{serial}/{leaf}"


class Birth(Model):
    """Published (retained) by a device each time it connects."""

    protocol: Literal["ttcs-native/1"] = PROTOCOL_VERSION
    info: DeviceInfo
    at: AwareDatetime = Field(default_factory=utcnow)


class Presence(Model):
    """Retained presence flag; the broker publishes ``online: false`` as the device's will."""

    online: bool
    at: AwareDatetime | None = None
    reason: Literal["connect", "disconnect", "will", "power_loss", "reboot"] | None = None


class DeviceEvent(Model):
    """An event raised by the device: proof of play or an alarm."""

    event: PlayEvent | AlarmEvent = Field(discriminator="type")
    serial: Identifier
