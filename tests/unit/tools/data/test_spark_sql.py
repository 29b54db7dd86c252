"""The SQL the backends share, as Spark SQL (no Spark needed: sqlglot only), and the
Spark backend's set-up errors."""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from agent.settings import Settings
from tools.data.backends import DataSource
from tools.data.spark import SparkUnavailableError, spark_session
from tools.data.spark_sql import to_spark
from tools.data.views import LateRule, outcomes_sql, store_day_additive_sql, views

SHARED = {
    "views": views(LateRule()),
    "views, grace and no timezone": views(
        LateRule(grace_min=15, failed_is_late=False), has_timezone=False
    ),
    "as of": {
        "outcomes": outcomes_sql(as_of=date(2026, 3, 9), first_day=date(2026, 1, 1)),
        "store_day": store_day_additive_sql(
            as_of=date(2026, 3, 9), first_day=date(2026, 1, 1), stores=["S001", "S'2"]
        ),
    },
}


@pytest.mark.parametrize("family", SHARED)
def test_every_shared_query_parses_for_both_engines(family: str) -> None:
    for name, sql in SHARED[family].items():
        sqlglot.parse_one(sql, read="duckdb", error_level=ErrorLevel.RAISE)
        spark = to_spark(sql)
        sqlglot.parse_one(spark, read="spark", error_level=ErrorLevel.RAISE)
        assert "TIMEZONE(" not in spark.upper(), name  # DuckDB's function, not Spark's


def test_the_engine_idioms_are_rewritten() -> None:
    spark = to_spark(
        "SELECT dayofweek(d) AS dow, timezone(z, timezone('UTC', t)) AS local FROM x WHERE a = ?"
    )
    assert "(DAYOFWEEK(d) - 1)" in spark  # DuckDB counts Sunday as 0, Spark as 1
    assert "FROM_UTC_TIMESTAMP(CAST(t AS TIMESTAMP_LTZ), z)" in spark
    # on a wall-clock time DuckDB converts the other way: the instant it names in the zone
    naive = to_spark("SELECT timezone('America/Sao_Paulo', t), timezone('UTC', t) FROM x")
    assert "TO_UTC_TIMESTAMP(t, 'America/Sao_Paulo')" in naive
    assert "FROM_UTC" not in naive
    now = to_spark("SELECT timezone('UTC', now()), timezone(z, current_timestamp) FROM x")
    assert "TO_UTC" not in now and now.count("TIMESTAMP_NTZ") == 2
    assert spark.endswith("a = ?")


def test_spark_without_its_lake_or_java_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="LASTMILE_DATA"):
        Settings(backend="spark", data=None).data_source()
    source = Settings(backend="spark", data="/nowhere/lake").data_source()
    assert source.kind == "spark" and not source.exists()
    assert "lastmile export --parquet" in source.missing()
    assert DataSource(location="x.duckdb").kind == "duckdb"
    # a lake named without an engine is read with Spark; an engine named explicitly wins
    assert Settings(data="/a/lake").backend == "spark"
    assert Settings(data="/a/lake", backend="duckdb").backend == "duckdb"
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr("pyspark.sql.SparkSession.getActiveSession", lambda: None)
    with pytest.raises(SparkUnavailableError, match="default-jre-headless"):
        spark_session(source.spark)
