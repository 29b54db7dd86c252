"""``store_day`` materialised, and refreshed for the service dates a load touches.

The ``store_day`` view recomputes every store-day from every delivery; on a national network
that is tens of seconds per query. Each load therefore keeps a table of it,
``store_day_table``, under the default definition of late, and DuckDB connections read
``store_day`` from the table when the run's definition of late is the one it was built with
(:class:`~tools.data.backend.DuckDBBackend`).

Which rows a load changes:

* **Replaced** deliveries or stores: every row (a full build).
* **Appended** rows: the service dates of the new deliveries (a late-arriving delivery
  updates an earlier day), the dates of new staffing, conditions and calendar rows, and,
  when the extract's end moves, the dates from a day before its old end on:
  ``store_day`` is as of the extract, so a parcel in transit at the old end may be overdue
  at the new one (:func:`after_extract_end`).

Nothing else is recomputed. The refresh runs inside the load's transaction, so the table
never disagrees with the deliveries a reader sees.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import duckdb

from tools.data.views import DEFAULT_LATE_RULE, local_time, store_day_sql

logger = logging.getLogger(__name__)

STORE_DAY_TABLE = "store_day_table"
"""The materialised ``store_day`` (default definition of late)."""

EXTRACT_END_SQL = (
    "SELECT max(greatest(order_ts, coalesce(dispatched_ts, order_ts), "
    "coalesce(delivered_ts, order_ts))) FROM deliveries"
)
"""The latest moment the data records: the "as of" of ``store_day``."""


def extract_end(con: duckdb.DuckDBPyConnection) -> date | None:
    """Return the date of the extract's end (None without deliveries)."""
    row = con.execute(f"SELECT CAST(({EXTRACT_END_SQL}) AS DATE)").fetchone()
    return row[0] if row and row[0] is not None else None


def appended_dates(
    con: duckdb.DuckDBPyConnection, shadows: dict[str, str], has_timezone: bool
) -> set[date]:
    """Return the service dates that rows about to be appended touch.

    Args:
        con: the load's connection.
        shadows: table -> the relation holding its new rows (``_load_<table>``).
        has_timezone: ``stores`` has a ``timezone`` column.
    """
    selects = []
    if "deliveries" in shadows:
        tz = "coalesce(nullif(s.timezone, ''), 'UTC')" if has_timezone else "'UTC'"
        selects.append(
            f"SELECT DISTINCT CAST({local_time('d.promised_end', tz)} AS DATE) AS date "
            f"FROM {shadows['deliveries']} AS d JOIN stores AS s ON s.store_id = d.store_id"
        )
    for table in ("staffing", "conditions", "calendar"):
        if table in shadows:
            selects.append(f"SELECT DISTINCT date FROM {shadows[table]}")
    if not selects:
        return set()
    rows = con.execute(" UNION ".join(selects)).fetchall()
    return {r[0] for r in rows if r[0] is not None}


def refresh_store_day(
    con: duckdb.DuckDBPyConnection, dates: set[date] | None, *, has_timezone: bool
) -> int:
    """Rebuild ``store_day_table`` whole (``dates`` None) or for some service dates.

    Dates are refreshed in runs of consecutive days, each one range query (DuckDB skips the
    row groups of deliveries outside it).

    Returns:
        The rows written.
    """
    if dates is None or not is_materialised(con):
        con.execute(
            f"CREATE OR REPLACE TABLE {STORE_DAY_TABLE} AS "
            f"{store_day_sql(DEFAULT_LATE_RULE, has_timezone=has_timezone)}"
        )
        row = con.execute(f"SELECT count(*) FROM {STORE_DAY_TABLE}").fetchone()
        return int(row[0]) if row else 0
    written = 0
    for first, last in _runs(sorted(dates)):
        con.execute(f"DELETE FROM {STORE_DAY_TABLE} WHERE date BETWEEN ? AND ?", [first, last])
        sql = store_day_sql(
            DEFAULT_LATE_RULE, has_timezone=has_timezone, first_day=first, last_day=last
        )
        inserted = con.execute(f"INSERT INTO {STORE_DAY_TABLE} SELECT * FROM ({sql})").fetchone()
        written += int(inserted[0]) if inserted else 0
    logger.debug("store_day refreshed for %d dates: %d rows", len(dates), written)
    return written


def after_extract_end(
    con: duckdb.DuckDBPyConnection, old_end: date | None, new_end: date | None
) -> set[date]:
    """Return the dates whose rows a move of the extract's end can change.

    A parcel not resolved at the old end is read as of the new one: overdue instead of in
    transit, its transit time censored later. Such parcels are due from a day before the
    old end (time zones) to the last date the data holds, pre-booked days included.
    """
    if old_end is None or new_end is None or old_end == new_end:
        return set()
    start = min(old_end, new_end) - timedelta(days=1)
    end = max(new_end + timedelta(days=1), _last_date(con) or start)
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


def _last_date(con: duckdb.DuckDBPyConnection) -> date | None:
    if not is_materialised(con):
        return None
    row = con.execute(f"SELECT max(date) FROM {STORE_DAY_TABLE}").fetchone()
    return row[0] if row and row[0] is not None else None


def is_materialised(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the database keeps ``store_day`` materialised (files from before it do not)."""
    rows = con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE table_name = ?", [STORE_DAY_TABLE]
    ).fetchall()
    return bool(rows)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Group sorted dates into runs of consecutive days: [(first, last), ...]."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
