"""A shared, self-healing MQTT connection.

One :class:`MqttConnection` per broker serves every driver that talks through it: handlers
subscribe to topic filters, the connection re-subscribes after every reconnect, and reconnects
with exponential backoff and jitter (a new :class:`~ttcs.adapters.mqtt_wire.Session` each
time). Losing and regaining the broker is logged once each, not once per attempt. The wire
protocol is the hub's own (:mod:`ttcs.adapters.mqtt_wire`; why, there).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from asyncio.trsock import TransportSocket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
from pydantic import SecretStr

from ..aio import wait_event
from ..core.config import redact_url
from ..core.errors import AuthFailed, ConfigError, DeviceError, DeviceUnreachable
from .errors import map_mqtt_errors, mqtt_error
from .mqtt_wire import SUBSCRIBE, UNSUBSCRIBE, Message, MqttError, MqttTimeout, Session, Will

log = structlog.get_logger("ttcs.mqtt")

#: seconds a stopping connection waits for its run loop (DISCONNECT) before it gives up
STOP_TIMEOUT = 5.0

Handler = Callable[[Message], Awaitable[None] | None]


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

    async def session(self, client_id: str, *, on_message: Callable[[Message], None],
                      version: int | None = None, **options: Any) -> Session:
        """A new connection to this broker with its credentials and TLS (see
        :meth:`Session.open` for ``options``); ``version`` overrides the URL's."""
        return await Session.open(
            self.host, self.port, client_id, on_message=on_message,
            version=version or self.version, username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            tls=self.tls_context(), **options)

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


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
                 will: Will | None = None, keepalive: int = 30,
                 on_connect: Callable[[], Awaitable[None]] | None = None,
                 backoff: tuple[float, float] = (0.5, 30.0), clean_session: bool = True,
                 max_inflight_messages: int | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.client_id = client_id or f"ttcs-{uuid.uuid4().hex[:12]}"
        self._will = will
        self._keepalive = keepalive
        self._on_connect = on_connect
        self._backoff = backoff
        self._clean_session = clean_session
        self._max_inflight = max_inflight_messages or MAX_INFLIGHT
        self._connect_timeout = connect_timeout
        self._subs: dict[str, _Subscription] = {}
        self._routes: dict[str, list[_Subscription]] = {}  # topic -> matching subscriptions
        self._session: Session | None = None
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
            # bounded: a broker that never answers must not keep the hub from stopping
            done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("mqtt.stop_timeout", broker=self.endpoint.display,
                            seconds=STOP_TIMEOUT)
            elif not task.cancelled() and task.exception() is not None:
                log.debug("mqtt.stopped_with_error", error=str(task.exception()))
        session, self._session = self._session, None
        if session is not None:
            session.abort()
        self.connected.clear()

    def drop(self) -> None:
        """Close the socket without DISCONNECT (the broker then publishes the will).

        Used by simulators to model a cut cable or power loss; the run loop reconnects unless
        stopped.
        """
        if self._session is not None:
            self._session.abort()

    def socket(self) -> TransportSocket | None:
        """The current connection's socket (None while down)."""
        return None if self._session is None else self._session.socket()

    async def _run(self) -> None:
        delay = self._backoff[0]
        down_logged = False
        endpoint = self.endpoint
        while not self._stopping:
            session: Session | None = None
            try:
                with map_mqtt_errors(f"broker {endpoint.display}"):
                    session = await endpoint.session(
                        self.client_id, on_message=self._dispatch, keepalive=self._keepalive,
                        clean=self._clean_session or endpoint.version == 5, will=self._will,
                        max_inflight=self._max_inflight, timeout=self._connect_timeout)
                    self._session = session
                    if self._subs:
                        await self._subscribe(session, [(s.filter, s.qos)
                                                        for s in self._subs.values()])
                    self.connects += 1
                    self.last_error = None
                    self.connected.set()
                    if down_logged:
                        log.info("mqtt.restored", broker=endpoint.display,
                                 client=self.client_id)
                        down_logged = False
                    delay = self._backoff[0]
                    if self._on_connect is not None:
                        await self._on_connect()
                    await asyncio.shield(session.closed)  # returns only by raising on loss
            except asyncio.CancelledError:
                if session is not None:
                    await session.disconnect()
                raise
            except DeviceError as exc:
                self.last_error = exc
            except Exception as exc:  # one bad connection must not end the reconnecting
                self.last_error = DeviceUnreachable(f"broker {endpoint.display}: {exc!r}")
            finally:
                if session is not None:
                    session.abort()
                self._session = None
                self.connected.clear()
            if self._stopping:
                break
            if not down_logged:
                log.warning("mqtt.lost", broker=endpoint.display, client=self.client_id,
                            reason=str(self.last_error))
                down_logged = True
            if isinstance(self.last_error, AuthFailed):
                delay = self._backoff[1]  # hammering a broker with bad credentials helps no one
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff[1])

    async def _subscribe(self, session: Session, filters: list[tuple[str, int]]) -> None:
        codes = await session.request(SUBSCRIBE, filters)
        for (name, _), code in zip(filters, codes, strict=False):
            if code >= 0x80:
                log.warning("mqtt.subscribe_refused", broker=self.endpoint.display,
                            filter=name, code=code)

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
        session = self._session
        if session is not None and self.connected.is_set():
            # a connection lost meanwhile subscribes everything again when it is back
            with contextlib.suppress(MqttError), map_mqtt_errors("subscribe"):
                await self._subscribe(session, [(topic_filter, sub.qos)])

    async def unsubscribe(self, topic_filter: str, handler: Handler) -> None:
        sub = self._subs.get(topic_filter)
        if sub is None:
            return
        with contextlib.suppress(ValueError):
            sub.handlers.remove(handler)
        if not sub.handlers:
            del self._subs[topic_filter]
            self._routes.clear()
            session = self._session
            if session is not None and self.connected.is_set():
                with contextlib.suppress(MqttError):
                    await session.request(UNSUBSCRIBE, [(topic_filter, 0)])

    def _dispatch(self, message: Message) -> None:
        """Route one message to the handlers of every matching filter. Handlers run inline
        (keep them quick); an async handler's coroutine becomes a task."""
        topic = message.topic
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
                    log.exception("mqtt.handler_failed", topic=topic)

    def _handler_done(self, task: asyncio.Future[None]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mqtt.handler_failed", error=repr(task.exception()))

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes | str, *, qos: int = 1,
                      retain: bool = False, timeout: float = 5.0) -> None:
        """Publish; waits up to ``timeout`` for a connection and for the broker's ack.

        A message still queued behind the in-flight window when ``timeout`` passes is taken
        off the queue (never sent); one on the wire may still arrive."""
        if not self.connected.is_set():
            await self.wait_connected(timeout)
        session = self._session
        if session is None or not session.is_open:
            raise self.last_error or DeviceUnreachable(f"broker {self.endpoint.display} is down")
        try:
            done = session.publish(topic, payload, qos, retain)
            if done is None:
                return
            # a timer on the future, not asyncio.timeout: this runs once per command of a
            # fan-out, and the context manager cost more than the publish itself
            timer = asyncio.get_running_loop().call_later(timeout, _expire, done, timeout)
            try:
                await done
            finally:
                timer.cancel()
        except MqttError as exc:
            raise mqtt_error(exc, f"publish to {self.endpoint.display}") from exc


def _expire(future: asyncio.Future[None], timeout: float) -> None:
    if not future.done():  # (a queued message given up on is never sent: see Session.publish)
        future.set_exception(MqttTimeout(f"no PUBACK within {timeout:g} s"))


#: topics whose matching subscriptions are remembered (one entry per device topic seen)
ROUTES_CACHED = 200_000

#: QoS 1/2 messages on the wire at once per connection (paho's default is 20: a fan-out of
#: thousands would queue behind 20 round trips; the dispatcher bounds what is in flight)
MAX_INFLIGHT = 1000


__all__ = ["Message", "MqttConnection", "MqttEndpoint", "Will"]
