"""scaffolder: tasks (spec without secrets, status, lease) and their event log.

Revision ID: scaffolder_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "scaffolder_0001"
down_revision = None
branch_labels = ("scaffolder",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scaffolder_tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_heartbeat_at", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scaffolder_tasks")),
    )
    with op.batch_alter_table("scaffolder_tasks") as batch:
        batch.create_index(batch.f("ix_scaffolder_tasks_status_created_at"), ["status", "created_at"])
        batch.create_index(batch.f("ix_scaffolder_tasks_created_by"), ["created_by"])
    op.create_table(
        "scaffolder_task_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["scaffolder_tasks.id"], ondelete="CASCADE",
                                name=op.f("fk_scaffolder_task_events_task_id_scaffolder_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scaffolder_task_events")),
    )
    with op.batch_alter_table("scaffolder_task_events") as batch:
        batch.create_index(batch.f("ix_scaffolder_task_events_task_id_id"), ["task_id", "id"])


def downgrade() -> None:
    op.drop_table("scaffolder_task_events")
    op.drop_table("scaffolder_tasks")
