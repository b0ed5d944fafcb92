"""What an event-stream client missed while it was away (``Last-Event-ID``).

Browsers' ``EventSource`` and most SSE clients reconnect by themselves and send the id of
the last event they got. The hub answers with what came after it, then the live stream:

- from memory (:class:`RecentEvents`, the last few thousand events of every streamed type,
  ``device.status`` included) for a short gap — the usual case;
- from the store for a longer one: every event type but ``device.status`` is recorded
  (status lives in ``device_state``: the client reads the current state instead), then
  what memory holds beyond it, since the recorder writes in batches.

An id the hub knows nothing of (too old, or from another hub) gets an ``event: reset``: the
client should read the current state again. A replay is capped; past the cap, the client
gets the newest events and a ``reset`` first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sqlalchemy import select

from ...schemas import EVENT_ADAPTER, Event
from ..events import EventBus
from ..store import Store
from ..store.tables import EventRow


class RecentEvents:
    """A ring of the bus's latest events of the streamed types."""

    def __init__(self, bus: EventBus, types: frozenset[str], size: int) -> None:
        self._types = types
        self._ring: deque[Event] = deque(maxlen=size)
        self._unsubscribe: Callable[[], None] = bus.subscribe(self._keep)

    def _keep(self, event: Event) -> None:
        if event.type in self._types:
            self._ring.append(event)

    def close(self) -> None:
        self._unsubscribe()

    def after(self, last_id: str) -> list[Event] | None:
        """The events after ``last_id`` (None: it is not in memory)."""
        ring = list(self._ring)
        for index in range(len(ring) - 1, -1, -1):
            if ring[index].id == last_id:
                return ring[index + 1:]
        return None

    def snapshot(self) -> list[Event]:
        return list(self._ring)


async def missed(recent: RecentEvents, store: Store, last_id: str, types: set[str],
                 limit: int) -> tuple[list[Event], bool]:
    """The events after ``last_id`` of ``types``, oldest first, at most ``limit`` (the
    newest); and whether the client must start again from the current state (the id is
    unknown, or more was missed than ``limit``)."""
    in_memory = recent.after(last_id)
    if in_memory is not None:
        found = [e for e in in_memory if e.type in types]
        return found[-limit:], len(found) > limit
    async with store.sessions() as s:
        seq = (await s.execute(select(EventRow.seq).where(EventRow.id == last_id))).scalar()
        if seq is None:
            return [], True
        rows = list((await s.execute(
            select(EventRow.payload).where(EventRow.seq > seq, EventRow.type.in_(types))
            .order_by(EventRow.seq.desc()).limit(limit + 1))).scalars())
    truncated = len(rows) > limit
    stored = [EVENT_ADAPTER.validate_python(p) for p in reversed(rows[:limit])]
    seen = {e.id for e in stored}
    newest = stored[-1].at if stored else None
    extra = [e for e in recent.snapshot() if e.type in types and e.id not in seen
             and (newest is None or e.at >= newest)]
    found = stored + extra
    return found[-limit:], truncated or len(found) > limit
