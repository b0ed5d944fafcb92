"""Outgoing webhooks for the source information system: events POSTed to subscribers, signed,
retried with backoff, and persisted so a restart loses nothing that was accepted.

Flow: a bus callback (O(1)) queues each event of a streamed type; a writer matches it to the
enabled webhooks (type and area, following the area tree and mergers) and inserts one
``webhook_deliveries`` row per webhook (unique on webhook and event, so a redelivered event
is not queued twice); a sender POSTs due rows, a few at a time, and reschedules failures with
exponential backoff and jitter until ``webhook_attempts`` is reached.

Every request carries::

    X-TTCS-Timestamp: <unix seconds>
    X-TTCS-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
    X-TTCS-Event: <event type>          X-TTCS-Delivery: <delivery number>

so a receiver checks the signature and refuses old timestamps (replays).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog
from pydantic import AnyHttpUrl, Field, SecretStr, field_serializer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...adapters.http import request_json
from ...aio import cancel_and_wait, wait_event, wait_for
from ...schemas import Event, Model, new_id
from ...schemas.access import Role
from ...schemas.base import AwareDatetime, Identifier
from ..access.policy import AccessPolicy, Principal, within
from ..config import ApiSettings
from ..errors import DeviceError, NotFound
from ..events import EventBus
from ..store import Store
from ..store.tables import WebhookDeliveryRow, WebhookRow

log = structlog.get_logger("ttcs.webhooks")

WEBHOOK_TYPES = ("device.status", "device.connectivity", "command.result", "play", "alarm")
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_BACKOFF = 3600.0


class WebhookSpec(Model):
    """A webhook to create. Without ``secret`` the hub makes one and shows it once."""

    url: AnyHttpUrl
    types: list[str] = Field(default_factory=lambda: ["play", "alarm"], description=
                             f"event types to send, of: {', '.join(WEBHOOK_TYPES)}")
    area_code: Identifier | None = Field(default=None, description="only events of this "
                                         "area and below; empty: the creator's whole scope")
    secret: SecretStr | None = Field(default=None, min_length=16, max_length=200)

    @field_serializer("secret")
    def _mask(self, value: SecretStr | None) -> str | None:
        return None if value is None else "**********"


class Webhook(Model):
    id: str
    url: str
    types: list[str]
    area_code: str | None = None
    owner: str
    enabled: bool = True
    created_at: AwareDatetime


class CreatedWebhook(Model):
    webhook: Webhook
    secret: str = Field(description="the signing secret, shown this once")


class Delivery(Model):
    seq: int
    event_id: str
    type: str
    state: str = Field(description="pending, delivered or failed (gave up)")
    attempts: int
    next_attempt_at: AwareDatetime
    last_error: str | None = None
    delivered_at: AwareDatetime | None = None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-TTCS-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((now or time.time()) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(id=row.id, url=row.url, types=list(row.types), area_code=row.area_code,
                   owner=row.owner, enabled=row.enabled, created_at=row.created_at)


@dataclass
class _Target:
    id: str
    types: frozenset[str]
    # the webhook's area as a scope, checked with the policy's own rule (the role does not
    # matter here: the creator's rights were checked when the webhook was made)
    scope: Principal
    secret: str
    url: str


class WebhookService:
    """Webhooks stored in the hub; :meth:`start` runs the writer and the sender."""

    def __init__(self, store: Store, bus: EventBus, settings: ApiSettings) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self._queue: asyncio.Queue[Event] = asyncio.Queue(10_000)
        self._unsubscribe: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._targets: list[_Target] | None = None
        self._policy = AccessPolicy(store)
        self.lost = 0  # events not queued because the queue was full

    # -- managing -----------------------------------------------------------------------------

    async def create(self, spec: WebhookSpec, owner: str, actor: str) -> CreatedWebhook:
        unknown = sorted(set(spec.types) - set(WEBHOOK_TYPES))
        if unknown:
            from ..errors import InvalidInput

            raise InvalidInput(f"unknown event type(s) {', '.join(unknown)}; choose from "
                               f"{', '.join(WEBHOOK_TYPES)}")
        secret = spec.secret.get_secret_value() if spec.secret else secrets.token_urlsafe(32)
        row = WebhookRow(id=new_id("wh"), url=str(spec.url), types=sorted(set(spec.types)),
                         area_code=spec.area_code, owner=owner, enabled=True,
                         secret=self.store.secrets.seal({"secret": secret}),
                         created_at=datetime.now(UTC))
        async with self.store.sessions.begin() as s:
            s.add(row)
            await s.flush()
            await self.store.audit.record(actor, "webhook.create", row.id, session=s, detail={
                "url": row.url, "types": row.types, "area": row.area_code})
        self._targets = None
        return CreatedWebhook(webhook=_webhook(row), secret=secret)

    async def get(self, webhook_id: str) -> Webhook:
        async with self.store.sessions() as s:
            row = await s.get(WebhookRow, webhook_id)
        if row is None or not row.enabled:
            raise NotFound(f"no webhook '{webhook_id}'")
        return _webhook(row)

    async def list_webhooks(self, *, area: str | None = None, limit: int | None = None,
                   offset: int = 0) -> list[Webhook]:
        from ..areascope import covered_areas

        query = select(WebhookRow).where(WebhookRow.enabled.is_(True)).order_by(
            WebhookRow.created_at, WebhookRow.id).offset(offset)
        if area is not None:
            query = query.where(WebhookRow.area_code.in_(covered_areas(area)))
        if limit is not None:
            query = query.limit(limit)
        async with self.store.sessions() as s:
            return [_webhook(r) for r in (await s.execute(query)).scalars()]

    async def delete(self, webhook_id: str, actor: str) -> None:
        """Stop a webhook (kept disabled, with its deliveries, for the record)."""
        async with self.store.sessions.begin() as s:
            row = await s.get(WebhookRow, webhook_id)
            if row is None or not row.enabled:
                raise NotFound(f"no webhook '{webhook_id}'")
            row.enabled = False
            await self.store.audit.record(actor, "webhook.delete", webhook_id, session=s)
        self._targets = None

    async def deliveries(self, webhook_id: str, *, limit: int = 100, offset: int = 0
                         ) -> list[Delivery]:
        await self.get(webhook_id)
        query = (select(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id)
                 .order_by(WebhookDeliveryRow.seq.desc()).limit(limit).offset(offset))
        async with self.store.sessions() as s:
            return [Delivery(seq=r.seq, event_id=r.event_id, type=str(r.event.get("type")),
                             state=r.state, attempts=r.attempts,
                             next_attempt_at=r.next_attempt_at, last_error=r.last_error,
                             delivered_at=r.delivered_at)
                    for r in (await s.execute(query)).scalars()]

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._take)
        self._tasks = [asyncio.create_task(self._writer(), name="webhooks:writer"),
                       asyncio.create_task(self._sender(), name="webhooks:sender")]

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        with contextlib.suppress(asyncio.TimeoutError):
            await wait_for(self._queue.join(), 5)  # what was taken is written
        await cancel_and_wait(self._tasks, "webhooks")

    def _take(self, event: Event) -> None:
        if event.type not in WEBHOOK_TYPES:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost += 1

    async def _load_targets(self) -> list[_Target]:
        if self._targets is None:
            async with self.store.sessions() as s:
                rows = (await s.execute(select(WebhookRow).where(
                    WebhookRow.enabled.is_(True)))).scalars().all()
            self._targets = [_Target(r.id, frozenset(r.types), Principal(
                name=r.owner, role=Role.ADMINISTRATOR, area_code=r.area_code),
                self.store.secrets.open(r.secret)["secret"], r.url) for r in rows]
        return self._targets

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:
                log.exception("webhooks.write_failed", count=len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, events: list[Event]) -> None:
        targets = await self._load_targets()
        if not targets:
            return
        ancestry = await self._policy.ancestry([e.area_code for e in events] +
                                               [t.scope.area_code for t in targets])
        now = datetime.now(UTC)
        rows = [{"webhook_id": t.id, "event_id": e.id, "event": e.model_dump(mode="json"),
                 "state": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
                for e in events for t in targets
                if e.type in t.types and within(e.area_code, t.scope, ancestry)]
        if not rows:
            return
        insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        async with self.store.sessions.begin() as s:
            await s.execute(insert(WebhookDeliveryRow).values(rows).on_conflict_do_nothing(
                index_elements=["webhook_id", "event_id"]))
        self._wake.set()

    async def _sender(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    sent = await self.send_due(session)
                except Exception:
                    log.exception("webhooks.send_failed")
                    sent = 0
                if not sent:
                    self._wake.clear()
                    await wait_event(self._wake, 1.0)

    async def send_due(self, session: aiohttp.ClientSession) -> int:
        """POST every due delivery (up to 50 at once); returns how many were tried."""
        now = datetime.now(UTC)
        async with self.store.sessions() as s:
            due = list((await s.execute(
                select(WebhookDeliveryRow).where(WebhookDeliveryRow.state == PENDING,
                                                 WebhookDeliveryRow.next_attempt_at <= now)
                .order_by(WebhookDeliveryRow.seq).limit(50))).scalars())
        if not due:
            return 0
        targets = {t.id: t for t in await self._load_targets()}
        await asyncio.gather(*(self._deliver(session, row, targets.get(row.webhook_id))
                               for row in due))
        return len(due)

    async def _deliver(self, session: aiohttp.ClientSession, row: WebhookDeliveryRow,
                       target: _Target | None) -> None:
        if target is None:  # the webhook was deleted meanwhile
            await self._update(row.seq, state=FAILED, last_error="webhook deleted")
            return
        body = json.dumps(row.event, ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "ttcs-hub-webhooks",
                   "X-TTCS-Event": str(row.event.get("type")),
                   "X-TTCS-Delivery": str(row.seq), "X-TTCS-Timestamp": str(stamp),
                   "X-TTCS-Signature": sign(target.secret, stamp, body)}
        try:
            await request_json(session, "POST", target.url, what=f"webhook {target.id}",
                               timeout=self.settings.webhook_timeout, data=body,
                               headers=headers)
        except DeviceError as exc:
            attempts = row.attempts + 1
            if attempts >= self.settings.webhook_attempts:
                log.warning("webhook.gave_up", webhook=target.id, event_id=row.event_id,
                            error=str(exc))
                await self._update(row.seq, state=FAILED, attempts=attempts,
                                   last_error=str(exc)[:500])
                return
            delay = min(MAX_BACKOFF, self.settings.webhook_backoff * 2 ** (attempts - 1))
            delay *= random.uniform(0.8, 1.2)
            await self._update(row.seq, attempts=attempts, last_error=str(exc)[:500],
                               next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay))
            return
        await self._update(row.seq, state=DELIVERED, attempts=row.attempts + 1,
                           delivered_at=datetime.now(UTC), last_error=None)

    async def _update(self, seq: int, **values: Any) -> None:
        async with self.store.sessions.begin() as s:
            row = await s.get(WebhookDeliveryRow, seq)
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)

