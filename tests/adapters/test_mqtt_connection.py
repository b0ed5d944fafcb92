"""The shared MQTT connection against a real Mosquitto: routing and retained messages."""

from __future__ import annotations

from collections.abc import Callable

import aiomqtt

from tests.support.wait import eventually
from ttcs.adapters.mqtt import Message, MqttConnection, MqttEndpoint
from ttcs.testing.mosquitto import Mosquitto


def _recorder(into: list[tuple[str, bytes]]) -> Callable[[Message], None]:
    def record(message: Message) -> None:
        payload = message.payload
        into.append((message.topic, payload if isinstance(payload, bytes)
                     else str(payload).encode()))

    return record


async def _retained(url: str, topic: str, payload: bytes) -> None:
    """Leave a retained message on the broker (from a client of its own)."""
    publisher = MqttConnection(MqttEndpoint.from_url(url))
    await publisher.start(wait=5)
    try:
        await publisher.publish(topic, payload, retain=True)
    finally:
        await publisher.stop()


async def test_a_second_handler_on_a_subscribed_filter_gets_the_retained_messages(
        mosquitto: Mosquitto) -> None:
    url = mosquitto.url()
    await _retained(url, "test/retained/a/state", b"on")
    await _retained(url, "test/retained/b/state", b"off")
    connection = MqttConnection(MqttEndpoint.from_url(url))
    await connection.start(wait=5)
    first: list[tuple[str, bytes]] = []
    second: list[tuple[str, bytes]] = []
    try:
        await connection.subscribe("test/retained/+/state", _recorder(first))
        await eventually(lambda: len(first) == 2)
        await connection.subscribe("test/retained/+/state", _recorder(second))
        await eventually(lambda: sorted(second) == [("test/retained/a/state", b"on"),
                                                    ("test/retained/b/state", b"off")])
    finally:
        await connection.stop()


async def test_both_handlers_of_one_filter_get_what_is_published_after(
        mosquitto: Mosquitto) -> None:
    url = mosquitto.url()
    connection = MqttConnection(MqttEndpoint.from_url(url))
    await connection.start(wait=5)
    one: list[tuple[str, bytes]] = []
    two: list[tuple[str, bytes]] = []
    try:
        await connection.subscribe("test/live/#", _recorder(one))
        await connection.subscribe("test/live/#", _recorder(two))
        async with aiomqtt.Client(hostname="127.0.0.1", port=mosquitto.port) as client:
            await client.publish("test/live/x", b"hello", qos=1)
        await eventually(lambda: one == two == [("test/live/x", b"hello")])
    finally:
        await connection.stop()
