"""The hub's MQTT wire protocol: against a real Mosquitto, and against a scripted broker on a
real socket for what a well-behaved broker never does (split packets, silence, garbage,
a small Receive Maximum)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiomqtt
import pytest

from tests.support.wait import eventually
from ttcs.adapters.mqtt import MqttConnection, MqttEndpoint
from ttcs.adapters.mqtt_wire import (
    SUBSCRIBE,
    MalformedPacket,
    Message,
    MqttCodeError,
    MqttError,
    Session,
    _read_varint,
    check_topic,
    packet,
    publish_packet,
    varint,
)
from ttcs.core.errors import AuthFailed, DeviceTimeout
from ttcs.testing.mosquitto import Mosquitto


@pytest.mark.parametrize("value", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152,
                                   268_435_455])
def test_variable_byte_integers_round_trip(value: int) -> None:
    raw = varint(value)
    assert len(raw) == 1 + (value >= 128) + (value >= 16_384) + (value >= 2_097_152)
    assert _read_varint(raw, 0) == (value, len(raw))


def test_a_variable_byte_integer_of_five_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        _read_varint(b"\xff\xff\xff\xff\x01", 0)


@pytest.mark.parametrize("bad", ["a/+/b", "a/#", ""])
def test_wildcards_cannot_be_published_to(bad: str) -> None:
    with pytest.raises(ValueError, match="topic name"):
        check_topic(bad)


# -- against Mosquitto ------------------------------------------------------------------------


async def _open(mosquitto: Mosquitto, into: list[Message], *, version: int = 4,
                client_id: str = "wire-test") -> Session:
    return await Session.open("127.0.0.1", mosquitto.port, client_id, on_message=into.append,
                              version=version, keepalive=10)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_and_receive_at_every_qos(mosquitto: Mosquitto, version: int,
                                                qos: int) -> None:
    got: list[Message] = []
    session = await _open(mosquitto, got, version=version)
    try:
        assert await session.request(SUBSCRIBE, [("wire/qos/#", qos)]) == [qos]
        sizes = [0, 1, 127, 128, 20_000, 300_000]  # remaining lengths of 1 to 3 bytes
        for n, size in enumerate(sizes):
            done = session.publish(f"wire/qos/{n}", bytes([n]) * size, qos=qos)
            assert (done is None) == (qos == 0)
            if done is not None:
                await done
        await eventually(lambda: len(got) == len(sizes))
        await asyncio.sleep(0.3)  # nothing more (QoS 2: exactly once)
        assert [(m.topic, len(m.payload), m.qos) for m in got] == [
            (f"wire/qos/{n}", size, qos) for n, size in enumerate(sizes)]
        assert all(m.payload == bytes([n]) * len(m.payload) for n, m in enumerate(got))
    finally:
        await session.disconnect()


async def test_mqtt5_properties_of_another_client_are_skipped(mosquitto: Mosquitto) -> None:
    got: list[Message] = []
    session = await _open(mosquitto, got, version=5)
    try:
        await session.request(SUBSCRIBE, [("wire/props", 1)])
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("station", "Hương Trà"), ("k", "v")]
        properties.ContentType = "application/json"
        properties.MessageExpiryInterval = 30
        async with aiomqtt.Client("127.0.0.1", mosquitto.port,
                                  protocol=aiomqtt.ProtocolVersion.V5) as other:
            await other.publish("wire/props", b'{"ok":true}', qos=1, properties=properties)
        await eventually(lambda: len(got) == 1)
        assert got[0].payload == b'{"ok":true}'
    finally:
        await session.disconnect()


async def test_retained_messages_arrive_flagged(mosquitto: Mosquitto) -> None:
    got: list[Message] = []
    session = await _open(mosquitto, got)
    try:
        await (session.publish("wire/retained", b"state", qos=1, retain=True) or asyncio.sleep(0))
        await session.request(SUBSCRIBE, [("wire/retained", 1)])
        await eventually(lambda: len(got) == 1)
        assert got[0].retain and got[0].payload == b"state"
    finally:
        await session.disconnect()


async def test_a_refused_login_is_an_auth_failure_not_an_outage() -> None:
    broker = Mosquitto(users={"hub": "right"}).start()
    try:
        with pytest.raises(MqttCodeError) as refused:
            await Session.open("127.0.0.1", broker.port, "wire-auth", on_message=lambda _: None,
                               username="hub", password="wrong")
        assert refused.value.rc == 5
        connection = MqttConnection(MqttEndpoint.from_url(broker.url("hub", "wrong")))
        with pytest.raises(AuthFailed):
            await connection.start(wait=5)
        await connection.stop()
        ok = MqttConnection(MqttEndpoint.from_url(broker.url("hub", "right")))
        await ok.start(wait=5)
        await ok.stop()
    finally:
        broker.stop()


# -- against a scripted broker ------------------------------------------------------------------


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    """A TCP server on a free port running ``script`` for each connection."""
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length = shift = 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return first, await reader.readexactly(length)


def connack(properties: bytes | None = None) -> bytes:
    return packet(0x20, b"\x00\x00" + (b"" if properties is None else
                                       varint(len(properties)) + properties))


async def test_packets_split_at_every_byte_are_put_back_together() -> None:
    stream = b"".join(publish_packet(b"\x00\x05a/b/c", bytes([n]) * size, 1, False, n + 1,
                                     False)
                      for n, size in enumerate([3, 200, 17_000]))
    acked: list[bytes] = []

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)  # CONNECT
        writer.write(connack())
        for i in range(len(stream)):  # one byte per write, each its own segment
            writer.write(stream[i:i + 1])
            await writer.drain()
            if i % 1000 == 0:
                await asyncio.sleep(0)
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                acked.append((await read_packet(reader))[1])

    got: list[Message] = []
    async with scripted(broker) as port:
        session = await Session.open("127.0.0.1", port, "split", on_message=got.append)
        await eventually(lambda: len(got) == 3 and len(acked) == 3, timeout=20)
        session.abort()
    assert [len(m.payload) for m in got] == [3, 200, 17_000]
    assert acked == [b"\x00\x01", b"\x00\x02", b"\x00\x03"]  # a PUBACK for each


async def test_a_silent_broker_is_given_up_after_the_keepalive() -> None:
    pings = 0

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pings
        await read_packet(reader)
        writer.write(connack())
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                first, _ = await read_packet(reader)
                pings += first == 0xC0  # and never a PINGRESP

    async with scripted(broker) as port:
        session = await Session.open("127.0.0.1", port, "silent", on_message=lambda _: None,
                                     keepalive=1)
        with pytest.raises(MqttError, match="PINGRESP"):
            await asyncio.wait_for(asyncio.shield(session.closed), 5)
    assert pings == 1


async def test_garbage_from_the_broker_ends_the_connection_not_the_loop() -> None:
    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(connack() + b"\x00\x02\xff\xff")  # packet type 0 is reserved
        await writer.drain()
        await asyncio.sleep(1)

    async with scripted(broker) as port:
        session = await Session.open("127.0.0.1", port, "garbage", on_message=lambda _: None)
        with pytest.raises(MalformedPacket):
            await asyncio.wait_for(asyncio.shield(session.closed), 5)


async def test_the_brokers_receive_maximum_bounds_what_is_in_flight() -> None:
    seen: list[int] = []
    most_unacked = 0

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal most_unacked
        first, body = await read_packet(reader)
        assert body[6] == 5  # MQTT 5
        writer.write(connack(b"\x21\x00\x02"))  # Receive Maximum 2
        unacked: list[bytes] = []
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                try:
                    first, body = await asyncio.wait_for(read_packet(reader), 0.2)
                except TimeoutError:  # quiet: acknowledge what came, one at a time
                    if unacked:
                        writer.write(b"\x40\x02" + unacked.pop(0))
                    continue
                if first >> 4 == 3:
                    topic_length = int.from_bytes(body[:2], "big")
                    mid = body[2 + topic_length:4 + topic_length]
                    seen.append(int(body[2 + topic_length + 3:].decode()))
                    unacked.append(mid)
                    most_unacked = max(most_unacked, len(unacked))

    async with scripted(broker) as port:
        session = await Session.open("127.0.0.1", port, "window", on_message=lambda _: None,
                                     version=5)
        assert session.window == 2
        futures = [session.publish("w/x", str(n), qos=1) for n in range(6)]
        await asyncio.wait_for(asyncio.gather(*futures), 20)  # type: ignore[arg-type]
        session.abort()
    assert seen == list(range(6)) and most_unacked == 2


async def test_a_publish_given_up_while_queued_is_never_sent() -> None:
    seen: list[bytes] = []

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(connack(b"\x21\x00\x01"))  # one in flight at a time
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                first, body = await read_packet(reader)
                if first >> 4 == 3:
                    seen.append(body[-1:])
                    if body[-1:] == b"A":
                        await asyncio.sleep(0.6)  # B times out meanwhile
                    writer.write(b"\x40\x02" + body[5:7])

    async with scripted(broker) as port:
        connection = MqttConnection(MqttEndpoint.from_url(f"mqtt://127.0.0.1:{port}?version=5"))
        await connection.start(wait=5)
        first = asyncio.ensure_future(connection.publish("q/a", b"A", timeout=5))
        await asyncio.sleep(0.05)
        with pytest.raises(DeviceTimeout):
            await connection.publish("q/b", b"B", timeout=0.2)
        await first
        await connection.publish("q/c", b"C", timeout=5)
        await connection.stop()
    assert seen == [b"A", b"C"]


async def test_what_was_published_before_a_drop_still_leaves(mosquitto: Mosquitto) -> None:
    """A device that answers and then loses its link (a reboot, a cut cable) sends the
    answer first: writes waiting for the end of the loop's turn go out before the abort."""
    got: list[Message] = []
    listener = await _open(mosquitto, got, client_id="wire-listener")
    try:
        await listener.request(SUBSCRIBE, [("wire/last/#", 1)])
        device = await _open(mosquitto, [], client_id="wire-device")
        device.publish("wire/last/ack", b"accepted", qos=1)
        device.abort()
        await eventually(lambda: [m.payload for m in got] == [b"accepted"])
    finally:
        await listener.disconnect()


async def test_a_large_payload_arriving_in_many_reads_is_whole(mosquitto: Mosquitto) -> None:
    got: list[Message] = []
    session = await _open(mosquitto, got, client_id="wire-large")
    try:
        await session.request(SUBSCRIBE, [("wire/large", 1)])
        payload = bytes(range(256)) * (4 * 4096)  # 4 MiB: a remaining length of 4 bytes
        done = session.publish("wire/large", payload, qos=1)
        assert done is not None
        await done
        await eventually(lambda: len(got) == 1, timeout=20)
        assert got[0].payload == payload
    finally:
        await session.disconnect()
