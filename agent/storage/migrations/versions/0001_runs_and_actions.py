"""Runs and dispatched actions: the tables stores had before migrations were versioned.

Stores created by earlier releases already hold these tables (without an Alembic version):
each is created only when missing, and ``runs.thread_id`` added when missing, so an old store
is adopted as it is.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create runs and actions when missing; add runs.thread_id when missing."""
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "runs" not in tables:
        op.create_table(
            "runs",
            sa.Column("run_id", sa.Text, primary_key=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("question", sa.Text),
            sa.Column("day", sa.Text),
            sa.Column("scope", sa.Text),
            sa.Column("db", sa.Text),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("model", sa.Text),
            sa.Column("prompts", sa.Text),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
            sa.Column("plan", sa.Text),
            sa.Column("evidence", sa.Text),
            sa.Column("trace", sa.Text),
            sa.Column("decisions", sa.Text),
            sa.Column("error", sa.Text),
            sa.Column("input_tokens", sa.Integer),
            sa.Column("output_tokens", sa.Integer),
            sa.Column("thread_id", sa.Text),
        )
    elif "thread_id" not in {c["name"] for c in inspector.get_columns("runs")}:
        op.add_column("runs", sa.Column("thread_id", sa.Text))
    if "actions" not in tables:
        op.create_table(
            "actions",
            sa.Column("run_id", sa.Text, nullable=False),
            sa.Column("idx", sa.Integer, nullable=False),
            sa.Column("action_id", sa.Text, nullable=False),
            sa.Column("target", sa.Text),
            sa.Column("parameters", sa.Text),
            sa.Column("expected_avoided", sa.Float),
            sa.Column("avoided_ci", sa.Text),
            sa.Column("cost", sa.Float),
            sa.Column("decision", sa.Text),
            sa.Column("decided_by", sa.Text),
            sa.Column("decided_at", sa.Text),
            sa.Column("dispatched_at", sa.Text, nullable=False),
            sa.Column("evidence_ids", sa.Text),
            sa.PrimaryKeyConstraint("run_id", "idx"),
        )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("actions")
    op.drop_table("runs")
