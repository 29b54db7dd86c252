"""Threads, per-action decisions, approval expiry and the dispatch outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add threads and decisions; runs who and until when; the actions outbox columns."""
    op.create_table(
        "threads",
        sa.Column("thread_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("active_run_id", sa.Text),
    )
    op.create_table(
        "decisions",
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("action_id", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("decided_by", sa.Text, nullable=False),
        sa.Column("decided_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "idx", name="decisions_pk"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("started_by", sa.Text))
        batch.add_column(sa.Column("approval_expires_at", sa.Text))
    op.create_index("runs_thread", "runs", ["thread_id", "created_at"])
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.Text))
        # actions dispatched before the outbox were never delivered anywhere: "recorded"
        batch.add_column(
            sa.Column("delivery_status", sa.Text, nullable=False, server_default="recorded")
        )
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.Text))
        batch.add_column(sa.Column("lease_until", sa.Text))
        batch.add_column(sa.Column("lease_token", sa.Text))
        batch.add_column(sa.Column("delivered_at", sa.Text))
        batch.add_column(sa.Column("last_error", sa.Text))
    op.create_index("actions_due", "actions", ["delivery_status", "next_attempt_at"])


def downgrade() -> None:
    """Drop what the upgrade added."""
    op.drop_index("actions_due", "actions")
    with op.batch_alter_table("actions") as batch:
        for name in (
            "last_error",
            "delivered_at",
            "lease_token",
            "lease_until",
            "next_attempt_at",
            "attempts",
            "delivery_status",
            "idempotency_key",
        ):
            batch.drop_column(name)
    op.drop_index("runs_thread", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("approval_expires_at")
        batch.drop_column("started_by")
    op.drop_table("decisions")
    op.drop_table("threads")
