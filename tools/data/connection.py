"""Open DuckDB files: the one place that does, so every caller gets the same errors.

A file locked by another process, a file that is not a DuckDB database, or a path that cannot
be read or written becomes a :class:`DatabaseUnavailableError` that says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import duckdb


class DatabaseUnavailableError(ValueError, duckdb.IOException):
    """A DuckDB file cannot be opened: locked, not a DuckDB database, or out of reach.

    A ``ValueError`` so that surfaces report it as a problem with what the user pointed at,
    and a ``duckdb.IOException`` so that code catching DuckDB's own error still catches it.

    Attributes:
        path: the database file as given.
        cause: ``"locked"`` (another process writes it), ``"not_duckdb"`` (another kind of
            file) or ``"unreachable"`` (permissions, a file where a folder should be, ...).
        read_only: whether it was opened for reading only.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path = "",
        cause: Literal["locked", "not_duckdb", "unreachable"] = "unreachable",
        read_only: bool = False,
    ) -> None:
        # Defaults let pickle rebuild it from its message (then it restores the attributes).
        super().__init__(message)
        self.path = str(path)
        self.cause = cause
        self.read_only = read_only


# DuckDB reports why the operating system refused a file only in its message text.
_OS_REASONS = (
    "Permission denied",
    "Not a directory",
    "Is a directory",
    "Read-only file system",
    "No such file or directory",
    "No space left on device",
)


def _unavailable(path: str | Path, exc: duckdb.Error, read_only: bool) -> DatabaseUnavailableError:
    """Translate DuckDB's error on opening ``path`` into one that says what to do."""
    text = str(exc)
    if "Could not set lock" in text:  # DuckDB admits one writer, or many readers
        return DatabaseUnavailableError(
            f"the database {path} is locked by another process (an ingest or generate still "
            "running?): retry when it finishes",
            path=path,
            cause="locked",
            read_only=read_only,
        )
    if "not a valid DuckDB database" in text or "in-memory database in read-only mode" in text:
        # The second: DuckDB opens CSV/Parquet/JSON paths as a view in a fresh in-memory
        # database, which cannot be read-only.
        detail = (
            "DuckDB reads it as a data file (CSV, Parquet or JSON)"
            if "in-memory" in text
            else "DuckDB does not recognise its contents"
        )
        return DatabaseUnavailableError(
            f"{path} is not a DuckDB database: {detail}",
            path=path,
            cause="not_duckdb",
            read_only=read_only,
        )
    reason = next((r.lower() for r in _OS_REASONS if r in text), None)
    verb = "read" if read_only else "write"
    first = text.splitlines()[0].removeprefix("IO Error: ") if text else type(exc).__name__
    return DatabaseUnavailableError(
        f"cannot {verb} the database at {path} ({reason})"
        if reason
        else f"cannot open the database at {path}: {first}",
        path=path,
        cause="unreachable",
        read_only=read_only,
    )


def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    config: Mapping[str, str | bool | int] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the session time zone pinned to UTC.

    This is the one place that opens DuckDB files, so every caller gets the same errors.

    Args:
        path: database file (``":memory:"`` for an in-memory database).
        read_only: open without write access (the file must exist).
        memory_limit: DuckDB memory cap such as ``"2GB"``; beyond it DuckDB spills to disk.
        config: more DuckDB settings, applied as the connection opens.

    Raises:
        FileNotFoundError: when ``read_only`` and the file does not exist.
        DatabaseUnavailableError: the file is locked by another process (an ingest still
            running), is not a DuckDB database, or cannot be read or written (permissions,
            a file where a folder should be). Nothing is written to it.
    """
    in_memory = str(path) == ":memory:"
    if read_only and not in_memory and not Path(path).exists():
        raise FileNotFoundError(f"database {path} does not exist: generate or ingest data first")
    settings: dict[str, str | bool | int | float | list[str]] = dict(config or {})
    if memory_limit:
        settings["memory_limit"] = memory_limit
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=settings)
    except duckdb.Error as exc:
        raise _unavailable(path, exc, read_only) from exc
    if not in_memory and not read_only:
        # An existing CSV/Parquet/JSON path opens as an in-memory database with a view of
        # the file: writes would vanish on close, so refuse it (the file stays as it was).
        row = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        if row is None or row[0] is None:
            con.close()
            raise DatabaseUnavailableError(
                f"{path} is not a DuckDB database: DuckDB reads it as a data file "
                "(CSV, Parquet or JSON)",
                path=path,
                cause="not_duckdb",
                read_only=read_only,
            )
    # ICU does the zone arithmetic of the views: loaded here, so connections that may not
    # autoload extensions (run_sql's) have it too.
    con.execute("LOAD icu")
    con.execute("SET TimeZone = 'UTC'")
    return con
