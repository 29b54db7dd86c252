"""run_sql: a hostile corpus is rejected or stopped, with and without the AST guard."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.run_sql import RunSqlInput, check_sql, execute_guarded, run_sql

HOSTILE = [
    # DDL / DML
    "DROP TABLE stores",
    "DELETE FROM deliveries",
    "UPDATE stores SET name = 'x'",
    "INSERT INTO stores VALUES ('X1', 'x', 'R1', 'x', 1, 1)",
    "CREATE TABLE evil AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT * FROM deliveries",
    "ALTER TABLE stores ADD COLUMN pwned INTEGER",
    "TRUNCATE stores",
    "CREATE MACRO m(x) AS x",
    # several statements
    "SELECT 1; DROP TABLE stores",
    "SELECT count(*) FROM stores; DELETE FROM stores",
    # files out
    "COPY stores TO '{tmp}/leak.csv'",
    "COPY (SELECT * FROM deliveries) TO '{tmp}/leak.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{tmp}/export'",
    # other databases
    "ATTACH '{tmp}/evil.duckdb' AS evil",
    "ATTACH ':memory:' AS scratch",
    "DETACH scratch",
    # files in
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "SELECT count(*) FROM stores WHERE name IN (SELECT content FROM read_text('/etc/passwd'))",
    "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
    "SELECT * FROM sqlite_scan('/tmp/x.db', 't')",
    # extensions
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL spatial",
    # settings
    "SET enable_external_access = true",
    "SET threads = 64",
    "RESET lock_configuration",
    "SET memory_limit = '100GB'",
    # pragmas and calls
    "PRAGMA table_info('stores')",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    # resource exhaustion
    "SELECT count(*) FROM deliveries a, deliveries b, deliveries c",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "SELECT * FROM range(1000000000000)",
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_corpus_is_big_enough() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("guard", [True, False], ids=["with-ast-guard", "without-ast-guard"])
def test_every_hostile_statement_is_rejected_or_stopped(
    small_world_db: Path, tmp_path: Path, guard: bool
) -> None:
    before = _digest(small_world_db)
    outcomes = {}
    for raw in HOSTILE:
        sql = raw.format(tmp=tmp_path)
        started = time.perf_counter()
        try:
            _, rows, truncated = execute_guarded(
                small_world_db, sql, max_rows=50, timeout_s=2.0, guard=guard
            )
        except ToolError as exc:
            outcomes[raw] = str(exc).split(":")[0]
        else:
            # the only way to "succeed" is an unbounded read cut at the row cap
            assert truncated and len(rows) == 50, raw
            outcomes[raw] = "capped"
        assert time.perf_counter() - started < 6.0, raw
    assert set(outcomes.values()) <= {"rejected", "stopped", "query failed", "capped"}, outcomes
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere
    assert _digest(small_world_db) == before
    if guard:
        # the AST guard alone stops everything except the expensive but valid queries
        let_through = {sql for sql, how in outcomes.items() if how != "rejected"}
        assert let_through <= {HOSTILE[-3], HOSTILE[-2]}, let_through


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM duckdb_settings()",
        "SELECT current_setting('temp_directory')",
        "SELECT * FROM load_log",
        "SELECT * FROM other_db.main.stores",
        "DESCRIBE stores",
        # the evals' answer key (issue 10, item 11)
        "SELECT * FROM incidents",
        "SELECT true_cause FROM main.incidents",
        "WITH x AS (SELECT * FROM incidents) SELECT * FROM x",
    ],
)
def test_the_ast_guard_also_keeps_to_the_contract(sql: str) -> None:
    with pytest.raises(ToolError, match="rejected"):
        check_sql(sql)


def test_legitimate_queries_work_and_register_evidence(ctx: ToolContext) -> None:
    sql = (
        "WITH r AS (SELECT region, sum(late) AS late, sum(delivered + failed) AS n FROM store_day "
        "GROUP BY region) SELECT region, round(late / n, 4) AS late_rate FROM r ORDER BY region"
    )
    result = run_sql(ctx, RunSqlInput(sql=sql))
    assert result.columns == ["region", "late_rate"]
    assert [r[0] for r in result.rows] == ["R1", "R2"]
    assert ctx.evidence.get(result.evidence_id).numbers["r1.late_rate"] == result.rows[0][1]  # type: ignore[union-attr]
    union = run_sql(
        ctx, RunSqlInput(sql="SELECT store_id FROM stores UNION SELECT 'S999'", max_rows=5)
    )
    assert union.truncated and len(union.rows) == 5


def test_an_overlong_statement_is_refused_by_name() -> None:
    from pydantic import ValidationError

    from tools.run_sql import MAX_SQL_CHARS

    RunSqlInput(sql="SELECT 1" + " " * (MAX_SQL_CHARS - 8))
    with pytest.raises(ValidationError, match="at most 20,000"):
        RunSqlInput(sql="SELECT 1" + " " * MAX_SQL_CHARS)


def test_no_agent_tool_reads_the_ground_truth() -> None:
    """Only the data loaders write ``incidents`` and only the evals read it."""
    root = Path(__file__).parents[3] / "tools"
    reads = re.compile(r"(?i)\b(from|join)\s+[\w.\"]*incidents\b|[\"']incidents[\"']")
    readers = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if reads.search(p.read_text()) and not p.relative_to(root).as_posix().startswith("data/")
    ]
    assert readers == [], readers
