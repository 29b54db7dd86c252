"""Incidents, morning digests, and the Slack bot's threads and handled events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create incidents, digests, slack_threads, slack_runs and slack_events."""
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.Text, primary_key=True),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("region", sa.Text),
        sa.Column("opened_on", sa.Text, nullable=False),
        sa.Column("last_seen", sa.Text, nullable=False),
        sa.Column("days_seen", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("severity", sa.Text),
        sa.Column("drivers", sa.Text),
        sa.Column("late_excess", sa.Float),
        sa.Column("last_run_id", sa.Text),
        sa.Column("resolved_on", sa.Text),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("acknowledged_at", sa.Text),
        sa.Column("snoozed_until", sa.Text),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_index("incidents_target", "incidents", ["target", "status"])
    op.create_table(
        "digests",
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("claimed_by", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.Text, nullable=False),
        sa.Column("run_id", sa.Text),
        sa.Column("channel", sa.Text),
        sa.Column("ts", sa.Text),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("day", "scope", name="digests_pk"),
    )
    op.create_table(
        "slack_threads",
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("thread_ts", sa.Text, nullable=False),
        sa.Column("thread_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("channel", "thread_ts", name="slack_threads_pk"),
    )
    op.create_table(
        "slack_runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("thread_ts", sa.Text, nullable=False),
        sa.Column("progress_ts", sa.Text, nullable=False),
        sa.Column("posted_at", sa.Text),
    )
    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("received_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop what the upgrade created."""
    op.drop_table("slack_events")
    op.drop_table("slack_runs")
    op.drop_table("slack_threads")
    op.drop_table("digests")
    op.drop_index("incidents_target", "incidents")
    op.drop_table("incidents")
