"""The monitor's history and its alerts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create monitoring and monitoring_alerts."""
    op.create_table(
        "monitoring",
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("flagged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("severity", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("data_version", sa.Text),
        sa.Column("recorded_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("day", "kind", "name", "subject", name="monitoring_pk"),
    )
    op.create_index("monitoring_kind", "monitoring", ["kind", "day"])
    op.create_table(
        "monitoring_alerts",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("opened_on", sa.Text, nullable=False),
        sa.Column("last_seen", sa.Text, nullable=False),
        sa.Column("closed_on", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("posted_at", sa.Text),
    )
    op.create_index(
        "monitoring_alerts_key", "monitoring_alerts", ["kind", "name", "subject", "closed_on"]
    )


def downgrade() -> None:
    """Drop what the upgrade created."""
    op.drop_index("monitoring_alerts_key", "monitoring_alerts")
    op.drop_table("monitoring_alerts")
    op.drop_index("monitoring_kind", "monitoring")
    op.drop_table("monitoring")
