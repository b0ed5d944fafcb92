"""Shared transports (MQTT, Modbus TCP, SNMP, HTTP) and the error boundary.

Everything a plugin needs to talk to a device lives here: reconnection, timeouts, per-device
serialisation, and translation of every library exception into :mod:`ttcs.core.errors`.
"""

from .mqtt import MqttConnection, MqttEndpoint
from .pool import Transports

__all__ = ["MqttConnection", "MqttEndpoint", "Transports"]
