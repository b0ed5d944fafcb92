"""Database tables (SQLAlchemy 2). Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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
