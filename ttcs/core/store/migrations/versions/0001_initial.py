"""initial schema: areas, devices, groups, state, events, audit

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 05:37:38.958709
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ttcs.core.store.tables import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("parent_code", sa.String(length=64), nullable=True),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["areas.code"], name=op.f("fk_areas_parent_code_areas")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_areas")),
    )
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_areas_parent_code"), ["parent_code"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "discovered",
        sa.Column("plugin", sa.String(length=128), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("info", JSONType, nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("plugin", "serial", name=op.f("pk_discovered")),
    )
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("payload", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_at"), ["at"], unique=False)
        batch_op.create_index("ix_events_device_at", ["device_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_type"), ["type"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.Column("firmware", sa.String(length=100), nullable=False),
        sa.Column("plugin", sa.String(length=128), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=64), nullable=True),
        sa.Column("location", JSONType, nullable=True),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("capabilities", JSONType, nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name=op.f("fk_devices_area_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["devices.id"], name=op.f("fk_devices_parent_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["village_code"], ["areas.code"], name=op.f("fk_devices_village_code_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("mac", name=op.f("uq_devices_mac")),
        sa.UniqueConstraint("vendor", "serial", name="uq_devices_vendor_serial"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_plugin"), ["plugin"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name=op.f("fk_groups_area_code_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_groups_area_code"), ["area_code"], unique=False)

    op.create_table(
        "device_groups",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_groups_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_device_groups_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "group_id", name=op.f("pk_device_groups")),
    )
    with op.batch_alter_table("device_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_groups_group_id"), ["group_id"], unique=False)

    op.create_table(
        "device_state",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("connectivity", sa.String(length=16), nullable=False),
        sa.Column("status", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_state_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_state")),
    )
    with op.batch_alter_table("device_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_state_connectivity"), ["connectivity"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("device_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_state_connectivity"))

    op.drop_table("device_state")
    with op.batch_alter_table("device_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_groups_group_id"))

    op.drop_table("device_groups")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_groups_area_code"))

    op.drop_table("groups")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_plugin"))
        batch_op.drop_index(batch_op.f("ix_devices_parent_id"))
        batch_op.drop_index(batch_op.f("ix_devices_kind"))
        batch_op.drop_index(batch_op.f("ix_devices_area_code"))

    op.drop_table("devices")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_type"))
        batch_op.drop_index("ix_events_device_at")
        batch_op.drop_index(batch_op.f("ix_events_at"))
        batch_op.drop_index(batch_op.f("ix_events_area_code"))

    op.drop_table("events")
    op.drop_table("discovered")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_actor"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_areas_parent_code"))

    op.drop_table("areas")
