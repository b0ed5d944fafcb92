"""broadcasts offers policies outbox

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 08:03:02.167750
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ttcs.core.store.tables import JSONType, UTCDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("targets", JSONType, nullable=False),
        sa.Column("schedule", JSONType, nullable=False),
        sa.Column("volume", sa.Integer(), nullable=True),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=True),
        sa.Column("valid_until", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcasts_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcasts_content_id"), ["content_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcasts_state"), ["state"], unique=False)

    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("command", JSONType, nullable=False),
        sa.Column("level_rank", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.String(length=64), nullable=True),
        sa.Column("content_id", sa.String(length=128), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("id", name=op.f("uq_outbox_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_broadcast_id"), ["broadcast_id"], unique=False)
        batch_op.create_index("ix_outbox_device_seq", ["device_id", "seq"], unique=False)
        batch_op.create_index("ix_outbox_due", ["state", "not_before"], unique=False)

    op.create_table(
        "policies",
        sa.Column("area_code", sa.String(length=64), nullable=False),
        sa.Column("rules", JSONType, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("area_code", name=op.f("pk_policies")),
    )
    op.create_table(
        "broadcast_targets",
        sa.Column("broadcast_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("commune_code", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_targets_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "device_id", name=op.f("pk_broadcast_targets")),
    )
    with op.batch_alter_table("broadcast_targets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broadcast_targets_commune_code"), ["commune_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_broadcast_targets_device_id"), ["device_id"], unique=False
        )

    op.create_table(
        "offers",
        sa.Column("broadcast_id", sa.String(length=64), nullable=False),
        sa.Column("commune_code", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_offers_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "commune_code", name=op.f("pk_offers")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_commune_code"), ["commune_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offers_commune_code"))

    op.drop_table("offers")
    with op.batch_alter_table("broadcast_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_targets_device_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_targets_commune_code"))

    op.drop_table("broadcast_targets")
    op.drop_table("policies")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_index("ix_outbox_device_seq")
        batch_op.drop_index(batch_op.f("ix_outbox_broadcast_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcasts_state"))
        batch_op.drop_index(batch_op.f("ix_broadcasts_content_id"))
        batch_op.drop_index(batch_op.f("ix_broadcasts_area_code"))

    op.drop_table("broadcasts")
