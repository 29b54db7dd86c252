"""The Spark backend against DuckDB on the same data: every query a triage sends, its KPIs,
anomalies and top causes; the lake export; the guarded ad-hoc SQL.

Spark runs ``local[2]`` in this test process (one JVM for the file: keep Spark tests here).
Without Java or pyspark the tests skip saying how to install them; under ``CI=true`` they
fail (``.ci/run`` installs a JRE, ``make setup`` the ``[spark]`` extra).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agent.service import AgentService
from agent.settings import Settings
from tests.servers import missing
from tools.data.backend import DuckDBBackend, GuardedQueryError
from tools.data.backends import DataSource
from tools.data.lake import export_parquet
from tools.data.olist import ingest_olist
from tools.data.spark import SPARK_INSTALL, SparkBackend, SparkConfig, java_available
from tools.data.views import LateRule

pytestmark = pytest.mark.integration

OLIST = Path(__file__).parents[1] / "fixtures" / "olist_2017h1"
CONFIG = SparkConfig(master="local[2]", driver_memory="1g", shuffle_partitions=2)


@pytest.fixture(scope="module", autouse=True)
def _spark_available() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing(SPARK_INSTALL)
    if not java_available():
        missing(SPARK_INSTALL)


@pytest.fixture(scope="module")
def small_lake(small_world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("lakes") / "small"
    export_parquet(small_world_db, lake)
    return lake


@pytest.fixture(scope="module")
def olist_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("olist") / "olist.duckdb"
    ingest_olist(OLIST, path)
    return path


@pytest.fixture(scope="module")
def olist_lake(olist_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("lakes") / "olist"
    export_parquet(olist_db, lake)
    return lake


def assert_same(duck: pd.DataFrame, spark: pd.DataFrame, what: str) -> None:
    """Equal frames: the same columns and rows (in any order), counts exactly, rates within
    1e-9 relative."""
    assert list(duck.columns) == list(spark.columns), what
    assert len(duck) == len(spark), what
    if len(duck) > 1:  # the row order of a query without ORDER BY is the engine's
        key = list(duck.columns)
        duck = duck.sort_values(key, key=_sortable).reset_index(drop=True)
        spark = spark.sort_values(key, key=_sortable).reset_index(drop=True)
    for column in duck.columns:
        a, b = duck[column], spark[column]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            assert a.isna().equals(b.isna()), f"{what}: NULLs of {column}"
            x, y = a.dropna().astype(float), b.dropna().astype(float)
            close = (x - y).abs() <= 1e-9 * x.abs().clip(lower=1e-300)
            differs = f"{x[~close].head(3).tolist()} vs {y[~close].head(3).tolist()}"
            assert close.all(), f"{what}: {column} differs: {differs}"
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), f"{what}: {column} differs"


def _sortable(series: pd.Series) -> pd.Series:
    return series.astype(str)


def test_store_day_is_the_same_on_both_engines(small_world_db: Path, small_lake: Path) -> None:
    duck = DuckDBBackend(small_world_db)
    spark = SparkBackend(small_lake, config=CONFIG)
    sql = "SELECT * FROM store_day"
    assert_same(duck.query(sql), spark.query(sql), "store_day")
    assert spark.table_counts() == duck.table_counts()
    assert spark.metadata("world") == duck.metadata("world")
    assert spark.columns() == duck.columns()


def test_real_data_in_a_time_zone_is_the_same(olist_db: Path, olist_lake: Path) -> None:
    """Olist is in America/Sao_Paulo: service dates and as-of cut-offs convert zones."""
    from tools.data.views import store_day_additive_sql

    duck = DuckDBBackend(olist_db)
    spark = SparkBackend(olist_lake, config=CONFIG)
    assert_same(
        duck.query("SELECT * FROM store_day"),
        spark.query("SELECT * FROM store_day"),
        "olist store_day",
    )
    as_of = store_day_additive_sql(as_of=date(2017, 5, 16), first_day=date(2017, 4, 1))
    assert_same(duck.query(as_of), spark.query(as_of), "olist as of 2017-05-16")
    # an analyst's zone conversions, both ways round (run_sql takes DuckDB's dialect)
    adhoc = (
        "SELECT delivery_id, hour(timezone('America/Sao_Paulo', CAST(promised_end AS "
        "TIMESTAMPTZ))) AS local_hour, hour(timezone('America/Sao_Paulo', promised_end)) "
        "AS utc_hour_of_local, hour(timezone(s.timezone, timezone('UTC', promised_end))) AS h "
        "FROM deliveries d JOIN stores s USING (store_id) ORDER BY delivery_id LIMIT 200"
    )
    assert_same(duck.query(adhoc), spark.query(adhoc), "olist zone conversions")


class Recording(DuckDBBackend):
    """A DuckDB backend that keeps every query it is sent."""

    sent: list[tuple[str, tuple[object, ...]]] = []

    def query(self, sql: str, params: Any = ()) -> pd.DataFrame:
        Recording.sent.append((sql, tuple(params)))
        return super().query(sql, params)


@pytest.fixture(scope="module")
def triages(
    small_world_db: Path,
    small_lake: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """The morning triage of day 52 (a volume surge, a carrier outage) on each engine."""
    root = tmp_path_factory.mktemp("spark_triage")
    monkeypatch_module.setattr("tools.data.backends.DuckDBBackend", Recording)
    out: dict[str, Any] = {}
    for kind, location in (("duckdb", small_world_db), ("spark", small_lake)):
        settings = Settings(
            backend=kind,
            data=str(location),
            spark_master="local[2]",
            spark_shuffle_partitions=2,
            model_dir=root / kind / "models",
        )
        service = AgentService(
            settings, db=small_world_db, state_db=root / kind / "state.sqlite", offline=True
        )
        try:
            view = service.triage(date(2026, 2, 22))
            out[kind] = {
                "plan": view.plan.model_dump(mode="json") if view.plan else None,
                "results": [(r.tool, r.result) for r in service.results(view.run_id)],
            }
        finally:
            service.close()
    out["queries"] = list(dict.fromkeys(Recording.sent))
    return out


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_query_of_a_triage_gives_the_same_rows(
    triages: dict[str, Any], small_world_db: Path, small_lake: Path
) -> None:
    queries = triages["queries"]
    assert len(queries) >= 5  # health, scan, diagnose, recommend, forecast
    duck = DuckDBBackend(small_world_db)
    spark = SparkBackend(small_lake, config=CONFIG)
    for sql, params in queries:
        assert_same(duck.query(sql, params), spark.query(sql, params), sql[:200])


def test_the_triage_finds_the_same_anomalies_and_causes(triages: dict[str, Any]) -> None:
    def found(kind: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        anomalies, causes = [], []
        for tool, result in triages[kind]["results"]:
            if tool == "scan_anomalies":
                anomalies += [(a["level"], a["target"], a["date"]) for a in result["anomalies"]]
            if tool == "diagnose" and result["hypotheses"]:
                causes.append((result["target"], result["hypotheses"][0]["cause"]))
        return anomalies, causes

    anomalies, causes = found("duckdb")
    assert anomalies and causes  # the day has incidents to find
    assert found("spark") == (anomalies, causes)
    # the whole plan, word for word: the same numbers reach the same sentences
    assert triages["spark"]["plan"] == triages["duckdb"]["plan"]


def test_guarded_sql_on_spark(small_lake: Path) -> None:
    spark = SparkBackend(small_lake, config=CONFIG)
    columns, rows, truncated = spark.run_guarded(
        "SELECT store_id, count(*) AS days FROM store_day GROUP BY ALL ORDER BY 1",
        max_rows=5,
        timeout_s=60,
    )
    assert columns == ["store_id", "days"] and len(rows) == 5 and truncated
    assert rows[0] == ["S001", 60]
    for bad, why in (
        ("DROP TABLE stores", "exactly one SELECT"),
        ("SELECT 1; SELECT 2", "exactly one SELECT"),
        (f"SELECT * FROM parquet.`{small_lake}/stores`", "rejected"),
        ("SELECT * FROM other_db.stores", "unknown table"),
        ("SELECT * FROM secrets", "unknown table"),
    ):
        with pytest.raises(GuardedQueryError, match=why):
            spark.run_guarded(bad, max_rows=5, timeout_s=60)


def test_a_new_export_is_read_and_bad_targets_are_refused(
    small_world_db: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    export_parquet(small_world_db, lake)
    source = DataSource(kind="spark", location=str(lake), spark=CONFIG)
    first = source.open(LateRule())
    assert source.open(LateRule()) is first  # views registered once per process
    version = first.data_version()
    export_parquet(small_world_db, lake)  # replaced in place
    again = source.open(LateRule())
    assert again is not first and again.data_version() != version
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a data lake"):
        export_parquet(small_world_db, other)
    assert (other / "keep.txt").read_text() == "mine"
    shutil.rmtree(lake)
    with pytest.raises(FileNotFoundError, match="lastmile export --parquet"):
        SparkBackend(lake, config=CONFIG)


def test_the_cli_exports_a_lake_and_reads_it_with_spark(
    small_world_db: Path, tmp_path: Path
) -> None:
    lastmile = [sys.executable, "-m", "agent.interfaces.cli"]
    lake = tmp_path / "lake"
    done = subprocess.run(
        [*lastmile, "export", "--parquet", str(lake), "--db", str(small_world_db), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["rows"]["deliveries"] > 0 and report["partitions"] == 60
    # a lake alone (no LASTMILE_BACKEND) is read with Spark
    env = {
        "LASTMILE_SPARK_MASTER": "local[2]",
        "LASTMILE_SPARK_DRIVER_MEMORY": "1g",
        "LASTMILE_DATA": str(lake),
    }
    done = subprocess.run(
        [*lastmile, "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    info = json.loads(done.stdout)
    assert info["backend"] == "spark" and info["rows"] == report["rows"]
    assert info["dates"] == ["2026-01-01", "2026-03-01"]
    bad = subprocess.run([*lastmile, "--backend", "oracle", "info"], capture_output=True, text=True)
    assert bad.returncode == 2 and "must be duckdb or spark" in bad.stderr
    # a DuckDB file named beside a lake is refused, not silently ignored
    both = [*lastmile, "--data", str(lake), "kpis", "--db", str(small_world_db)]
    bad = subprocess.run(both, capture_output=True, text=True)
    assert bad.returncode == 2 and "drop --db" in bad.stderr, bad.stderr
