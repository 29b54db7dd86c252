"""Shared by the ``lastmile`` commands: the consoles, common options and their defaults."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.settings import get_settings
from tools.data.backend import Backend
from tools.data.views import LateRule

out = Console()
err = Console(stderr=True)


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default: $LASTMILE_DB, else data/lastmile.duckdb)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _db(db: Path | None) -> Path:
    return db if db is not None else get_settings().db


def _reading_db(db: Path | None) -> Path:
    """Return the DuckDB file a reading command names, refusing ``--db`` beside a lake.

    Raises:
        typer.BadParameter: ``--db`` given while the settings read a Spark lake (the file
            would be silently ignored).
    """
    settings = get_settings()
    if db is not None and settings.backend == "spark":
        raise typer.BadParameter(
            f"{db} is a DuckDB file, but this command reads the Spark lake "
            f"{settings.data or '(none set)'} (--data, LASTMILE_DATA or LASTMILE_BACKEND=spark):"
            " drop --db to read the lake, or --backend duckdb to read the file",
            param_hint="--db",
        )
    return _db(db)


def _backend(db: Path | None) -> Backend:
    """Return the backend the command reads: DuckDB over ``db``, or Spark over the lake."""
    return get_settings().data_source(_reading_db(db)).open(_late_rule())


def _late_rule() -> LateRule:
    """Return the definition of late the settings give (LASTMILE_LATE_*)."""
    settings = get_settings()
    return LateRule(grace_min=settings.late_grace_min, failed_is_late=settings.late_failed_is_late)


def _day(value: str | date) -> date:
    """Parse a date option (typer calls this; a ValueError becomes a usage error)."""
    if isinstance(value, date):  # a default given as a date
        return value
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value):  # the form is right, the day is not
            raise ValueError(f"must be a real date: {exc}") from None
        raise ValueError("must be a date as YYYY-MM-DD") from None
