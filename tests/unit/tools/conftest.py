"""Fixtures for the tool tests: a tool context over the session's small world."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.core.context import ToolContext


@pytest.fixture
def ctx(small_world_db: Path) -> ToolContext:
    """A fresh context (empty evidence) over the small world of tests/conftest.py."""
    return ToolContext.for_duckdb(small_world_db)
