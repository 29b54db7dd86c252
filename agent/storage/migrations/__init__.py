"""Alembic migrations of the operational tables (:mod:`agent.storage.schema`)."""
