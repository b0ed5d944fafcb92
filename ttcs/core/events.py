"""The hub's one event bus: everything that happens is published here as a typed event.

Subscribers are either quick synchronous callbacks (metrics, state) or bounded async streams
(recorders, the API's event stream). A slow stream never slows the publisher: when its queue
is full the oldest event is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from ..schemas import Event

log = structlog.get_logger("ttcs.events")

Callback = Callable[[Event], None]


@dataclass
class Stream:
    queue: asyncio.Queue[Event]
    types: frozenset[str] | None
    dropped: int = 0
    overflow: Callable[[], None] | None = None  # told when this stream loses an event


@dataclass
class EventBus:
    callbacks: list[Callback] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    published: int = 0
    dropped: int = 0  # events dropped by any stream, ever (a stream's own count dies with it)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns an unsubscribe function."""
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback) if callback in self.callbacks else None

    @contextlib.asynccontextmanager
    async def stream(self, *, types: set[str] | None = None, maxsize: int = 10_000,
                     overflow: Callable[[], None] | None = None
                     ) -> AsyncIterator[asyncio.Queue[Event]]:
        """A bounded queue receiving events (optionally only these ``types``) while open.
        ``overflow()`` is called (once per lost event) when it is full and drops one."""
        stream = Stream(asyncio.Queue(maxsize), frozenset(types) if types else None,
                        overflow=overflow)
        self.streams.append(stream)
        try:
            yield stream.queue
        finally:
            self.streams.remove(stream)
            if stream.dropped:
                log.warning("events.stream_dropped", dropped=stream.dropped)

    def publish(self, event: Event) -> None:
        self.published += 1
        for callback in list(self.callbacks):
            try:
                callback(event)
            except Exception:  # a subscriber bug must not stop the others
                log.exception("events.callback_failed", event=event.type)
        for stream in self.streams:
            if stream.types is not None and event.type not in stream.types:
                continue
            if stream.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    stream.queue.get_nowait()
                stream.dropped += 1
                self.dropped += 1
                if stream.overflow is not None:
                    try:
                        stream.overflow()
                    except Exception:
                        log.exception("events.overflow_callback_failed")
            stream.queue.put_nowait(event)
