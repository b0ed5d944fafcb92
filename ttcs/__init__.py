"""TTCS Hub: one platform for the grassroots-information loudspeakers and boards of every vendor.

Packages:

- :mod:`ttcs.schemas` — the common device and content schema (pydantic v2);
- :mod:`ttcs.core` — the hub runtime and the plugin SDK;
- :mod:`ttcs.adapters` — shared transports (MQTT, Modbus TCP, SNMP, HTTP);
- :mod:`ttcs.plugins` — built-in vendor plugins;
- :mod:`ttcs.simulators` — simulated devices speaking the vendors' wire protocols;
- :mod:`ttcs.conformance` — the certification kit.
"""

__version__ = "0.1.0"

#: Version of the plugin SDK contract (hookspecs + DeviceDriver). Plugins declare a range.
SDK_VERSION = "1.0"
