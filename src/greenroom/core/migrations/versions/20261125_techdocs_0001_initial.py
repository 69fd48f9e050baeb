"""techdocs: build jobs, one row per entity, with lease, log, broken links and freshness.

Revision ID: techdocs_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "techdocs_0001"
down_revision = None
branch_labels = ("techdocs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "techdocs_builds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entity_ref", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("log", sa.Text(), server_default="", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("docs_changed_at", sa.Float(), nullable=True),
        sa.Column("code_changed_at", sa.Float(), nullable=True),
        sa.Column("broken_links", sa.Text(), server_default="[]", nullable=False),
        sa.Column("site_name", sa.String(length=500), nullable=True),
        sa.Column("built_at", sa.Float(), nullable=True),
        sa.Column("built_commit_sha", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_techdocs_builds")),
        sa.UniqueConstraint("entity_ref", name=op.f("uq_techdocs_builds_entity_ref")),
    )
    with op.batch_alter_table("techdocs_builds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_techdocs_builds_status"), ["status", "next_attempt_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("techdocs_builds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_techdocs_builds_status"))
    op.drop_table("techdocs_builds")
