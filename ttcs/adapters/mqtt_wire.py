"""MQTT 3.1.1 and 5 on an asyncio transport: the client side the hub needs, and nothing else.

Why the hub speaks MQTT itself rather than through paho (under aiomqtt): on the two paths
that decide how far one hub goes, paho's per-packet cost was most of the hub's. A status
flood cost paho ~20 µs of CPU per message to decode (one ``recv`` and a dozen calls per
packet, a thread-safe lock, a ``MQTTMessage`` object), about as much as everything the hub
then does with the status; an emergency fan-out cost ~100 µs per command in ``publish``
(a lock, a message object, an O(in-flight) scan per PUBACK). Here a socket read is parsed
in one loop over every complete packet in it, the PUBACKs of a read go back in one write,
and a publish is one ``bytes`` joined and written.

What is implemented (MQTT 3.1.1 OASIS standard and MQTT 5.0; section numbers are 3.1.1's):

- CONNECT with client id, clean session / clean start, keepalive, will (topic, payload,
  QoS, retain), username and password; CONNACK return / reason codes become
  :class:`MqttCodeError` (so a refused login is told apart from a dead broker);
- PUBLISH in both directions at QoS 0, 1 and 2 (PUBACK; PUBREC, PUBREL, PUBCOMP), with
  an in-flight window (ours, and the broker's Receive Maximum under MQTT 5) and the rest
  queued in order; incoming QoS 2 is delivered once per packet id (§4.3.3);
- SUBSCRIBE / UNSUBSCRIBE with their acknowledgements (per-filter reason codes);
- keepalive: PINGREQ when either direction has been quiet for half the interval, and the
  connection is given up when the broker leaves a PINGREQ unanswered for a whole one
  (the broker's Server Keep Alive overrides ours under MQTT 5);
- write back-pressure: while the transport's buffer is over its high-water mark, publishes
  wait in the queue instead of piling into the buffer.

Not implemented, because nothing in the hub uses them: MQTT 5 topic aliases (we never
offer a Topic Alias Maximum, so a broker must not send any), enhanced authentication,
request/response properties, resending our in-flight messages after a reconnect (a new
connection starts clean; what was unacknowledged fails and the caller's retry policy
decides, as the dispatcher's outbox does).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from asyncio.trsock import TransportSocket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the most a remaining length can say (§2.2.3)
MAX_REMAINING = 268_435_455

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    8, 9, 10, 11, 12, 13, 14)

_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"

#: MQTT 5 property identifiers and how their values are encoded (§2.2.2.2 of MQTT 5)
_BYTE, _TWO, _FOUR, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _UTF8, 0x08: _UTF8, 0x09: _BINARY, 0x0B: _VARINT,
    0x11: _FOUR, 0x12: _UTF8, 0x13: _TWO, 0x15: _UTF8, 0x16: _BINARY, 0x17: _BYTE,
    0x18: _FOUR, 0x19: _BYTE, 0x1A: _UTF8, 0x1C: _UTF8, 0x1F: _UTF8, 0x21: _TWO,
    0x22: _TWO, 0x23: _TWO, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _FOUR,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}
RECEIVE_MAXIMUM, SERVER_KEEP_ALIVE, REASON_STRING = 0x21, 0x13, 0x1F

_CODE_TEXT = {  # CONNACK return codes (3.1.1) and reason codes (5)
    1: "unacceptable protocol version", 2: "client identifier rejected",
    3: "server unavailable", 4: "bad user name or password", 5: "not authorised",
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8C: "bad authentication method",
    0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded",
    0x9A: "retain not supported", 0x9B: "QoS not supported", 0x9F: "connection rate exceeded",
}


class MqttError(Exception):
    """The connection or an operation on it failed."""


class MqttTimeout(MqttError):
    """The broker did not answer (a SUBSCRIBE, a PUBACK) in the time given."""


class MqttCodeError(MqttError):
    """The broker answered with a failure code (CONNACK, SUBACK, PUBACK, DISCONNECT)."""

    def __init__(self, rc: int, what: str) -> None:
        self.rc = rc
        super().__init__(f"{what}: {_CODE_TEXT.get(rc, 'code')} ({rc:#04x})")


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes for us when the connection ends without DISCONNECT."""

    topic: str
    payload: bytes | str = b""
    qos: int = 0
    retain: bool = False


class Message:
    """One PUBLISH received."""

    __slots__ = ("mid", "payload", "qos", "retain", "topic")

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool, mid: int) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.mid = mid

    def __repr__(self) -> str:
        return f"Message({self.topic!r}, {len(self.payload)} bytes, qos={self.qos})"


# -- encoding ---------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """A variable byte integer (§2.2.3)."""
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError(f"MQTT string of {len(raw)} bytes is longer than 65,535")
    return len(raw).to_bytes(2, "big") + raw


def _binary(raw: bytes) -> bytes:
    return len(raw).to_bytes(2, "big") + raw


def packet(first: int, body: bytes) -> bytes:
    if len(body) > MAX_REMAINING:
        raise ValueError(f"MQTT packet of {len(body)} bytes is too large")
    return bytes((first,)) + varint(len(body)) + body


def check_topic(topic: str) -> bytes:
    """A topic name to publish to, encoded; wildcards and empty names are refused (§4.7)."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"not a topic name to publish to: {topic!r}")
    return _utf8(topic)


def connect_packet(client_id: str, *, version: int, keepalive: int, clean: bool,
                   username: str | None, password: str | None, will: Will | None) -> bytes:
    flags = 0x02 if clean else 0
    payload = [_utf8(client_id)]
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        if version == 5:
            payload.append(b"\x00")  # no will properties
        raw = will.payload.encode() if isinstance(will.payload, str) else will.payload
        payload += [check_topic(will.topic), _binary(raw)]
    if username is not None:
        flags |= 0x80
        payload.append(_utf8(username))
    if password is not None:
        flags |= 0x40
        payload.append(_binary(password.encode()))
    header = _utf8("MQTT") + bytes((version, flags)) + keepalive.to_bytes(2, "big")
    if version == 5:
        header += b"\x00"  # no properties: session expiry 0, the broker's defaults
    return packet(CONNECT << 4, header + b"".join(payload))


def publish_packet(topic: bytes, payload: bytes, qos: int, retain: bool, mid: int,
                   v5: bool) -> bytes:
    """``topic`` as :func:`check_topic` encoded it. (Never a DUP: nothing is resent.)"""
    body = topic + (mid.to_bytes(2, "big") if qos else b"") + (b"\x00" if v5 else b"")
    return packet(0x30 | (qos << 1) | (1 if retain else 0), body + payload)


# -- decoding ---------------------------------------------------------------------------------


class MalformedPacket(MqttError):
    pass


def read_properties(data: bytes, pos: int) -> tuple[dict[int, Any], int]:
    """MQTT 5 properties at ``pos``: (identifier -> value; user properties as a list), end."""
    length, pos = _read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise MalformedPacket("properties run past the packet")
    found: dict[int, Any] = {}
    while pos < end:
        ident = data[pos]
        kind = _PROPERTY_TYPES.get(ident)
        pos += 1
        value: Any
        if kind == _BYTE:
            value, pos = data[pos], pos + 1
        elif kind == _TWO:
            value, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif kind == _FOUR:
            value, pos = int.from_bytes(data[pos:pos + 4], "big"), pos + 4
        elif kind == _VARINT:
            value, pos = _read_varint(data, pos)
        elif kind in (_UTF8, _BINARY):
            size = int.from_bytes(data[pos:pos + 2], "big")
            raw = data[pos + 2:pos + 2 + size]
            value, pos = (raw.decode(errors="replace") if kind == _UTF8 else raw), pos + 2 + size
        elif kind == _PAIR:
            pair = []
            for _ in range(2):
                size = int.from_bytes(data[pos:pos + 2], "big")
                pair.append(data[pos + 2:pos + 2 + size].decode(errors="replace"))
                pos += 2 + size
            found.setdefault(ident, []).append(tuple(pair))
            continue
        else:
            raise MalformedPacket(f"unknown property {ident:#04x}")
        found[ident] = value
    if pos != end:
        raise MalformedPacket("properties do not end where their length says")
    return found, end


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A variable byte integer at ``pos`` inside a whole packet: (value, end)."""
    read = _partial_varint(data, pos)
    if read is None:
        raise MalformedPacket("variable byte integer runs past the packet")
    return read


def _partial_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """A variable byte integer at ``pos``: (value, end), or None if ``data`` ends first
    (more bytes are yet to arrive); longer than 4 bytes is malformed."""
    value = shift = 0
    for _ in range(4):
        if pos >= len(data):
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


# -- the connection ---------------------------------------------------------------------------


class _Outgoing:
    """A publish waiting for its turn on the wire or for its acknowledgement."""

    __slots__ = ("future", "mid", "payload", "qos", "retain", "topic")

    def __init__(self, topic: bytes, payload: bytes, qos: int, retain: bool,
                 future: asyncio.Future[None] | None) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.future = future
        self.mid = 0


class Session(asyncio.Protocol):
    """One MQTT connection, from CONNECT to its loss. Not reconnecting: the owner
    (:class:`ttcs.adapters.mqtt.MqttConnection`) opens a new session after a loss."""

    def __init__(self, on_message: Callable[[Message], None], *, version: int = 4,
                 max_inflight: int = 1000, write_high_water: int = 1 << 20) -> None:
        self.on_message = on_message
        self.version = version
        self.max_inflight = max_inflight
        self._write_high_water = write_high_water
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._unwritten: list[bytes] = []
        self._needed = 0  # bytes the packet at the start of the buffer needs, when known
        self._connack: asyncio.Future[tuple[bool, dict[int, Any]]] | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}  # SUBACK/UNSUBACK waiters by mid
        self._inflight: dict[int, _Outgoing] = {}
        self._queue: deque[_Outgoing] = deque()
        self._received_qos2: set[int] = set()
        self._next_mid = 0
        self._paused = False
        self._keepalive = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._last_in = self._last_out = time.monotonic()
        self._ping_sent: float | None = None
        self.window = max_inflight

    # -- opening and closing ------------------------------------------------------------------

    @classmethod
    async def open(cls, host: str, port: int, client_id: str, *,
                   on_message: Callable[[Message], None], version: int = 4,
                   keepalive: int = 60, clean: bool = True, username: str | None = None,
                   password: str | None = None, will: Will | None = None,
                   tls: ssl.SSLContext | None = None, max_inflight: int = 1000,
                   timeout: float = 10.0) -> Session:
        """Connect, send CONNECT and wait for a successful CONNACK (raises otherwise)."""
        loop = asyncio.get_running_loop()
        session = cls(on_message, version=version, max_inflight=max_inflight)
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: session, host, port, ssl=tls,
                                         server_hostname=host if tls is not None else None)
            try:
                session._connack = loop.create_future()
                session._write(connect_packet(client_id, version=version, keepalive=keepalive,
                                              clean=clean, username=username,
                                              password=password, will=will))
                _, properties = await session._connack
            except BaseException:
                session.abort()
                raise
        session._start_keepalive(properties.get(SERVER_KEEP_ALIVE, keepalive))
        receive_maximum = properties.get(RECEIVE_MAXIMUM)
        if receive_maximum:
            session.window = min(max_inflight, receive_maximum)
        return session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self._write_high_water)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Nagle's algorithm holds a small packet until the previous one is acknowledged;
            # with delayed ACKs a command/PUBACK/ack exchange waited ~40 ms per step
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(MqttError(f"connection lost: {exc}" if exc else "connection closed"))

    def _end(self, error: MqttError) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        pending: list[asyncio.Future[Any] | None] = [self._connack, *self._acks.values()]
        pending += [o.future for o in self._inflight.values()]
        pending += [o.future for o in self._queue]
        self._acks.clear()
        self._inflight.clear()
        self._queue.clear()
        for future in pending:
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a publish nobody awaits any more is no error
        if not self.closed.done():
            self.closed.set_exception(error)
            self.closed.exception()

    async def disconnect(self, timeout: float = 2.0) -> None:
        """DISCONNECT, let the buffer drain and close (the broker drops the will)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._write_now()
        transport.write(_DISCONNECT)
        transport.close()
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        if not self.closed.done():
            transport.abort()

    def abort(self) -> None:
        """Close without DISCONNECT (the broker then publishes the will). What was written
        before is sent first, as a device's last packets leave before its link drops."""
        if self.transport is not None:
            self._write_now()
            self.transport.abort()

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    def socket(self) -> TransportSocket | None:
        return None if self.transport is None else self.transport.get_extra_info("socket")

    # -- keepalive ----------------------------------------------------------------------------

    def _start_keepalive(self, seconds: int) -> None:
        self._keepalive = float(seconds)
        if seconds > 0 and self.is_open:
            self._timer = asyncio.get_running_loop().call_later(seconds / 2, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        half = self._keepalive / 2
        if self.transport is None or self.transport.is_closing():
            return  # closing: connection_lost ends the session
        if self._ping_sent is not None and now - self._ping_sent > self._keepalive:
            self._end(MqttError(f"no PINGRESP within {self._keepalive:g} s"))
            return
        if self._ping_sent is None and (now - self._last_out >= half
                                        or now - self._last_in >= half):
            self._ping_sent = now
            self._write(_PINGREQ)
        self._timer = asyncio.get_running_loop().call_later(half / 2, self._tick)

    # -- writing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write ``data`` at the end of this turn of the loop, with whatever else is written
        in it: a fan-out's hundreds of publishes per turn then cost one ``send`` call, not
        one each (the wait is the rest of the turn, not a timer)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise MqttError("not connected")
        if not self._unwritten:
            asyncio.get_running_loop().call_soon(self._write_now)
        self._unwritten.append(data)

    def _write_now(self) -> None:
        data, self._unwritten = self._unwritten, []
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(b"".join(data) if len(data) > 1 else data[0])
            self._last_out = time.monotonic()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._drain()

    def _mid(self) -> int:
        for _ in range(0xFFFF):
            self._next_mid = self._next_mid % 0xFFFF + 1
            mid = self._next_mid
            if mid not in self._inflight and mid not in self._acks:
                return mid
        raise MqttError("no packet identifier free")  # pragma: no cover - window < 65535

    def publish(self, topic: str, payload: bytes | str, qos: int = 0,
                retain: bool = False) -> asyncio.Future[None] | None:
        """Queue a PUBLISH. QoS 0 returns None (written or queued in order); QoS 1/2 return
        a future that completes when the broker acknowledged it. Cancelling the future of a
        message still queued takes it off the queue: it is never sent."""
        if not self.is_open:
            raise MqttError("not connected")
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, got {qos}")
        raw = payload.encode() if isinstance(payload, str) else bytes(payload)
        future = asyncio.get_running_loop().create_future() if qos else None
        out = _Outgoing(check_topic(topic), raw, qos, retain, future)
        if not self._queue and not self._paused and (
                qos == 0 or len(self._inflight) < self.window):
            self._send(out)  # (the common case: straight onto the wire)
        else:
            self._queue.append(out)
            self._drain()  # (the queue may hold only messages given up on)
        return future

    def _send(self, out: _Outgoing) -> None:
        if out.qos:
            out.mid = self._mid()
            self._inflight[out.mid] = out
        self._write(publish_packet(out.topic, out.payload, out.qos, out.retain, out.mid,
                                   self.version == 5))

    def _drain(self) -> None:
        queue = self._queue
        while queue and not self._paused and self.is_open:
            out = queue[0]
            if out.future is not None and out.future.done():  # given up on while queued
                queue.popleft()
                continue
            if out.qos and len(self._inflight) >= self.window:
                return
            queue.popleft()
            self._send(out)

    async def request(self, kind: int, filters: list[tuple[str, int]],
                      timeout: float = 10.0) -> list[int]:
        """SUBSCRIBE (``filters`` with their QoS) or UNSUBSCRIBE; returns the per-filter
        codes of the acknowledgement (MQTT 3.1.1 UNSUBACK has none: an empty list)."""
        mid = self._mid()
        body = bytearray(mid.to_bytes(2, "big"))
        if self.version == 5:
            body.append(0)
        for name, qos in filters:
            body += _utf8(name)
            if kind == SUBSCRIBE:
                body.append(qos)
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._acks[mid] = future
        try:
            self._write(packet((kind << 4) | 0x02, bytes(body)))
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise MqttTimeout(f"no answer to a request within {timeout:g} s") from None
        finally:
            self._acks.pop(mid, None)

    # -- reading ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._last_in = time.monotonic()
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._needed:
                return  # a large packet still arriving: not parsed again per chunk
            data = bytes(buffer)
            buffer.clear()
        self._needed = 0
        acks: list[bytes] = []
        pos, size = 0, len(data)
        try:
            while size - pos >= 2:
                first = data[pos]
                length = data[pos + 1]
                start = pos + 2
                if length & 0x80:  # a remaining length of more than one byte (§2.2.3)
                    read = _partial_varint(data, pos + 1)
                    if read is None:
                        break  # the length itself is not all here yet
                    length, start = read
                end = start + length
                if end > size:
                    self._needed = end - pos
                    break
                if first >> 4 == PUBLISH:
                    self._on_publish(first, data, start, end, acks)
                else:
                    self._on_control(first, data[start:end])
                pos = end
                if not self.is_open:
                    return
        except MqttError as exc:
            self._end(exc)
            return
        except Exception as exc:  # a packet we cannot make sense of ends the connection
            self._end(MalformedPacket(f"malformed packet from the broker: {exc!r}"))
            return
        if pos < size:
            buffer += data[pos:]
        if acks and self.transport is not None and not self.transport.is_closing():
            self._write(b"".join(acks))

    def _on_publish(self, first: int, data: bytes, start: int, end: int,
                    acks: list[bytes]) -> None:
        qos = (first >> 1) & 0x03
        length = (data[start] << 8) | data[start + 1]
        pos = start + 2 + length
        topic = data[start + 2:pos].decode()
        mid = 0
        if qos:
            mid = (data[pos] << 8) | data[pos + 1]
            pos += 2
        if self.version == 5:
            if data[pos] == 0:
                pos += 1
            else:
                _, pos = read_properties(data, pos)
        if pos > end:
            raise MalformedPacket("PUBLISH shorter than its header")
        if qos == 2:
            acks.append(b"\x50\x02" + mid.to_bytes(2, "big"))  # PUBREC
            if mid in self._received_qos2:
                return  # a resend of one delivered already (§4.3.3)
            self._received_qos2.add(mid)
        elif qos == 1:
            acks.append(b"\x40\x02" + mid.to_bytes(2, "big"))  # PUBACK
        self.on_message(Message(topic, data[pos:end], qos, bool(first & 0x01), mid))

    def _on_control(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == CONNACK:
            self._on_connack(body)
        elif kind in (PUBACK, PUBCOMP):
            self._on_acknowledged(body)
        elif kind == PUBREC:
            mid = int.from_bytes(body[:2], "big")
            out = self._inflight.get(mid)
            code = body[2] if len(body) > 2 else 0
            if out is not None and code >= 0x80:
                self._on_acknowledged(body)
                return
            self._write(b"\x62\x02" + body[:2])  # PUBREL
        elif kind == PUBREL:
            mid = int.from_bytes(body[:2], "big")
            self._received_qos2.discard(mid)
            self._write(b"\x70\x02" + body[:2])  # PUBCOMP
        elif kind in (SUBACK, UNSUBACK):
            mid = int.from_bytes(body[:2], "big")
            pos = 2
            if self.version == 5:
                _, pos = read_properties(body, pos)
            future = self._acks.pop(mid, None)
            if future is not None and not future.done():
                future.set_result(list(body[pos:]))
        elif kind == PINGRESP:
            self._ping_sent = None
        elif kind == DISCONNECT:  # MQTT 5: the broker says why it closes
            code = body[0] if body else 0
            reason = ""
            if len(body) > 1:
                properties, _ = read_properties(body, 1)
                reason = properties.get(REASON_STRING, "")
            self._end(MqttCodeError(code, f"broker disconnected{': ' + reason if reason else ''}"))
        else:
            raise MalformedPacket(f"unexpected packet type {kind} from the broker")

    def _on_connack(self, body: bytes) -> None:
        future = self._connack
        if future is None or future.done():
            raise MalformedPacket("CONNACK twice")
        if len(body) < 2:
            raise MalformedPacket("CONNACK too short")
        code = body[1]
        properties: dict[int, Any] = {}
        if self.version == 5 and len(body) > 2:
            properties, _ = read_properties(body, 2)
        if code:
            future.set_exception(MqttCodeError(code, "broker refused the connection"))
            self.abort()
            return
        future.set_result((bool(body[0] & 0x01), properties))

    def _on_acknowledged(self, body: bytes) -> None:
        mid = int.from_bytes(body[:2], "big")
        out = self._inflight.pop(mid, None)
        if out is None:
            return  # one we gave up on, or a duplicate
        code = body[2] if len(body) > 2 else 0
        future = out.future
        if future is not None and not future.done():
            if code >= 0x80:
                future.set_exception(MqttCodeError(code, "broker refused the message"))
            else:
                future.set_result(None)
        if self._queue:
            self._drain()


__all__ = ["Message", "MqttCodeError", "MqttError", "MqttTimeout", "Session", "Will"]
