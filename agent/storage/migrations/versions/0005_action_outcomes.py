"""Outcomes of dispatched actions: what each one realised against what it promised.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create action_outcomes."""
    op.create_table(
        "action_outcomes",
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("action_id", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("stores", sa.Text),
        sa.Column("applied_on", sa.Text, nullable=False),
        sa.Column("sized_for", sa.Text, nullable=False),
        sa.Column("judged", sa.Integer, nullable=False, server_default="1"),
        sa.Column("model_avoided", sa.Float, nullable=False),
        sa.Column("model_low", sa.Float, nullable=False),
        sa.Column("model_high", sa.Float, nullable=False),
        sa.Column("promised", sa.Float, nullable=False),
        sa.Column("promised_low", sa.Float, nullable=False),
        sa.Column("promised_high", sa.Float, nullable=False),
        sa.Column("realised", sa.Float, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("caveat", sa.Text),
        sa.Column("dispatched_at", sa.Text, nullable=False),
        sa.Column("measured_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "idx", name="action_outcomes_pk"),
    )
    op.create_index("action_outcomes_action", "action_outcomes", ["action_id", "dispatched_at"])


def downgrade() -> None:
    """Drop what the upgrade created."""
    op.drop_index("action_outcomes_action", "action_outcomes")
    op.drop_table("action_outcomes")
