"""Where tools read data from: a backend runs SQL over the contract and knows its data version.

The backend is the one seam between the analytics and a query engine: no module outside the
backends opens a database connection. DuckDB is the embedded default; the SQL the tools send
is written once (see :mod:`tools.data.views`) so another engine (Spark, later) can serve the
same tools behind the same protocol.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd

from tools.data.refresh import STORE_DAY_TABLE, is_materialised
from tools.data.schema import CONTRACT_TABLES
from tools.data.store import connect, read_metadata, table_counts
from tools.data.views import DEFAULT_LATE_RULE, LateRule, views


class Backend(Protocol):
    """A read-only query engine over the data contract."""

    name: str
    late: LateRule

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one SELECT and return its rows."""
        ...

    def data_version(self) -> str:
        """Return an id that changes whenever the data changes (it keys model caches)."""
        ...

    @property
    def has_timezone(self) -> bool:
        """Whether ``stores`` carries a ``timezone`` column."""
        ...

    def columns(self) -> dict[str, list[str]]:
        """Return the columns of every contract table the data holds, by table."""
        ...

    def table_counts(self) -> dict[str, int]:
        """Return the rows of every contract table the data holds."""
        ...

    def metadata(self, key: str) -> object | None:
        """Return the JSON value stored with the data under ``key``, or None."""
        ...

    def run_guarded(
        self, sql: str, *, max_rows: int, timeout_s: float
    ) -> tuple[list[str], list[list[Any]], bool]:
        """Run one ad-hoc SELECT under the engine's own guards: (columns, rows, truncated)."""
        ...


class GuardedQueryError(ValueError):
    """A guarded ad-hoc query was rejected, failed, or ran past its time limit."""


# run_sql's connection: no extension loading or installing, capped; once open (and ICU
# loaded for the views' time zones) files and the network are switched off and every
# setting is locked, so no statement can loosen any of it.
GUARDED_CONFIG: dict[str, str | bool | int] = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "memory_limit": "1GB",
    "threads": 2,
}
GUARDED_LOCKS = ("SET enable_external_access = false", "SET lock_configuration = true")


class DuckDBBackend:
    """The contract in a DuckDB file, opened read-only for each query.

    A connection is not kept open between queries, so loads (which need the write lock) are
    never blocked by an idle reader. When the run defines late differently from the file's
    persisted views, each connection shadows them with temporary views of the run's rule, so
    ad-hoc SQL and the tools agree.
    """

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, path: str | Path, *, late: LateRule = DEFAULT_LATE_RULE):
        self.path = Path(path)
        self.late = late
        if not self.path.exists():
            raise FileNotFoundError(
                f"database {self.path} does not exist: generate or ingest data first"
            )

    def _open(self, config: dict[str, str | bool | int] | None = None) -> duckdb.DuckDBPyConnection:
        has_timezone = self.has_timezone  # before: one file, one configuration at a time
        materialised = self.late == DEFAULT_LATE_RULE and self.has_store_day_table
        con = connect(self.path, read_only=True, config=config)
        # The views this code defines, whatever the file stored when it was loaded (an older
        # version, another definition of late): temporary views shadow the persisted ones.
        try:
            for name, sql in views(self.late, has_timezone=has_timezone).items():
                if name == "store_day" and materialised:  # kept by each load
                    sql = f"SELECT * FROM {STORE_DAY_TABLE}"
                con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        except (duckdb.CatalogException, duckdb.BinderException):
            # not a contract database (yet), or one missing a column the views read: queries
            # say which table is missing, and the data-health check which column
            pass
        if config is GUARDED_CONFIG:
            for statement in GUARDED_LOCKS:
                con.execute(statement)
        return con

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one SELECT on a fresh read-only connection."""
        con = self._open()
        try:
            return con.execute(sql, list(params)).df()
        finally:
            con.close()

    def columns(self) -> dict[str, list[str]]:
        """Columns of every contract table the database holds, by table."""
        con = self._open()  # the engine's own catalogue: not SQL the backends share
        try:
            rows = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "ORDER BY table_name, ordinal_position"
            ).fetchall()
        finally:
            con.close()
        out: dict[str, list[str]] = {}
        for table, column in rows:
            if table in CONTRACT_TABLES:
                out.setdefault(str(table), []).append(str(column))
        return out

    def table_counts(self) -> dict[str, int]:
        """Rows of every contract table (and ``incidents``) the database holds."""
        con = self._open()
        try:
            return table_counts(con)
        finally:
            con.close()

    def metadata(self, key: str) -> object | None:
        """Return the JSON value stored with the data under ``key`` (e.g. ``world``), or None."""
        con = self._open()
        try:
            return read_metadata(con, key)
        finally:
            con.close()

    @cached_property
    def has_store_day_table(self) -> bool:
        """Whether loads keep ``store_day`` materialised (files from before it do not)."""
        con = connect(self.path, read_only=True)
        try:
            return is_materialised(con)
        finally:
            con.close()

    @cached_property
    def has_timezone(self) -> bool:
        """Whether ``stores`` has a ``timezone`` column (files from before it was added do not)."""
        con = connect(self.path, read_only=True)
        try:
            rows = con.execute(
                "SELECT 1 FROM duckdb_columns() "
                "WHERE table_name = 'stores' AND column_name = 'timezone'"
            ).fetchall()
        finally:
            con.close()
        return bool(rows)

    def data_version(self) -> str:
        """Hash of the database path, its load log and the definition of late.

        Every load appends to the load log, so fitted models cached under this id are never
        served on changed data.
        """
        frame = self.query(
            "SELECT max(load_id) AS id, max(loaded_at) AS at, count(*) AS n FROM load_log"
        )
        raw = f"{self.path.resolve()}|{frame.to_json()}|{self.late.model_dump_json()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def run_guarded(
        self, sql: str, *, max_rows: int, timeout_s: float
    ) -> tuple[list[str], list[list[Any]], bool]:
        """Run one ad-hoc statement under the engine's own guards.

        DuckDB's parser must see exactly one SELECT; the connection is read-only and locked
        (:data:`GUARDED_CONFIG`); the query is interrupted after ``timeout_s`` and at most
        ``max_rows`` rows are fetched.

        Returns:
            (columns, rows, truncated).

        Raises:
            GuardedQueryError: rejected, failed, or stopped by the timeout.
        """
        con = self._open(GUARDED_CONFIG)
        timer = threading.Timer(timeout_s, con.interrupt)
        try:
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as exc:
                raise GuardedQueryError(f"rejected: {str(exc).splitlines()[0]}") from None
            if len(statements) != 1:
                raise GuardedQueryError(
                    f"rejected: exactly one statement is allowed, got {len(statements)}"
                )
            if statements[0].type != duckdb.StatementType.SELECT:
                raise GuardedQueryError(
                    f"rejected: only SELECT is allowed, got {statements[0].type.name}"
                )
            timer.start()
            try:
                cursor = con.execute(sql)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(max_rows + 1)
            except duckdb.InterruptException:
                raise GuardedQueryError(
                    f"stopped: the query ran longer than {timeout_s:g} s"
                ) from None
            except duckdb.Error as exc:
                raise GuardedQueryError(f"query failed: {str(exc).splitlines()[0]}") from None
        finally:
            timer.cancel()
            con.close()
        return columns, [list(r) for r in rows[:max_rows]], len(rows) > max_rows
