"""proof of play and alarms: play_log, alarms

Revision ID: 0004
Revises: 0003 — re-point to 0003 (broadcasts/outbox) when the branches are merged
Create Date: 2026-11-22 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ttcs.core.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "play_log",
        sa.Column("seq", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("village_code", sa.String(length=64), nullable=True),
        sa.Column("broadcast_id", sa.String(length=128), nullable=True),
        sa.Column("content_id", sa.String(length=128), nullable=True),
        sa.Column("command_id", sa.String(length=128), nullable=True),
        sa.Column("device_time", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("clock_skew", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_play_log")),
        sa.UniqueConstraint("event_id", name=op.f("uq_play_log_event_id")),
    )
    with op.batch_alter_table("play_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_play_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_play_log_device_id"), ["device_id"], unique=False)
        batch_op.create_index("ix_play_log_area_at", ["area_code", "at"], unique=False)
        batch_op.create_index("ix_play_log_broadcast_device", ["broadcast_id", "device_id"],
                              unique=False)
        batch_op.create_index("ix_play_log_content_at", ["content_id", "at"], unique=False)

    op.create_table(
        "alarms",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("raise_event_id", sa.String(length=64), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.Column("clear_event_id", sa.String(length=64), nullable=True),
        sa.Column("clear_detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarms_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_cleared_at"), ["cleared_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_code"), ["code"], unique=False)
        batch_op.create_index("ix_alarms_raised_at", ["raised_at"], unique=False)
        batch_op.create_index("uq_alarms_active", ["device_id", "code", "source"], unique=True,
                              sqlite_where=sa.text("cleared_at IS NULL"),
                              postgresql_where=sa.text("cleared_at IS NULL"))


def downgrade() -> None:
    op.drop_table("alarms")
    op.drop_table("play_log")
