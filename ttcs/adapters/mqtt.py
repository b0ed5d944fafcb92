"""A shared, self-healing MQTT connection.

One :class:`MqttConnection` per broker serves every driver that talks through it: handlers
subscribe to topic filters, the connection re-subscribes after every reconnect, and reconnects
with exponential backoff and jitter (leaving and re-entering ``async with aiomqtt.Client``).
Losing and regaining the broker is logged once each, not once per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import select
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
import structlog
from pydantic import SecretStr

from ..aio import wait_event
from ..core.config import redact_url
from ..core.errors import AuthFailed, ConfigError, DeviceError, DeviceUnreachable
from .errors import map_mqtt_errors

log = structlog.get_logger("ttcs.mqtt")

#: seconds a stopping connection waits for its run loop (DISCONNECT) before it gives up
STOP_TIMEOUT = 5.0

Handler = Callable[[aiomqtt.Message], Awaitable[None] | None]


@dataclass(frozen=True)
class MqttEndpoint:
    """Where a broker is and how to log in: parsed from ``mqtt[s]://user:pass@host:port``.

    Query options: ``ca`` (CA file for TLS), ``insecure=1`` (skip hostname check, tests only),
    ``version=5`` (MQTT 5, needed for shared subscriptions).
    """

    host: str
    port: int
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: str | None = None
    insecure: bool = False
    version: int = 4  # 4 = MQTT 3.1.1, 5 = MQTT 5

    @classmethod
    def from_url(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(f"MQTT URL must start with mqtt:// or mqtts://, got "
                              f"{redact_url(url)!r}")
        if not parts.hostname:
            raise ConfigError(f"MQTT URL has no host: {redact_url(url)!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname, port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=SecretStr(unquote(parts.password)) if parts.password else None,
            tls=tls, ca_file=query.get("ca"), insecure=query.get("insecure") in ("1", "true"),
            version=int(query.get("version", "4")),
        )

    @property
    def display(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "hostname": self.host, "port": self.port, "username": self.username,
            "password": self.password.get_secret_value() if self.password else None,
            "protocol": (aiomqtt.ProtocolVersion.V5 if self.version == 5
                         else aiomqtt.ProtocolVersion.V311),
        }
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            kwargs["tls_context"] = context
        return kwargs


class _DirectQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's documented ``queue_type`` hook, used to hand each message to the router as
    soon as paho decodes it, instead of queueing it for an ``async for`` that costs a task and
    a wait per message. Nothing is ever queued: the connection's ``async for`` only wakes when
    the connection drops."""

    sink: Callable[[aiomqtt.Message], None]

    def put_nowait(self, item: aiomqtt.Message) -> None:
        self.sink(item)


@dataclass
class _Subscription:
    filter: str
    qos: int
    handlers: list[Handler] = field(default_factory=list)
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parts = self.filter.split("/")
        if parts[0] == "$share" and len(parts) > 2:  # $share/<group>/<filter> (MQTT 5)
            parts = parts[2:]
        self.parts = tuple(parts)

    def matches(self, topic: str) -> bool:
        """MQTT filter matching (``+`` one level, ``#`` the rest) without allocations beyond
        one split; aiomqtt's Topic.matches builds objects per call and shows in profiles."""
        levels = topic.split("/")
        parts = self.parts
        for i, part in enumerate(parts):
            if part == "#":
                return True
            if i >= len(levels) or (part != "+" and part != levels[i]):
                return False
        return len(levels) == len(parts)


class MqttConnection:
    """One long-lived client connection with reconnect, re-subscribe and topic routing."""

    def __init__(self, endpoint: MqttEndpoint, *, client_id: str | None = None,
                 will: aiomqtt.Will | None = None, keepalive: int = 30,
                 on_connect: Callable[[], Awaitable[None]] | None = None,
                 backoff: tuple[float, float] = (0.5, 30.0), clean_session: bool = True,
                 **client_options: Any) -> None:
        self.endpoint = endpoint
        self.client_id = client_id or f"ttcs-{uuid.uuid4().hex[:12]}"
        self._will = will
        self._keepalive = keepalive
        self._on_connect = on_connect
        self._backoff = backoff
        self._clean_session = clean_session
        client_options.setdefault("max_inflight_messages", MAX_INFLIGHT)
        self._options = client_options
        self._subs: dict[str, _Subscription] = {}
        self._routes: dict[str, list[_Subscription]] = {}  # topic -> matching subscriptions
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._handler_tasks: set[asyncio.Future[None]] = set()
        self.connected = asyncio.Event()
        self.last_error: DeviceError | None = None
        self.connects = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, wait: float | None = None) -> None:
        """Start connecting in the background; with ``wait``, wait that long for the first
        connection and raise the reason if it did not come."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"mqtt:{self.client_id}")
        if wait is not None:
            await self.wait_connected(wait)

    async def wait_connected(self, timeout: float) -> None:
        if self.connected.is_set():
            return  # (the common case: no timer, no task)
        await wait_event(self.connected, timeout)
        if not self.connected.is_set():
            if self.last_error is not None:
                raise self.last_error
            raise DeviceUnreachable(f"no connection to broker {self.endpoint.display} within "
                                    f"{timeout:g} s")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # bounded: a broker that never answers DISCONNECT must not keep the hub from
            # stopping (the connection is dropped with the loop then)
            done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("mqtt.stop_timeout", broker=self.endpoint.display,
                            seconds=STOP_TIMEOUT)
            elif not task.cancelled() and task.exception() is not None:
                log.debug("mqtt.stopped_with_error", error=str(task.exception()))
        self.connected.clear()

    def drop(self) -> None:
        """Close the socket without DISCONNECT (the broker then publishes the will).

        Used by simulators to model a cut cable or power loss; the run loop reconnects unless
        stopped.
        """
        client = self._client
        if client is not None:
            sock = client._client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    async def _run(self) -> None:
        delay = self._backoff[0]
        down_logged = False
        while not self._stopping:
            try:
                with map_mqtt_errors(f"broker {self.endpoint.display}"):
                    queue = self._direct_queue()
                    async with aiomqtt.Client(
                            identifier=self.client_id, will=self._will, keepalive=self._keepalive,
                            queue_type=queue,
                            clean_session=(self._clean_session
                                           if self.endpoint.version != 5 else None),
                            **self.endpoint.client_kwargs(), **self._options) as client:
                        self._client = client
                        _tune(client)
                        for sub in list(self._subs.values()):
                            await client.subscribe(sub.filter, qos=sub.qos)
                        self.connects += 1
                        self.last_error = None
                        self.connected.set()
                        if down_logged:
                            log.info("mqtt.restored", broker=self.endpoint.display,
                                     client=self.client_id)
                            down_logged = False
                        delay = self._backoff[0]
                        if self._on_connect is not None:
                            await self._on_connect()
                        async for _ in client.messages:  # returns only by raising on loss
                            pass
            except asyncio.CancelledError:
                raise
            except DeviceError as exc:
                self.last_error = exc
            except Exception as exc:  # aiomqtt internals can raise odd errors on a dead socket
                self.last_error = DeviceUnreachable(f"broker {self.endpoint.display}: {exc!r}")
            finally:
                self._client = None
                self.connected.clear()
            if self._stopping:
                break
            if not down_logged:
                log.warning("mqtt.lost", broker=self.endpoint.display, client=self.client_id,
                            reason=str(self.last_error))
                down_logged = True
            if isinstance(self.last_error, AuthFailed):
                delay = self._backoff[1]  # hammering a broker with bad credentials helps no one
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff[1])

    # -- routing ------------------------------------------------------------------------------

    async def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Route messages matching ``topic_filter`` to ``handler`` (now and after reconnects).

        The handler gets the broker's retained messages for the filter, also when the filter
        is subscribed already for another handler: the filter is subscribed again, which
        makes the broker send its retained messages again (MQTT 3.1.1 §3.8.4, MQTT 5 with
        retain handling 0). The other handlers of the filter see them again too, as they do
        after every reconnect: retained messages are state, and handlers take them as such.
        """
        sub = self._subs.get(topic_filter)
        if sub is None:
            sub = self._subs[topic_filter] = _Subscription(topic_filter, qos)
            self._routes.clear()
        sub.qos = max(sub.qos, qos)
        # in place before the broker answers: retained messages may be routed before the
        # SUBACK wakes this coroutine
        sub.handlers.append(handler)
        if self._client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError), map_mqtt_errors("subscribe"):
                await self._client.subscribe(topic_filter, qos=sub.qos)

    async def unsubscribe(self, topic_filter: str, handler: Handler) -> None:
        sub = self._subs.get(topic_filter)
        if sub is None:
            return
        with contextlib.suppress(ValueError):
            sub.handlers.remove(handler)
        if not sub.handlers:
            del self._subs[topic_filter]
            self._routes.clear()
            if self._client is not None and self.connected.is_set():
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._client.unsubscribe(topic_filter)

    def _direct_queue(self) -> type[_DirectQueue]:
        sink = self._dispatch

        class Queue(_DirectQueue):
            pass

        Queue.sink = staticmethod(sink)
        return Queue

    def _dispatch(self, message: aiomqtt.Message) -> None:
        """Route one message to the handlers of every matching filter. Handlers run inline
        (keep them quick); an async handler's coroutine becomes a task."""
        topic = message.topic.value
        subs = self._routes.get(topic)
        if subs is None:  # matched once per topic, not once per message
            if len(self._routes) >= ROUTES_CACHED:
                self._routes.clear()
            subs = self._routes[topic] = [s for s in self._subs.values() if s.matches(topic)]
        for sub in subs:
            for handler in list(sub.handlers):
                try:
                    result = handler(message)
                    if result is not None:
                        task = asyncio.ensure_future(result)
                        self._handler_tasks.add(task)
                        task.add_done_callback(self._handler_done)
                except Exception:  # one bad handler must not kill the connection
                    log.exception("mqtt.handler_failed", topic=str(message.topic))

    def _handler_done(self, task: asyncio.Future[None]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mqtt.handler_failed", error=repr(task.exception()))

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes | str, *, qos: int = 1,
                      retain: bool = False, timeout: float = 5.0) -> None:
        """Publish; waits up to ``timeout`` for a connection and for the broker's ack."""
        if not self.connected.is_set():
            await self.wait_connected(timeout)
        client = self._client
        if client is None:
            raise self.last_error or DeviceUnreachable(f"broker {self.endpoint.display} is down")
        with map_mqtt_errors(f"publish to {self.endpoint.display}"):
            pending: dict[int, Any] | None = getattr(client, "_pending_publishes", None)
            if pending is None:  # pragma: no cover - another aiomqtt: its own publish
                await client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
                return
            # aiomqtt's publish counts every pending call on each publish (a list of them
            # built per call: quadratic in a fan-out) and wraps the wait in a task; this is
            # the same protocol — paho's publish, then aiomqtt's on_publish callback marks
            # the message id done — with a future and a timeout in this task.
            info = client._client.publish(topic, payload, qos, retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
            if qos == 0 or info.is_published():
                return
            done = _Published(asyncio.get_running_loop().create_future())
            pending[info.mid] = done
            try:
                async with asyncio.timeout(timeout):
                    await done.future
            except TimeoutError:
                raise aiomqtt.MqttError("Operation timed out") from None
            finally:
                pending.pop(info.mid, None)


class _Published:
    """What aiomqtt's on_publish callback calls ``set()`` on when the broker acknowledged."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def set(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


#: topics whose matching subscriptions are remembered (one entry per device topic seen)
ROUTES_CACHED = 200_000

#: QoS 1/2 messages on the wire at once per connection (paho's default is 20: a fan-out of
#: thousands would queue behind 20 round trips; the dispatcher bounds what is in flight)
MAX_INFLIGHT = 1000


#: packets read at most each time the socket wakes the loop (see :func:`_read_in_bursts`)
READ_BURST = 256


def _read_in_bursts(client: aiomqtt.Client) -> None:
    """Read every packet waiting on the socket when it wakes the loop, not one.

    aiomqtt's reader calls paho's ``loop_read``, which reads one packet unless QoS 1/2
    messages are in flight; a status flood then cost a trip through the event loop (a
    selector call, a handle, the timers) per message, about as much as the hub's own work on
    it. paho keeps no read buffer, so the socket itself says whether another packet is
    there (a TLS socket may hold decrypted bytes: ``pending``). The burst is bounded, so a
    flood on one connection cannot keep the loop from everything else.
    """
    paho_client = client._client
    sock = paho_client.socket()
    if sock is None:
        return
    fd = sock.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    disconnected = client._disconnected
    tls = sock if isinstance(sock, ssl.SSLSocket) else None

    def read() -> None:
        try:
            for _ in range(READ_BURST):
                paho_client.loop_read()
                if paho_client.socket() is not sock:
                    return  # the connection went down while reading
                if tls is not None and tls.pending() > 0:
                    continue
                if not poller.poll(0):
                    return
        except Exception as exc:  # as aiomqtt's reader: a broken socket ends the connection
            if not disconnected.done():
                disconnected.set_exception(exc)

    asyncio.get_running_loop().add_reader(fd, read)  # in place of aiomqtt's reader


def _tune(client: aiomqtt.Client) -> None:
    """Settings aiomqtt does not expose, applied to each new connection."""
    _read_in_bursts(client)
    # aiomqtt logs a warning per publish while more than 10 calls are pending: in a fan-out,
    # a log record for nearly every command
    client.pending_calls_threshold = 1 << 30
    sock = client._client.socket()
    if isinstance(sock, socket.socket):  # (TLS sockets too: SSLSocket is one)
        # Nagle's algorithm holds a small packet until the previous one is acknowledged;
        # with delayed ACKs a request/answer exchange (command, PUBACK, ack) waited ~40 ms
        # per step. MQTT packets are small and latency is what matters.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


__all__ = ["MqttConnection", "MqttEndpoint"]
