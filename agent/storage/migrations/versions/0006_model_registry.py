"""The model registry: fitted artefacts by data and code version, with validation figures.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create model_registry."""
    op.create_table(
        "model_registry",
        sa.Column("artefact_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("data_version", sa.Text, nullable=False),
        sa.Column("code_version", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("fitted_at", sa.Text, nullable=False),
        sa.Column("fit_seconds", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("validation", sa.Text, nullable=False),
        sa.Column("path", sa.Text),
    )
    op.create_index("model_registry_kind", "model_registry", ["kind", "fitted_at"])


def downgrade() -> None:
    """Drop what the upgrade created."""
    op.drop_index("model_registry_kind", "model_registry")
    op.drop_table("model_registry")
