"""The embedded MQTT broker (amqtt) for a one-machine hub: ``make run`` needs no Mosquitto.

Production deployments point ``TTCS_MQTT_URL`` at Mosquitto or EMQX instead. amqtt speaks
MQTT 3.1.1 only and may upgrade QoS on delivery; Mosquitto is the reference broker.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import structlog

from ..adapters.mqtt import MqttEndpoint
from ..aio import wait_for

log = structlog.get_logger("ttcs.broker")


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    @classmethod
    def from_url(cls, url: str) -> EmbeddedBroker:
        endpoint = MqttEndpoint.from_url(url)
        return cls(endpoint.host, endpoint.port)

    async def start(self) -> None:
        from amqtt.broker import Broker

        logging.getLogger("amqtt").setLevel(logging.ERROR)
        loopback = self.host in ("localhost",) or _is_loopback(self.host)
        if not loopback:
            log.warning("broker.open_to_network", host=self.host,
                        hint="the embedded broker allows anonymous clients; bind it to "
                        "127.0.0.1 or use Mosquitto with passwords and TLS")
        self._broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                                      "max_connections": 0}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        })
        await self._broker.start()
        log.info("broker.started", url=f"mqtt://{self.host}:{self.port}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down; a shutdown that hangs (amqtt can, with clients still
        attached) is abandoned after ``timeout`` rather than holding the hub's stop."""
        broker, self._broker = self._broker, None
        if broker is not None:
            try:
                await wait_for(broker.shutdown(), timeout)
            except TimeoutError:
                log.warning("broker.shutdown_timed_out", seconds=timeout)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
