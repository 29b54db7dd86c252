"""The Parquet lake an export writes, and what is said of folders that are not one (no Spark
needed: DuckDB writes the lake, the checks run before Spark would start)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tools.data.backends import DataSource
from tools.data.lake import export_parquet
from tools.data.spark import LAKE_MARKER, lake_problem


def test_a_re_export_keeps_what_the_user_put_in_the_lake(
    small_world_db: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    first = export_parquet(small_world_db, lake)
    (lake / "README.txt").write_text("our lake, refreshed nightly")
    (lake / "extra").mkdir()
    (lake / "extra" / "part.parquet").write_bytes(b"not ours")
    second = export_parquet(small_world_db, lake)
    assert second.rows == first.rows and (lake / LAKE_MARKER).exists()
    assert (lake / "README.txt").read_text() == "our lake, refreshed nightly"
    assert (lake / "extra" / "part.parquet").read_bytes() == b"not ours"
    assert not list(tmp_path.glob(".lake.*"))  # no staging or old folder left behind
    ((rows,),) = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{lake}/deliveries/*/*.parquet')"
    ).fetchall()
    assert rows == first.rows["deliveries"]


def test_what_is_not_a_lake_is_named_before_spark_starts(
    small_world_db: Path, tmp_path: Path
) -> None:
    assert "does not exist" in str(lake_problem(tmp_path / "nowhere"))
    # a DuckDB file given as a lake: the option that reads it
    assert f"--db {small_world_db}" in str(lake_problem(small_world_db))
    lake = tmp_path / "lake"
    export_parquet(small_world_db, lake)
    assert lake_problem(lake) is None
    assert lake_problem("s3a://bucket/lake") is None  # Spark reads and judges URLs
    for table, kept in (("stores", "deliveries"), ("deliveries", "stores")):
        part = tmp_path / f"no_{table}"
        (part / kept).mkdir(parents=True)
        problem = str(lake_problem(part))
        assert f"no {table} folder" in problem and "lastmile export --parquet" in problem
    source = DataSource(kind="spark", location=str(small_world_db))
    assert not source.exists() and "is a file" in source.missing()
