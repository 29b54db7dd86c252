"""Validate candidate rows against the data contract inside DuckDB, reporting every problem.

A source (a CSV or Parquet file, a pandas frame, any DuckDB relation) is *staged*: each
contract column is cast to its declared type with ``TRY_CAST`` next to its raw value, so one
pass finds every value that does not fit, and each problem is reported with a count and up
to three row examples. Nothing here writes to a contract table; :mod:`tools.data.store`
decides whether staged rows are inserted.

Timestamps are typed by :func:`tools.data.zones.timestamp_sql`, whose docstring states the
rules: an offset or a zone name in a value wins over any assumed zone; zone-less values need
one (``assume_tz``); date-only values are local midnights; local times a zone skips are shifted
forward by the gap, and times it repeats take the earlier instant (Python's ``fold=0``). Empty
``stores.timezone`` values are stored as ``UTC``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
from pydantic import BaseModel

from tools.data.schema import DEFAULT_TIMEZONE, Column, TableSchema
from tools.data.zones import check_zone, timestamp_sql

MAX_EXAMPLES = 3

# Contract columns whose empty (or omitted) values are stored as a default, so downstream SQL
# never sees NULL there. (The Column model has no default field yet.)
EMPTY_MEANS: dict[tuple[str, str], str] = {("stores", "timezone"): DEFAULT_TIMEZONE}


class Problem(BaseModel):
    """One kind of defect found in one column (or row rule) of one source."""

    table: str
    source: str
    column: str | None
    problem: str
    count: int
    examples: list[str]

    def render(self) -> str:
        """Return one readable line (plus examples) for error output."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        head = f"- [{self.source}] {where}: {self.problem}"
        if self.count:
            head += f" ({self.count} row{'s' if self.count != 1 else ''})"
        if self.examples:
            head += "\n    e.g. " + "; ".join(self.examples)
        return head


class DataValidationError(ValueError):
    """Raised when candidate data breaks the contract. Nothing has been written."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        lines = [
            f"data failed validation with {n} problem{'s' if n != 1 else ''}; nothing was stored:"
        ]
        lines += [p.render() for p in self.problems]
        unread = {p.problem.removeprefix("values that are not a valid ") for p in self.problems}
        lines += [hint for dtype, hint in _HINTS.items() if dtype in unread]
        super().__init__("\n".join(lines))


_HINTS = {
    "timestamp": (
        "Timestamps are read in ISO 8601 (2026-03-02 08:00, with an offset or "
        "--assume-timezone); a mapping file's timestamp_format reads other layouts, e.g. "
        "'%d/%m/%Y %H:%M' (lastmile ingest csv --mapping FILE; README, 'Load your own data')."
    ),
    "date": (
        "Dates are read as 2026-03-02; a mapping file's formats read other layouts "
        "(lastmile ingest csv --mapping FILE; README, 'Load your own data')."
    ),
}
"""How to fix values of that type that could not be read, said once after the problems."""


def _rename_hint(missing: list[str], schema: TableSchema, found: dict[str, str]) -> str:
    """Say which found columns look like the missing ones, and how to map them."""
    spare = [name for low, name in found.items() if low not in schema.column_names]
    guesses = []
    for want in missing:
        close = difflib.get_close_matches(want, spare, n=1, cutoff=0.5)
        if close:
            guesses.append(f"{close[0]} as {want}")
    lead = f"; perhaps {', '.join(guesses)}" if guesses else ""
    return (
        f"{lead}; rename the columns, or map them with a mapping file "
        "(lastmile ingest csv --mapping FILE; README, 'Load your own data')"
    )


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class _Check:
    column: str | None
    problem: str
    condition: str  # SQL over the staging table; TRUE marks a bad row
    show: list[str] = field(default_factory=list)  # columns shown in examples


def _source_types(con: duckdb.DuckDBPyConnection, source_sql: str) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM ({source_sql})").fetchall()
    return {str(r[0]): str(r[1]).upper() for r in rows}


@dataclass
class _Typed:
    expr: str  # typed SQL expression
    flags: list[tuple[str, str]] = field(default_factory=list)  # (flag SQL, problem)


_NAIVE_PROBLEM = (
    "timestamps without a time zone (give an offset such as +00:00 or Z, "
    "or name the zone they are in with --assume-timezone)"
)
_ABBREVIATION_PROBLEM = (
    "timestamps ending in a word such as a zone abbreviation (CET), which is ambiguous (IST "
    "is India, Ireland or Israel): write an offset such as +01:00 or an IANA name such as "
    "Europe/Paris"
)
_UNKNOWN_ZONE_PROBLEM = (
    "timestamps naming an unknown time zone (use an IANA name such as Europe/Paris)"
)


def _typed_expr(
    schema: TableSchema, col: Column, raw: str, src_type: str, assume_tz: str | None
) -> _Typed:
    """Return the typed SQL expression of a column and flags marking rows it cannot type."""
    if col.dtype == "string":
        default = EMPTY_MEANS.get((schema.name, col.name))
        if default is not None:
            return _Typed(
                f"coalesce(nullif(trim(CAST({raw} AS VARCHAR)), ''), {sql_literal(default)})"
            )
        return _Typed(f"CAST({raw} AS VARCHAR)")
    if col.dtype == "float":
        return _Typed(f"TRY_CAST({raw} AS DOUBLE)")
    if col.dtype == "bool":
        return _Typed(f"TRY_CAST({raw} AS BOOLEAN)")
    if col.dtype == "date":
        return _Typed(f"TRY_CAST({raw} AS DATE)")
    if col.dtype == "int":
        if src_type in {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER"}:
            return _Typed(f"CAST({raw} AS BIGINT)")
        # TRY_CAST('1.5' AS BIGINT) rounds silently: only accept whole numbers.
        as_double = f"TRY_CAST({raw} AS DOUBLE)"
        return _Typed(
            f"CASE WHEN {as_double} = round({as_double}) AND abs({as_double}) < 9e15 "
            f"THEN CAST({as_double} AS BIGINT) END"
        )
    ts = timestamp_sql(raw, src_type, assume_tz)
    flags = [(ts.naive, _NAIVE_PROBLEM)] if ts.naive else []
    if ts.unknown_zone:
        flags.append((ts.unknown_zone, _UNKNOWN_ZONE_PROBLEM))
    if ts.abbreviation:
        flags.append((ts.abbreviation, _ABBREVIATION_PROBLEM))
    return _Typed(ts.value, flags)


class StagedSource(BaseModel):
    """Result of staging one source: its temp table, row count and problems."""

    table: str
    source: str
    stage_table: str
    rows: int
    problems: list[Problem]


def stage(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    source_sql: str,
    *,
    source_name: str,
    stage_table: str,
    assume_tz: str | None = None,
) -> StagedSource:
    """Cast a source to the contract types in a temp table and check every column and rule.

    Args:
        con: an open DuckDB connection (session time zone UTC).
        schema: the contract table the rows are meant for.
        source_sql: a SQL relation (``read_csv(...)``, a registered frame, a subquery).
        source_name: how problems name the source (a file name, "generator").
        stage_table: name of the temp table to create (replaced if it exists).
        assume_tz: time zone to read zone-less timestamps in; ``None`` rejects them.

    Returns:
        The staged source. Its ``problems`` list is empty when every row fits the contract.

    Raises:
        ValueError: ``assume_tz`` is not a zone DuckDB knows.
    """
    if assume_tz is not None:
        check_zone(assume_tz, "the assumed time zone")
    src_types = _source_types(con, source_sql)
    lowered = {name.lower(): name for name in src_types}
    problems: list[Problem] = []
    select: list[str] = ["row_number() OVER () AS _row"]
    checks: list[_Check] = []

    missing = [c.name for c in schema.columns if c.name.lower() not in lowered and not c.nullable]
    if missing:
        problems.append(
            Problem(
                table=schema.name,
                source=source_name,
                column=None,
                problem="missing required column(s): "
                + ", ".join(missing)
                + f" (found: {', '.join(src_types) or 'none'})"
                + _rename_hint(missing, schema, lowered),
                count=0,
                examples=[],
            )
        )

    for col in schema.columns:
        name = quote_ident(col.name)
        src_name = lowered.get(col.name.lower())
        if src_name is None:
            default = EMPTY_MEANS.get((schema.name, col.name))
            value = sql_literal(default) if default is not None else "NULL"
            select.append(f"CAST({value} AS {col.sql_type}) AS {name}")
            continue
        raw = f"src.{quote_ident(src_name)}"
        typed = _typed_expr(schema, col, raw, src_types[src_name], assume_tz)
        raw_col = quote_ident(f"raw__{col.name}")
        select.append(f"{typed.expr} AS {name}")
        select.append(f"{raw} AS {raw_col}")
        # A row flagged for a specific reason (no zone, unknown zone) is not also "invalid".
        invalid = f"{raw_col} IS NOT NULL AND {name} IS NULL"
        for i, (flag_sql, problem) in enumerate(typed.flags):
            flag = quote_ident(f"flag{i}__{col.name}")
            select.append(f"coalesce({flag_sql}, false) AS {flag}")
            checks.append(_Check(col.name, problem, flag, [raw_col]))
            invalid += f" AND NOT {flag}"
        checks.append(
            _Check(
                col.name,
                f"values that are not a valid {col.dtype}",
                invalid,
                [raw_col],
            )
        )
        if not col.nullable:
            keys = [
                quote_ident(k) for k in schema.primary_key if k != col.name and k.lower() in lowered
            ]
            checks.append(
                _Check(col.name, "empty values in a required column", f"{raw_col} IS NULL", keys)
            )
        if col.dtype == "float":
            checks.append(
                _Check(
                    col.name, "NaN or infinite values", f"isnan({name}) OR isinf({name})", [raw_col]
                )
            )
        if col.allowed is not None:
            allowed = ", ".join(sql_literal(v) for v in col.allowed)
            checks.append(
                _Check(
                    col.name,
                    f"values outside the allowed set {{{', '.join(col.allowed)}}}",
                    f"{name} NOT IN ({allowed})",
                    [raw_col],
                )
            )
        # NaN and infinities are reported above; keep them out of the range checks.
        finite = f"isfinite(CAST({name} AS DOUBLE))"
        if col.min is not None:
            checks.append(
                _Check(
                    col.name,
                    f"values below the minimum {col.min:g}",
                    f"{finite} AND {name} < {col.min}",
                    [raw_col],
                )
            )
        if col.max is not None:
            checks.append(
                _Check(
                    col.name,
                    f"values above the maximum {col.max:g}",
                    f"{finite} AND {name} > {col.max}",
                    [raw_col],
                )
            )

    con.execute(f"DROP TABLE IF EXISTS {stage_table}")
    con.execute(
        f"CREATE TEMP TABLE {stage_table} AS SELECT {', '.join(select)} FROM ({source_sql}) AS src"
    )
    rows = int(con.execute(f"SELECT count(*) FROM {stage_table}").fetchone()[0])  # type: ignore[index]

    present = {c.name for c in schema.columns if c.name.lower() in lowered}
    for rule in schema.rules:
        used = [c for c in schema.column_names if re.search(rf"\b{c}\b", rule.predicate)]
        if not set(used) <= present:
            continue
        # A row whose value could not be read is reported as such, not again by the rules
        # that read that value ("delivered but delivered_ts is empty").
        unread = " OR ".join(
            f"({quote_ident(f'raw__{c}')} IS NOT NULL AND {quote_ident(c)} IS NULL)" for c in used
        )
        checks.append(
            _Check(
                None,
                rule.message,
                f"NOT ({rule.predicate}) AND NOT ({unread})"
                if unread
                else f"NOT ({rule.predicate})",
                [quote_ident(c) for c in used],
            )
        )

    problems += _run_checks(con, schema, source_name, stage_table, checks)
    problems += _duplicate_keys(con, schema, source_name, stage_table, present)
    return StagedSource(
        table=schema.name, source=source_name, stage_table=stage_table, rows=rows, problems=problems
    )


def _run_checks(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    source_name: str,
    stage_table: str,
    checks: list[_Check],
) -> list[Problem]:
    if not checks:
        return []
    counts_sql = ", ".join(f"count(*) FILTER (WHERE {c.condition})" for c in checks)
    counts = con.execute(f"SELECT {counts_sql} FROM {stage_table}").fetchone()
    assert counts is not None
    problems: list[Problem] = []
    for check, n in zip(checks, counts, strict=True):
        if not n:
            continue
        shown = check.show
        cols = ", ".join(["_row", *shown]) if shown else "_row"
        rows = con.execute(
            f"SELECT {cols} FROM {stage_table} WHERE {check.condition} "
            f"ORDER BY _row LIMIT {MAX_EXAMPLES}"
        ).fetchall()
        examples = []
        for r in rows:
            if not shown:
                examples.append(f"row {r[0]}")
            elif len(shown) == 1 and shown[0].startswith('"raw__'):
                examples.append(f"row {r[0]}: {r[1]!r}")
            else:
                names = [s.strip('"').removeprefix("raw__") for s in shown]
                pairs = ", ".join(f"{k}={_fmt(v)}" for k, v in zip(names, r[1:], strict=True))
                examples.append(f"row {r[0]} ({pairs})")
        problems.append(
            Problem(
                table=schema.name,
                source=source_name,
                column=check.column,
                problem=check.problem,
                count=int(n),
                examples=examples,
            )
        )
    return problems


def _fmt(value: object) -> str:
    return "NULL" if value is None else str(value)


def _duplicate_keys(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    source_name: str,
    stage_table: str,
    present: set[str],
) -> list[Problem]:
    key = [k for k in schema.primary_key]
    if not set(key) <= present:
        return []
    key_sql = ", ".join(quote_ident(k) for k in key)
    dup_sql = (
        f"SELECT {key_sql}, count(*) AS n, list(_row ORDER BY _row)[1:3] AS rows "
        f"FROM {stage_table} GROUP BY ALL HAVING count(*) > 1"
    )
    total = con.execute(f"SELECT count(*), coalesce(sum(n), 0) FROM ({dup_sql})").fetchone()
    assert total is not None
    if not total[0]:
        return []
    examples = [
        ", ".join(_fmt(v) for v in r[: len(key)])
        + " at rows "
        + ", ".join(map(str, r[len(key) + 1]))
        for r in con.execute(f"{dup_sql} ORDER BY n DESC LIMIT {MAX_EXAMPLES}").fetchall()
    ]
    return [
        Problem(
            table=schema.name,
            source=source_name,
            column=", ".join(key),
            problem=f"duplicate key ({int(total[0])} key value(s) repeated)",
            count=int(total[1]),
            examples=examples,
        )
    ]
