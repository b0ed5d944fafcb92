"""content library and approval: content, approval history, approvers, signing keys, TTS cache

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ttcs.core.store.tables import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("purpose", name=op.f("uq_signing_keys_purpose")),
    )
    op.create_table(
        "tts_renders",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("engine", sa.String(length=100), nullable=False),
        sa.Column("voice", sa.String(length=100), nullable=False),
        sa.Column("media_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tts_renders")),
    )
    op.create_table(
        "approvers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name=op.f("fk_approvers_area_code_areas")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_approvers")),
        sa.UniqueConstraint("key_id", name=op.f("uq_approvers_key_id")),
    )
    with op.batch_alter_table("approvers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approvers_area_code"), ["area_code"], unique=False)

    op.create_table(
        "content",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("media_sha256", sa.String(length=64), nullable=True),
        sa.Column("media_size", sa.BigInteger(), nullable=True),
        sa.Column("media_mime", sa.String(length=100), nullable=True),
        sa.Column("media_duration", sa.Float(), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("source_level", sa.String(length=16), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name=op.f("fk_content_area_code_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content")),
    )
    with op.batch_alter_table("content", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_content_media_sha256"), ["media_sha256"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_content_state"), ["state"], unique=False)

    op.create_table(
        "content_approvals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("approver", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("statement", JSONType, nullable=True),
        sa.Column("signature", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name=op.f("fk_content_approvals_content_id_content")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_approvals")),
    )
    with op.batch_alter_table("content_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_approvals_content_id"), ["content_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("content_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_approvals_content_id"))
    op.drop_table("content_approvals")
    with op.batch_alter_table("content", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_state"))
        batch_op.drop_index(batch_op.f("ix_content_media_sha256"))
        batch_op.drop_index(batch_op.f("ix_content_area_code"))
    op.drop_table("content")
    with op.batch_alter_table("approvers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approvers_area_code"))
    op.drop_table("approvers")
    op.drop_table("tts_renders")
    op.drop_table("signing_keys")
