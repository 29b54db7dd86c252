"""The Spark backend: the data contract as a Parquet data lake, queried with Spark SQL.

A lake is what ``lastmile export --parquet DIR`` writes (:mod:`tools.data.lake`): one folder
of Parquet files per table (``deliveries`` partitioned by service date), plus ``metadata``
and ``load_log``. Each table becomes a temporary view of the session, the derived views
(``delivery_outcomes``, ``store_day``) are the same SQL the DuckDB backend runs, transpiled
(:mod:`tools.data.spark_sql`), and results come back to the driver as small pandas frames
(Arrow on). One :class:`~pyspark.sql.SparkSession` serves the process; settings that only
apply before its JVM starts (driver memory) are taken from the first backend opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlglot
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from tools.data.backend import GuardedQueryError
from tools.data.schema import CONTRACT_TABLES
from tools.data.spark_sql import to_spark
from tools.data.views import DEFAULT_LATE_RULE, LateRule, views

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAKE_MARKER = "_lastmile_lake"
"""File at the top of every lake ``lastmile export`` writes (rewritten by each export)."""

LAKE_TABLES: tuple[str, ...] = (*CONTRACT_TABLES, "metadata", "load_log")
"""The folders of a lake: the contract's tables, then the data's metadata and load log."""

SPARK_INSTALL = (
    "the Spark backend needs the [spark] extra (pip install 'lastmile-agent[spark]', which "
    "`make setup` installs) and a Java runtime 17+ (Debian: apt-get install "
    "default-jre-headless)"
)

_SESSION_LOCK = threading.Lock()
LOG4J = Path(__file__).with_name("spark-log4j2.properties").as_uri()


class SparkUnavailableError(RuntimeError):
    """Spark cannot start here: pyspark or a Java runtime is missing (the message says how)."""


class SparkConfig(BaseModel):
    """How the process's Spark session is built (settings ``LASTMILE_SPARK_*``)."""

    model_config = ConfigDict(frozen=True)

    master: str = Field(
        "local[*]", description="Spark master URL, e.g. local[2] or spark://h:7077."
    )
    driver_memory: str = Field(
        "4g",
        pattern=r"^\d+[kmgt]?$",
        description="Driver JVM heap; read only when the JVM starts (the first backend).",
    )
    shuffle_partitions: int = Field(
        8,
        ge=1,
        description="Partitions after a shuffle. Spark's default, 200, costs ~1 s of task "
        "overhead per query on a store-day table of a few hundred thousand rows.",
    )


LAKE_REQUIRED: tuple[str, ...] = ("deliveries", "stores")
"""The folders every lake needs: the derived views read both."""


def lake_problem(location: str | Path) -> str | None:
    """Say what keeps a local folder from being read as a lake, or None when it can be.

    Checked before Spark starts (its JVM takes seconds): a missing folder, a file (a DuckDB
    database is read with ``--db``), a folder without the tables the views need. An
    object-store URL is not checked here: Spark says what it cannot read.
    """
    if "://" in str(location):
        return None
    path = Path(location)
    export = "write one with `lastmile export --parquet DIR`"
    if not path.exists():
        return f"data lake {path} does not exist: {export}"
    if path.is_file():
        return (
            f"{path} is a file, not a data lake folder: a DuckDB database is read with "
            f"--db {path} (or LASTMILE_DB) and the duckdb backend; a lake is a folder ({export})"
        )
    lacking = [t for t in LAKE_REQUIRED if not (path / t).is_dir()]
    if lacking:
        return f"data lake {path} has no {' or '.join(lacking)} folder: {export}"
    return None


def java_available() -> bool:
    """Tell whether a Java runtime is on the PATH or under ``JAVA_HOME``."""
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


def spark_session(config: SparkConfig) -> SparkSession:
    """Return the process's Spark session, started with ``config`` if none is running.

    Settings the project fixes: session time zone UTC (the contract's timestamps are UTC
    wall-clock times, :mod:`tools.data.spark_sql` relies on it), ANSI mode on (Spark 4's
    default: a bad cast fails instead of turning NULL, as in DuckDB), Arrow for
    ``toPandas`` and ``applyInPandas``, no UI, no console progress bars, and the workers'
    Python set to this interpreter.

    Raises:
        SparkUnavailableError: pyspark is not installed or no Java runtime is found.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(SPARK_INSTALL) from None
    if not java_available():
        raise SparkUnavailableError(SPARK_INSTALL)
    with _SESSION_LOCK:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        # the executors' Python must be the driver's (its packages, its pandas)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder: Any = SparkSession.builder
        if config.master.startswith("local"):  # the loopback: no warning about the host name
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
                "spark.driver.host", "127.0.0.1"
            )
        spark = (
            builder.master(config.master)
            .appName("lastmile-agent")
            .config("spark.driver.memory", config.driver_memory)
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J}")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "true")
            .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        # errors reach the caller as exceptions; Spark's own logs of them (the JVM's, and
        # PySpark's JSON lines on stderr) are noise on the console
        spark.sparkContext.setLogLevel("FATAL")
        from pyspark.logger import PySparkLogger

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            PySparkLogger.getLogger(name).disabled = True
        return spark  # type: ignore[no-any-return]


class SparkBackend:
    """The contract in a Parquet data lake, queried through one Spark session.

    Args:
        lake: the lake's folder, or an object-store URL Spark can read (``s3a://``...).
        config: how to start the session (ignored when one is already running).
        late: the definition of late the derived views use.

    Raises:
        FileNotFoundError: a local lake that cannot be read (:func:`lake_problem` says why).
        SparkUnavailableError: Spark cannot start (see :func:`spark_session`).
    """

    name = "spark"
    dialect = "spark"

    def __init__(
        self,
        lake: str | Path,
        *,
        config: SparkConfig | None = None,
        late: LateRule = DEFAULT_LATE_RULE,
    ):
        self.location = str(lake)
        self.late = late
        self.config = config or SparkConfig()
        self._local = Path(lake) if "://" not in self.location else None
        problem = lake_problem(self.location)
        if problem is not None:
            raise FileNotFoundError(problem)
        self.spark = spark_session(self.config)
        # a prefix per backend: two lakes (or two definitions of late) in one session
        self._prefix = f"lm_{uuid.uuid4().hex[:8]}_"
        self._tables = self._register()

    def _path(self, table: str) -> str:
        return f"{self.location.rstrip('/')}/{table}"

    def _register(self) -> frozenset[str]:
        """Create the session's views of this lake; return the tables it has."""
        present = set()
        for table in LAKE_TABLES:
            if self._local is not None and not (self._local / table).is_dir():
                continue
            frame = self.spark.read.parquet(self._path(table))
            if table == "deliveries" and "service_date" in frame.columns:
                frame = frame.drop("service_date")  # the partition column: the views derive it
            frame.createOrReplaceTempView(self._prefix + table)
            present.add(table)
        for name, sql in views(self.late, has_timezone=self._stores_have_timezone()).items():
            self.spark.sql(self._spark_sql(sql)).createOrReplaceTempView(self._prefix + name)
            present.add(name)
        return frozenset(present)

    def _stores_have_timezone(self) -> bool:
        return "timezone" in self.spark.table(self._prefix + "stores").columns

    def _spark_sql(self, sql: str) -> str:
        """Transpile ``sql`` and point its table names at this backend's views."""
        tree = sqlglot.parse_one(to_spark(sql), read="spark")
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if (
                table.name in ctes
                or table.args.get("db")
                or not isinstance(table.this, exp.Identifier)
            ):
                continue  # a CTE, a qualified name, a table function or VALUES list
            table.set("this", exp.to_identifier(self._prefix + table.name))
        return tree.sql(dialect="spark")

    @cached_property
    def has_timezone(self) -> bool:
        """Whether ``stores`` has a ``timezone`` column."""
        return self._stores_have_timezone()

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one SELECT (DuckDB dialect, ``?`` parameters) and return its rows."""
        frame = self.spark.sql(self._spark_sql(sql), args=list(params) or None)
        return _like_duckdb(frame.toPandas(), frame.schema)

    def columns(self) -> dict[str, list[str]]:
        """Columns of every table the lake holds, by table."""
        return {
            t: list(self.spark.table(self._prefix + t).columns)
            for t in sorted(self._tables)
            if t in CONTRACT_TABLES
        }

    def table_counts(self) -> dict[str, int]:
        """Rows of every contract table the lake holds."""
        return {
            t: int(self.spark.table(self._prefix + t).count())
            for t in CONTRACT_TABLES
            if t in self._tables
        }

    def metadata(self, key: str) -> object | None:
        """Return the JSON value stored with the data under ``key``, or None."""
        if "metadata" not in self._tables:
            return None
        rows = self.spark.sql(
            f"SELECT value FROM {self._prefix}metadata WHERE key = ?", args=[key]
        ).collect()
        return json.loads(rows[0][0]) if rows else None

    def data_version(self) -> str:
        """Hash of the lake's location, its files (names, sizes, times) and the rule of late.

        A lake on object storage is versioned by its load log instead (listing it costs a
        request per file).
        """
        if self._local is not None:
            files = sorted(
                (str(p.relative_to(self._local)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in self._local.rglob("*.parquet")
            )
            content = json.dumps(files)
        else:
            content = self.query(
                "SELECT max(load_id) AS id, max(loaded_at) AS at, count(*) AS n FROM load_log"
            ).to_json()
        raw = f"{self.location}|{content}|{self.late.model_dump_json()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def run_guarded(
        self, sql: str, *, max_rows: int, timeout_s: float
    ) -> tuple[list[str], list[list[Any]], bool]:
        """Run one ad-hoc SELECT: only this lake's views, cancelled after ``timeout_s``.

        Returns:
            (columns, rows, truncated).

        Raises:
            GuardedQueryError: rejected, failed, or stopped by the timeout.
        """
        try:
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        except sqlglot.errors.ParseError as exc:
            raise GuardedQueryError(f"rejected: {str(exc).splitlines()[0]}") from None
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise GuardedQueryError("rejected: exactly one SELECT is allowed")
        # Spark can read any path as a table (parquet.`/etc`): only bare names of this
        # lake's tables and views are let through.
        ctes = {c.alias_or_name for c in statements[0].find_all(exp.CTE)}
        for table in statements[0].find_all(exp.Table):
            if table.args.get("db") or (table.name not in self._tables | ctes):
                raise GuardedQueryError(f"rejected: unknown table {table.sql()}")
        group = f"lastmile-sql-{uuid.uuid4().hex[:8]}"
        context = self.spark.sparkContext
        context.setJobGroup(group, "run_sql", interruptOnCancel=True)
        timer = threading.Timer(timeout_s, context.cancelJobGroup, args=(group,))
        timer.start()
        try:
            frame = self.spark.sql(self._spark_sql(sql)).limit(max_rows + 1)
            columns = list(frame.columns)
            rows = [list(r) for r in frame.collect()]
        except Exception as exc:  # noqa: BLE001 - Spark raises many kinds; all say why
            if not timer.is_alive():
                raise GuardedQueryError(
                    f"stopped: the query ran longer than {timeout_s:g} s"
                ) from None
            raise GuardedQueryError(f"query failed: {str(exc).splitlines()[0]}") from None
        finally:
            timer.cancel()
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        return columns, rows[:max_rows], len(rows) > max_rows


def _like_duckdb(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """Give a Spark result the pandas types DuckDB gives the same SQL types.

    DuckDB returns DATE and TIMESTAMP as ``datetime64[us]``, and a BOOLEAN or integer column
    with NULLs as a nullable ``boolean`` / ``Int32`` / ``Int64``; Spark's Arrow path returns
    Python dates, nanosecond times, ``None`` in object columns and floats. The tools test,
    compare and join on these, so both backends hand back one type.

    Args:
        frame: ``toPandas()`` of a Spark result.
        schema: its Spark ``StructType``.
    """
    from pyspark.sql import types as T

    nullable_ints = {T.IntegerType: "Int32", T.LongType: "Int64", T.ShortType: "Int16"}
    for field in schema.fields:
        series = frame[field.name]
        kind = type(field.dataType)
        if kind in (T.DateType, T.TimestampNTZType, T.TimestampType):
            frame[field.name] = pd.to_datetime(series).astype("datetime64[us]")
        elif kind is T.BooleanType and series.isna().any():
            frame[field.name] = series.astype("boolean")
        elif kind in nullable_ints and series.isna().any():
            frame[field.name] = series.astype(nullable_ints[kind])
    return frame
