"""DuckDB storage for the contract: schema creation, derived views and atomic loads.

A load is one DuckDB transaction. Every source is staged and validated first; if anything is
wrong (a bad value, a duplicate id, a dangling foreign key, an exception half-way) the
transaction rolls back, so the tables hold exactly what they held before. A database file
that did not exist before a failed load is removed again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import duckdb
import pandas as pd
from pydantic import BaseModel

from tools.data.connection import DatabaseUnavailableError, connect
from tools.data.refresh import after_extract_end, appended_dates, extract_end, refresh_store_day
from tools.data.schema import CONTRACT_TABLES, TableSchema
from tools.data.truth_file import TRUTH_KEY, discard_truth, publish_truth, stage_truth
from tools.data.validate import DataValidationError, Problem, quote_ident, stage
from tools.data.views import DEFAULT_LATE_RULE, LateRule, views

__all__ = [
    "AtomicLoad",
    "DatabaseUnavailableError",
    "LoadMode",
    "LoadReport",
    "connect",
    "create_views",
    "ensure_schema",
    "read_metadata",
    "table_counts",
]

logger = logging.getLogger(__name__)

LoadMode = Literal["replace", "append"]

META_DDL = (
    "CREATE TABLE IF NOT EXISTS metadata (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS load_log ("
    " load_id BIGINT, loaded_at TIMESTAMP, source VARCHAR, mode VARCHAR, rows VARCHAR)",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract tables, metadata tables and views that are missing."""
    for schema in CONTRACT_TABLES.values():
        con.execute(schema.ddl().replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
    for ddl in META_DDL:
        con.execute(ddl)
    # Files written before stores had a time zone: add the column (NULL reads as UTC).
    con.execute("ALTER TABLE stores ADD COLUMN IF NOT EXISTS timezone VARCHAR")
    create_views(con)


def has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Tell whether ``table`` exists and has ``column``."""
    rows = con.execute(
        "SELECT 1 FROM duckdb_columns() WHERE table_name = ? AND column_name = ?",
        [table, column],
    ).fetchall()
    return bool(rows)


def create_views(con: duckdb.DuckDBPyConnection, rule: LateRule = DEFAULT_LATE_RULE) -> None:
    """(Re)create the derived views over the contract tables, for a definition of late."""
    has_tz = has_column(con, "stores", "timezone")
    for name, sql in views(rule, has_timezone=has_tz).items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every contract table present in the database."""
    existing = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    out: dict[str, int] = {}
    for name in CONTRACT_TABLES:
        if name in existing:
            row = con.execute(f"SELECT count(*) FROM {name}").fetchone()
            out[name] = int(row[0]) if row else 0
    return out


def read_metadata(con: duckdb.DuckDBPyConnection, key: str) -> object | None:
    """Return a JSON value stored under ``key`` in ``metadata``, or None."""
    try:
        row = con.execute("SELECT value FROM metadata WHERE key = ?", [key]).fetchone()
    except duckdb.CatalogException:
        return None
    return json.loads(row[0]) if row else None


class LoadReport(BaseModel):
    """What a committed load wrote."""

    db: str
    source: str
    mode: LoadMode
    rows: dict[str, int]
    seconds: float


class AtomicLoad:
    """Validate and write a batch of sources so that the load lands entirely or not at all.

    Use as a context manager::

        with AtomicLoad(db, source="olist", mode="replace") as load:
            load.replace_tables(["stores", "deliveries"])
            load.add_frame("stores", stores_df, "sellers.csv")
            load.add_sql("deliveries", "SELECT ... FROM read_csv(...)", "orders.csv")
            report = load.commit()

    Rows go first to shadow tables (``_load_<table>``), written chunk by chunk so memory stays
    bounded however large the load; the contract tables are not touched. :meth:`commit`
    checks keys and foreign keys over what the tables *would* hold, then swaps the shadows in
    with one short transaction. Problems from every source are gathered and raised together
    as :class:`~tools.data.validate.DataValidationError`; on any failure (or an exception,
    or a killed process) the contract tables keep exactly what they held before.
    """

    def __init__(
        self,
        db: str | Path,
        *,
        source: str,
        mode: LoadMode = "replace",
        assume_tz: str | None = None,
        memory_limit: str | None = None,
    ):
        self.db = Path(db)
        self.source = source
        self.mode = mode
        self.assume_tz = assume_tz
        self.memory_limit = memory_limit
        self.problems: list[Problem] = []
        self.rows: dict[str, int] = {}
        self._replaced: set[str] = set()
        self._metadata: dict[str, object] = {}
        self._truth: tuple[pd.DataFrame, list[dict[str, object]]] | None = None
        self._created_file = False
        self._con: duckdb.DuckDBPyConnection | None = None
        self._started = 0.0
        self._done = False
        self._stage_seq = 0

    # -- context management --------------------------------------------------------------
    def __enter__(self) -> Self:
        self._created_file = not self.db.exists()
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self._con = connect(self.db, memory_limit=self.memory_limit)
        self._started = time.perf_counter()
        ensure_schema(self._con)
        self._drop_shadows()  # leftovers of a load that was killed
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        con = self._con
        if con is None:
            return
        if not self._done:
            try:
                self._drop_shadows()
            except duckdb.Error:  # pragma: no cover - the connection may be broken
                pass
            logger.debug("load from %s abandoned; %s is unchanged", self.source, self.db)
        con.close()
        self._con = None
        if not self._done and self._created_file:
            for path in (self.db, self.db.with_name(self.db.name + ".wal")):
                path.unlink(missing_ok=True)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The load's connection."""
        if self._con is None:
            raise RuntimeError("AtomicLoad is not open: use it in a with-block")
        return self._con

    def _drop_shadows(self) -> None:
        names = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_load\\_%' ESCAPE '\\'"
        ).fetchall()
        for (name,) in names:
            self.con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")

    def _shadow(self, table: str) -> str:
        """Name of the table's shadow, created empty on first use."""
        shadow = f"_load_{table}"
        if table not in self.rows:
            self.con.execute(_schema(table).ddl(shadow))
            self.rows[table] = 0
        return shadow

    # -- writing ---------------------------------------------------------------------------
    def replace_tables(self, tables: Iterable[str]) -> None:
        """Mark tables to be replaced by this load (emptied if no rows are added to them)."""
        for name in tables:
            self._shadow(name)
            self._replaced.add(name)

    def add_sql(self, table: str, source_sql: str, source_name: str) -> int:
        """Stage and validate a SQL relation; keep its rows if it (and all before it) is clean.

        Args:
            table: contract table to load.
            source_sql: a relation, e.g. ``read_csv('f.csv', all_varchar=true)``.
            source_name: how problems refer to this source.

        Returns:
            Number of rows in the source.
        """
        schema = _schema(table)
        if self.mode == "replace":
            self.replace_tables([table])
        shadow = self._shadow(table)
        self._stage_seq += 1
        staged = stage(
            self.con,
            schema,
            source_sql,
            source_name=source_name,
            stage_table=f"_stage_{self._stage_seq}",
            assume_tz=self.assume_tz,
        )
        self.problems += staged.problems
        if not self.problems:
            cols = ", ".join(quote_ident(c) for c in schema.column_names)
            self.con.execute(
                f"INSERT INTO {shadow} ({cols}) SELECT {cols} FROM {staged.stage_table}"
            )
        self.con.execute(f"DROP TABLE {staged.stage_table}")
        self.rows[table] += staged.rows
        return staged.rows

    def add_frame(self, table: str, frame: pd.DataFrame, source_name: str) -> int:
        """Stage, validate and keep a pandas frame (see :meth:`add_sql`)."""
        name = f"_frame_{self._stage_seq + 1}"
        self.con.register(name, frame)
        try:
            return self.add_sql(table, f"SELECT * FROM {name}", source_name)
        finally:
            self.con.unregister(name)

    def set_metadata(self, key: str, value: object) -> None:
        """Store a JSON value under ``key`` when (and only if) the load commits."""
        self._metadata[key] = value

    def set_truth(self, incidents: pd.DataFrame, specs: list[dict[str, object]]) -> None:
        """Write this world's ground truth beside the database when the load commits.

        See :mod:`tools.data.truth_file`: the agent's database never holds it.
        """
        self._truth = (incidents, specs)

    def commit(self) -> LoadReport:
        """Check keys and foreign keys, then swap the new rows in with one transaction.

        Raises:
            DataValidationError: listing every problem found in any source.
        """
        if not self.problems:
            self.problems += self._table_checks()
        if self.problems:
            raise DataValidationError(self.problems)
        staged = None
        new_world = "deliveries" in self._replaced
        if self._truth is not None:
            staged, self._metadata[TRUTH_KEY] = stage_truth(self.db, *self._truth)
        elif new_world:
            # The ground truth belongs to the deliveries being replaced.
            self._metadata[TRUTH_KEY] = None
        try:
            self._swap_in(new_world)
        except BaseException:
            if staged is not None:
                staged.unlink(missing_ok=True)
            raise
        if staged is not None:
            publish_truth(staged, self.db)
        elif new_world:
            discard_truth(self.db)
        self._done = True
        report = LoadReport(
            db=str(self.db),
            source=self.source,
            mode=self.mode,
            rows=self.rows,
            seconds=round(time.perf_counter() - self._started, 3),
        )
        logger.info("loaded %s into %s: %s", self.source, self.db, report.rows)
        return report

    def _swap_in(self, new_world: bool) -> None:
        """Move the shadows, metadata and load log in with one transaction, then checkpoint."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            if new_world:
                # Files written before truth had a file of its own kept it in the database.
                con.execute("DROP TABLE IF EXISTS incidents")
            has_tz = has_column(con, "stores", "timezone")
            whole = bool(self._replaced)  # appends refresh only the dates they touch
            appended = set() if whole else self._appended_dates(has_tz)
            old_end = None if whole else extract_end(con)
            for table in sorted(self.rows):
                shadow = f"_load_{table}"
                if table in self._replaced:
                    con.execute(f"DROP TABLE IF EXISTS {table}")
                    con.execute(f"ALTER TABLE {shadow} RENAME TO {table}")
                else:
                    con.execute(f"INSERT INTO {table} SELECT * FROM {shadow}")
                    con.execute(f"DROP TABLE {shadow}")
            for key, value in self._metadata.items():
                con.execute(
                    "INSERT OR REPLACE INTO metadata VALUES (?, ?)",
                    [key, json.dumps(value, default=str)],
                )
            row = con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM load_log").fetchone()
            con.execute(
                "INSERT INTO load_log VALUES (?, ?, ?, ?, ?)",
                [
                    int(row[0]) if row else 1,
                    datetime.now(UTC).replace(tzinfo=None),
                    self.source,
                    self.mode,
                    json.dumps({t: self.rows[t] for t in sorted(self.rows)}),
                ],
            )
            create_views(con)
            if whole:
                refresh_store_day(con, None, has_timezone=has_tz)
            elif appended or old_end != extract_end(con):
                dates = appended | after_extract_end(con, old_end, extract_end(con))
                refresh_store_day(con, dates, has_timezone=has_tz)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("CHECKPOINT")

    def _appended_dates(self, has_timezone: bool) -> set[date]:
        shadows = {t: f"_load_{t}" for t in self.rows if t not in self._replaced}
        return appended_dates(self.con, shadows, has_timezone)

    def _future(self, table: str) -> str:
        """Return a SQL relation of what ``table`` will hold once this load lands."""
        if table not in self.rows:
            return table
        if table in self._replaced:
            return f"_load_{table}"
        return f"(SELECT * FROM {table} UNION ALL SELECT * FROM _load_{table})"

    def _table_checks(self) -> list[Problem]:
        """Keys unique across sources and stored rows; foreign keys resolve."""
        problems: list[Problem] = []
        for name in self.rows:
            problems += self._duplicates(CONTRACT_TABLES[name])
        for child in CONTRACT_TABLES.values():
            for col, target in child.foreign_keys.items():
                parent, parent_col = target.split(".")
                if child.name not in self.rows and parent not in self.rows:
                    continue
                sql = (
                    f"SELECT c.{col} AS v, count(*) AS n FROM {self._future(child.name)} AS c "
                    f"WHERE c.{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                    f"{self._future(parent)} AS p WHERE p.{parent_col} = c.{col}) GROUP BY 1"
                )
                rows = self.con.execute(f"SELECT v, n FROM ({sql}) ORDER BY n DESC, v").fetchall()
                if rows:
                    problems.append(
                        Problem(
                            table=child.name,
                            source=self.source,
                            column=col,
                            problem=f"references {parent}.{parent_col} values that do not exist "
                            f"({len(rows)} distinct value(s))",
                            count=sum(int(r[1]) for r in rows),
                            examples=[f"{r[0]!r} ({r[1]} rows)" for r in rows[:3]],
                        )
                    )
        return problems

    def _duplicates(self, schema: TableSchema) -> list[Problem]:
        key = ", ".join(quote_ident(k) for k in schema.primary_key)
        sql = (
            f"SELECT {key}, count(*) AS n FROM {self._future(schema.name)} "
            "GROUP BY ALL HAVING count(*) > 1"
        )
        total = self.con.execute(f"SELECT count(*), coalesce(sum(n), 0) FROM ({sql})").fetchone()
        if not total or not total[0]:
            return []
        rows = self.con.execute(f"{sql} ORDER BY n DESC LIMIT 3").fetchall()
        width = len(schema.primary_key)
        where = "with rows already stored" if self.mode == "append" else "across sources"
        return [
            Problem(
                table=schema.name,
                source=self.source,
                column=", ".join(schema.primary_key),
                problem=f"duplicate key {where} ({int(total[0])} value(s))",
                count=int(total[1]),
                examples=[", ".join(str(v) for v in r[:width]) + f" x{r[width]}" for r in rows],
            )
        ]


def _schema(table: str) -> TableSchema:
    try:
        return CONTRACT_TABLES[table]
    except KeyError:
        raise ValueError(
            f"unknown table {table!r}; the contract tables are {', '.join(CONTRACT_TABLES)}"
        ) from None
