"""Database tables (SQLAlchemy 2). Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AreaRow(Base):
    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    parent_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("areas.code"), index=True)
    merged_into: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class DeviceRow(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("vendor", "serial", name="uq_devices_vendor_serial"),)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    vendor: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    serial: Mapped[str] = mapped_column(String(128))
    mac: Mapped[str | None] = mapped_column(String(17), unique=True)
    firmware: Mapped[str] = mapped_column(String(100))
    plugin: Mapped[str] = mapped_column(String(128), index=True)
    area_code: Mapped[str] = mapped_column(String(64), ForeignKey("areas.code"), index=True)
    village_code: Mapped[str | None] = mapped_column(String(64), ForeignKey("areas.code"))
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    parent_id: Mapped[str | None] = mapped_column(String(128), ForeignKey("devices.id"),
                                                  index=True)
    capabilities: Mapped[list[str]] = mapped_column(JSONType)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    secrets: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


class GroupRow(Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    area_code: Mapped[str | None] = mapped_column(String(64), ForeignKey("areas.code"),
                                                  index=True)
    description: Mapped[str | None] = mapped_column(Text)


class DeviceGroupRow(Base):
    __tablename__ = "device_groups"
    device_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True)


class DeviceStateRow(Base):
    """Latest known status of each device (one row per device, overwritten)."""

    __tablename__ = "device_state"
    device_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    connectivity: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class DiscoveredRow(Base):
    __tablename__ = "discovered"
    plugin: Mapped[str] = mapped_column(String(128), primary_key=True)
    serial: Mapped[str] = mapped_column(String(128), primary_key=True)
    info: Mapped[dict[str, Any]] = mapped_column(JSONType)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)  # how to reach it (no secrets)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_device_at", "device_id", "at"),)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    device_id: Mapped[str | None] = mapped_column(String(128))
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)


class AuditRow(Base):
    """Append-only, hash-chained record of every operator action."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # a fork cannot exist
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# -- content and approval (migration 0002) ---------------------------------------------------


class ContentRow(Base):
    """A content item; ``revision`` grows on every edit, approvals name the revision."""

    __tablename__ = "content"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    media_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_mime: Mapped[str | None] = mapped_column(String(100))
    media_duration: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str] = mapped_column(String(35))
    level: Mapped[str] = mapped_column(String(16))
    source_level: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(300))
    area_code: Mapped[str | None] = mapped_column(String(64), ForeignKey("areas.code"),
                                                  index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


class ContentDecisionRow(Base):
    """History of approval decisions; the latest 'approved' row of the current revision is
    the item's approval. ``statement`` is exactly what was signed."""

    __tablename__ = "content_approvals"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(String(128), ForeignKey("content.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    approver: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    statement: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    signature: Mapped[str | None] = mapped_column(String(200))


class ApproverRow(Base):
    """Someone who may approve content of one issuing level within an area's subtree."""

    __tablename__ = "approvers"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str | None] = mapped_column(String(64), ForeignKey("areas.code"),
                                                  index=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64url, 32 raw bytes
    private_key: Mapped[str] = mapped_column(Text)  # sealed with the store's SecretBox
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class SigningKeyRow(Base):
    """The hub's own Ed25519 keys (the TTS render key); private halves sealed."""

    __tablename__ = "signing_keys"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))
    private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class TtsRenderRow(Base):
    """Index of the text-to-speech cache: sha256(engine, voice, text) -> media file."""

    __tablename__ = "tts_renders"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    engine: Mapped[str] = mapped_column(String(100))
    voice: Mapped[str] = mapped_column(String(100))
    media_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    duration: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


# -- broadcasts and dispatch (migration 0003) ----------------------------------------------------


class BroadcastRow(Base):
    __tablename__ = "broadcasts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(128), index=True)
    level: Mapped[str] = mapped_column(String(16))
    targets: Mapped[dict[str, Any]] = mapped_column(JSONType)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    volume: Mapped[int | None] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)  # one occurrence, repeats included
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), index=True)
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)  # owner, for scoping
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


class BroadcastTargetRow(Base):
    """The devices a broadcast resolved to when it was created (used for coverage)."""

    __tablename__ = "broadcast_targets"
    broadcast_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    commune_code: Mapped[str] = mapped_column(String(64), index=True)


class OfferRow(Base):
    """A broadcast as offered to one commune: normal items wait for its decision; priority
    items are accepted and carry the commune's order (``rank``)."""

    __tablename__ = "offers"
    broadcast_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True)
    commune_code: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    state: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer, default=0)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PolicyRow(Base):
    __tablename__ = "policies"
    area_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


class OutboxRow(Base):
    """A device command waiting to be delivered (or delivered): the durable dispatch queue.

    ``idempotency_key`` is unique: re-planning after a crash produces the same key, so nothing
    is queued twice; a command re-sent after a crash carries the same key, so the device does
    not act twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "not_before"),
                      Index("ix_outbox_device_seq", "device_id", "seq"))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)  # the command id
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    device_id: Mapped[str] = mapped_column(String(128))
    command: Mapped[dict[str, Any]] = mapped_column(JSONType)
    level_rank: Mapped[int] = mapped_column(Integer, default=0)
    broadcast_id: Mapped[str | None] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(128))
    seconds: Mapped[float | None] = mapped_column(Float)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class PlayLogRow(Base):
    """Proof of play: one row per play event a device reported (started, finished, ...).

    ``device_time`` is the device's clock, ``received_at`` the hub's; ``at`` is the best
    estimate of when it happened (the device time unless its clock is off by more than the
    tolerance, then the receive time) and is what period queries use.
    """

    __tablename__ = "play_log"
    __table_args__ = (Index("ix_play_log_area_at", "area_code", "at"),
                      Index("ix_play_log_broadcast_device", "broadcast_id", "device_id"),
                      Index("ix_play_log_content_at", "content_id", "at"))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)  # a redelivery is a no-op
    phase: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(String(128), index=True)
    area_code: Mapped[str | None] = mapped_column(String(64))
    village_code: Mapped[str | None] = mapped_column(String(64))
    broadcast_id: Mapped[str | None] = mapped_column(String(128))
    content_id: Mapped[str | None] = mapped_column(String(128))
    command_id: Mapped[str | None] = mapped_column(String(128))
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    clock_skew: Mapped[float | None] = mapped_column(Float)  # received_at - device_time, s
    detail: Mapped[str | None] = mapped_column(Text)


class AlarmRow(Base):
    """An alarm from raise to clear. Active alarms have no ``cleared_at``; at most one is active
    per device, condition and source (a partial unique index says so)."""

    __tablename__ = "alarms"
    __table_args__ = (
        Index("uq_alarms_active", "device_id", "code", "source", unique=True,
              sqlite_where=text("cleared_at IS NULL"),
              postgresql_where=text("cleared_at IS NULL")),
        Index("ix_alarms_raised_at", "raised_at"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128))
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(16))  # "hub" (detected) or "device" (reported)
    severity: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raise_event_id: Mapped[str] = mapped_column(String(64))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    clear_event_id: Mapped[str | None] = mapped_column(String(64))
    clear_detail: Mapped[str | None] = mapped_column(Text)


# -- access control and the northbound API (migration 0005) -----------------------------------


class UserRow(Base):
    """A person or system that uses the API: one role, scoped to an area and everything below.

    ``area_code`` empty means the whole hub. ``plugins`` are a vendor account's own plugins.
    """

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    plugins: Mapped[list[str]] = mapped_column(JSONType)
    approver: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


class ApiTokenRow(Base):
    """An API token: only the SHA-256 of its secret part is kept (the secret is random)."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100), ForeignKey("users.name"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "api" (long-lived) or "session" (login)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookRow(Base):
    """An outgoing webhook: which events go to which URL, signed with the subscriber's
    secret (stored sealed)."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(Text)
    types: Mapped[list[str]] = mapped_column(JSONType)
    area_code: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class WebhookDeliveryRow(Base):
    """One event waiting for (or done with) delivery to one webhook: the durable queue."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id",
                                       name="uq_webhook_deliveries_webhook_event"),
                      Index("ix_webhook_deliveries_due", "state", "next_attempt_at"))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64), ForeignKey("webhooks.id"))
    event_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkerRow(Base):
    """One hub worker process (``ttcs serve --worker``), kept by its own heartbeats."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # leader | standby
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    statuses: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                          default=0)  # statuses this process applied
    devices: Mapped[int] = mapped_column(Integer, default=0)  # devices it supervises
    polled: Mapped[int] = mapped_column(Integer, default=0)  # poll devices it owns
    api_url: Mapped[str | None] = mapped_column(String(500))
