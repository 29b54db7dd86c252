"""A Parquet data lake of the contract, written from a DuckDB database.

``lastmile export --parquet DIR`` writes one folder per table under ``DIR``:
``deliveries`` partitioned by service date (``service_date=YYYY-MM-DD/``, the store-local
date of ``promised_end``, as the views define it), the other contract tables, ``metadata``
and ``load_log`` as they are. The Spark backend (:mod:`tools.data.spark`) reads it; so can
any Parquet reader.

The lake is written beside ``DIR`` and swapped in when complete, so a reader never sees half
a lake and a failed export leaves the previous one as it was.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pydantic import BaseModel

from tools.data.connection import connect
from tools.data.spark import LAKE_MARKER, LAKE_TABLES
from tools.data.store import has_column, table_counts
from tools.data.validate import sql_literal
from tools.data.views import local_time


class ExportReport(BaseModel):
    """What an export wrote: rows per table, service-date partitions, the time it took."""

    lake: str
    rows: dict[str, int]
    partitions: int
    seconds: float


def export_parquet(
    db: str | Path, lake: str | Path, *, memory_limit: str | None = None
) -> ExportReport:
    """Write the contract in ``db`` as a Parquet lake at ``lake`` (replacing an earlier one).

    Args:
        db: DuckDB database file.
        lake: folder to write; it must not exist, be empty, or hold a lake written here.
        memory_limit: DuckDB memory cap while writing (it spills beyond it).

    Returns:
        The rows written per table and the number of service-date partitions.

    Raises:
        FileNotFoundError: ``db`` does not exist.
        ValueError: ``lake`` is a file, or a folder with other content (not replaced).
    """
    target = Path(lake)
    if target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not (target / LAKE_MARKER).exists())
    ):
        raise ValueError(
            f"{target} exists and is not a data lake written by lastmile export: "
            "choose a new or empty folder"
        )
    started = time.perf_counter()
    staging = target.with_name(f".{target.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        con = connect(db, read_only=True, memory_limit=memory_limit)
        try:
            rows = table_counts(con)
            for table in LAKE_TABLES:
                if table == "deliveries":
                    continue
                if table in rows or table in ("metadata", "load_log"):
                    _copy(con, f"SELECT * FROM {table}", staging / table / "part-0.parquet")
            tz = (
                "coalesce(nullif(s.timezone, ''), 'UTC')"
                if has_column(con, "stores", "timezone")
                else "'UTC'"
            )
            con.execute(
                "COPY (SELECT d.*, "
                f"CAST({local_time('d.promised_end', tz)} AS DATE) AS service_date "
                "FROM deliveries AS d JOIN stores AS s ON s.store_id = d.store_id) "
                f"TO {sql_literal(str(staging / 'deliveries'))} "
                "(FORMAT parquet, PARTITION_BY (service_date), COMPRESSION zstd)"
            )
        finally:
            con.close()
        (staging / LAKE_MARKER).write_text(f"written from {Path(db).resolve()}\n")
        partitions = sum(1 for _ in (staging / "deliveries").glob("service_date=*"))
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportReport(
        lake=str(target),
        rows=rows,
        partitions=partitions,
        seconds=round(time.perf_counter() - started, 2),
    )


def _copy(con: object, select: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(  # type: ignore[attr-defined]
        f"COPY ({select}) TO {sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
    )


def _swap(staging: Path, target: Path) -> None:
    """Put the written lake in place of ``target`` (two renames; the old one deleted last).

    Anything else a user keeps in the old lake's folder (notes, a README, other tables)
    moves into the new one: an export replaces only what it writes.
    """
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        # moved only once the new lake is in place: a failure before leaves them where
        # they were, never in the staging folder a failed export deletes
        ours = {*LAKE_TABLES, LAKE_MARKER}
        for entry in old.iterdir():
            if entry.name not in ours:
                entry.rename(target / entry.name)
        shutil.rmtree(old, ignore_errors=True)
