"""Tool ``run_sql``: one read-only SELECT over the contract's tables, guarded four ways.

1. **AST allow-list** (sqlglot): exactly one SELECT (``WITH`` and set operations allowed);
   only the contract's tables and views; no table functions (``read_csv``, ``glob``...), no
   file, settings or metadata functions; no DDL, DML, COPY, ATTACH, PRAGMA, SET...
2. **DuckDB's own parser**: exactly one statement, of type SELECT.
3. **The connection**: read-only, ``enable_external_access=false`` (no files, no network,
   no extension install or load), extension autoload off, memory and threads capped, and
   ``lock_configuration=true`` so no statement can loosen any of it.
4. **Limits**: the query is interrupted after ``timeout_s`` and at most ``max_rows`` rows
   are fetched.

Layers 2-4 hold even if the AST guard is bypassed (``guard=False``, used by the tests).

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> sql = "SELECT region, avg(late_rate) FROM store_day GROUP BY 1"
    >>> run_sql(ctx, RunSqlInput(sql=sql)).rows
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlglot
from pydantic import BaseModel, Field, field_validator
from sqlglot import exp

from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import Backend, DuckDBBackend, GuardedQueryError
from tools.data.schema import CONTRACT_TABLES
from tools.data.views import VIEWS

logging.getLogger("sqlglot").setLevel(logging.ERROR)

# The contract's tables and views only. A synthetic world's answer key (``incidents``) lives in
# a file of its own (tools/data/truth_file.py); files written before that kept it in the
# database, and an agent that could read it would score itself.
ALLOWED_TABLES = frozenset(CONTRACT_TABLES) | frozenset(VIEWS)
DENIED_FUNCTION_PREFIXES = (
    "read_",
    "duckdb_",
    "pragma_",
    "parquet_",
    "sniff_",
    "iceberg_",
    "delta_",
)
DENIED_FUNCTIONS = frozenset(
    {
        "glob",
        "query",
        "query_table",
        "current_setting",
        "getenv",
        "which_secret",
        "sql_auto_complete",
        "postgres_scan",
        "sqlite_scan",
        "mysql_scan",
        "json_execute_serialized_sql",
        "checkpoint",
        "force_checkpoint",
        "enable_logging",
        "disable_logging",
    }
)
_FORBIDDEN_NODES: tuple[type, ...] = (
    exp.DDL,
    exp.DML,
    exp.Command,
    exp.Copy,
    exp.Pragma,
    exp.Set,
    exp.Attach,
    exp.Detach,
    exp.Describe,
    exp.Show,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Install,
)
MAX_SQL_CHARS = 20_000


class RunSqlInput(BaseModel):
    """Arguments of ``run_sql``."""

    sql: str = Field(
        description=f"One SELECT over the contract's tables and views "
        f"(at most {MAX_SQL_CHARS:,} characters)."
    )
    max_rows: int = Field(100, ge=1, le=5_000)
    timeout_s: float = Field(10.0, gt=0, le=120)

    # The limit is checked here rather than declared as maxLength: grammar-constrained
    # servers (llama-cpp-python) unroll maxLength into a 20,000-deep grammar and crash.
    @field_validator("sql")
    @classmethod
    def _not_too_long(cls, sql: str) -> str:
        if len(sql) > MAX_SQL_CHARS:
            raise ValueError(
                f"the statement has {len(sql):,} characters; at most {MAX_SQL_CHARS:,}"
            )
        return sql


class RunSqlResult(BaseModel):
    """Rows of the query (at most ``max_rows``)."""

    evidence_id: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


def check_sql(sql: str) -> str:
    """Check a statement against the AST allow-list; return it normalised.

    Raises:
        ToolError: saying why the statement is not allowed.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise ToolError(f"rejected: not valid SQL ({str(exc).splitlines()[0]})") from None
    if len(statements) != 1:
        raise ToolError(f"rejected: exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise ToolError(f"rejected: only SELECT queries are allowed, got {tree.key.upper()}")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise ToolError(f"rejected: {node.key.upper()} is not allowed in a query")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise ToolError(
                    "rejected: table functions are not allowed (read_csv, glob, range...)"
                )
            if node.catalog or (node.db and node.db.lower() != "main"):
                raise ToolError(f"rejected: only the main database is allowed, not {node.sql()}")
            name = node.name.lower()
            if name not in ALLOWED_TABLES and name not in ctes:
                raise ToolError(
                    f"rejected: unknown table {node.name!r}; "
                    f"allowed: {', '.join(sorted(ALLOWED_TABLES))}"
                )
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in DENIED_FUNCTIONS or name.startswith(DENIED_FUNCTION_PREFIXES):
                raise ToolError(f"rejected: function {name}() is not allowed")
    return tree.sql(dialect="duckdb")


def execute_guarded(
    backend: Backend | str | Path,
    sql: str,
    *,
    max_rows: int,
    timeout_s: float,
    guard: bool = True,
) -> tuple[list[str], list[list[Any]], bool]:
    """Run one statement under every guard; return (columns, rows, truncated).

    Args:
        backend: the run's backend (or a DuckDB file).
        sql: the statement.
        max_rows: rows fetched at most.
        timeout_s: the query is interrupted after this many seconds.
        guard: apply the AST allow-list (tests switch it off to prove the other layers).

    Raises:
        ToolError: rejected, failed, or stopped by the timeout.
    """
    if guard:
        check_sql(sql)
    if isinstance(backend, str | Path):
        backend = DuckDBBackend(backend)
    try:
        return backend.run_guarded(sql, max_rows=max_rows, timeout_s=timeout_s)
    except GuardedQueryError as exc:
        raise ToolError(str(exc)) from None


def _plain(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def run_sql(ctx: ToolContext, args: RunSqlInput) -> RunSqlResult:
    """Run one guarded, read-only SELECT.

    Raises:
        ToolError: the statement was rejected, failed, or ran past the timeout.
    """
    # The elapsed time stays out of the result: the model sees results, and a recorded
    # conversation must replay byte for byte (the run trace keeps each tool's latency).
    columns, rows, truncated = execute_guarded(
        ctx.backend,
        args.sql,
        max_rows=min(args.max_rows, ctx.max_rows),
        timeout_s=args.timeout_s,
    )
    rows = [[_plain(v) for v in r] for r in rows]
    numbers: dict[str, float] = {"rows": len(rows)}
    texts: dict[
        str, str
    ] = {}  # names in the rows ("Dallas #1"): the verifier reads no number in them
    for i, row in enumerate(rows[:50], start=1):
        for c, v in zip(columns, row, strict=True):
            if isinstance(v, int | float) and not isinstance(v, bool):
                numbers[f"r{i}.{c}"] = v
            elif isinstance(v, str):
                texts[f"r{i}.{c}"] = v
    evidence = ctx.evidence.register(
        "run_sql",
        {"sql": args.sql},
        numbers,
        f"SQL returned {len(rows)} row(s){' (truncated)' if truncated else ''}",
        texts,
    )
    return RunSqlResult(evidence_id=evidence.id, columns=columns, rows=rows, truncated=truncated)
