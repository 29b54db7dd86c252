"""Load the user's own files through a mapping (:mod:`tools.data.mapping`), atomically.

Each mapped file becomes one SQL relation in the contract's shape: columns renamed, constants
added, vocabularies translated, timestamps parsed with the mapping's strptime patterns and
turned into UTC in the mapping's zone (by the rules of :mod:`tools.data.zones`). The relation
then goes through :class:`~tools.data.store.AtomicLoad` like any contract file, so validation,
its messages and atomicity are the same. A value that a pattern or vocabulary cannot read is
passed on with a note (``'13/45/2026' (does not match %m/%d/%Y)``), so validation reports it
with its row.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tools.data.dialect import CsvOptions, Source, numbers_sql, open_source, unreadable
from tools.data.mapping import Mapping, MappingError, MappingIssue, load_mapping
from tools.data.schema import CONTRACT_TABLES, LOAD_ORDER, Column
from tools.data.store import AtomicLoad, LoadMode, LoadReport
from tools.data.timeformats import is_date_only, is_zoned
from tools.data.validate import DataValidationError, Problem, quote_ident, sql_literal
from tools.data.zones import (
    DATE_ONLY,
    END_OF_DAY_SQL,
    OFFSET_SUFFIX,
    ZONE_NAME_SUFFIX,
    check_zone,
    local_to_utc,
)

_FULL = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class _Plan:
    table: str
    path: Path
    sql: str
    options: CsvOptions


def _files(mapping: Mapping, table: str) -> tuple[list[Path], list[MappingIssue]]:
    """Return the table's files (relative to the mapping file, globs expanded) and misses."""
    base = mapping.path.parent
    found: list[Path] = []
    issues: list[MappingIssue] = []
    for i, name in enumerate(mapping.table(table).files):
        if any(ch in name for ch in "*?["):
            matches = sorted(p for p in base.glob(name) if p.is_file())
        else:
            matches = [base / name] if (base / name).is_file() else []
        if not matches:
            issues.append(
                mapping.issue(
                    ("tables", table, "files", i),
                    f"no file matches {name!r} (paths are relative to {base})",
                )
            )
        found += matches
    return found, issues


def _close_column(wanted: str, columns: list[str]) -> str:
    lowered = {c.lower(): c for c in columns}
    close = difflib.get_close_matches(wanted.lower(), list(lowered), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(lowered[c]) for c in close)}?" if close else ""


def _vocabulary_sql(mapping: Mapping, table: str, col: Column, x: str) -> str:
    text = f"trim(CAST({x} AS VARCHAR))"
    vocab = mapping.table(table).values[col.name]
    whens = " ".join(
        f"WHEN {text} = {sql_literal(k.strip())} THEN {sql_literal(v)}" for k, v in vocab.items()
    )
    same = ", ".join(sql_literal(v) for v in col.allowed or ())
    line = mapping.line(("tables", table, "values", col.name))
    note = f" (not under values.{col.name} in {mapping.path.name}, line {line})"
    return (
        f"CASE WHEN {text} IS NULL THEN NULL {whens} WHEN {text} IN ({same}) THEN {text} "
        f"ELSE {text} || {sql_literal(note)} END"
    )


def _has_zone(text: str) -> str:
    return (
        f"(regexp_matches({text}, {sql_literal(OFFSET_SUFFIX)}) OR "
        f"regexp_matches({text}, {sql_literal(ZONE_NAME_SUFFIX)}))"
    )


def _utc_text(local: str, zone: str | None) -> str:
    """Text of a local TIMESTAMP: in UTC with +00:00 under a zone, else as it is (zone-less)."""
    if zone is None:
        return f"strftime({local}, '{_FULL}')"
    return f"strftime({local_to_utc(local, zone)}, '{_FULL}') || '+00:00'"


def _formatted_sql(text: str, patterns: list[str], zone: str | None, end_of_day: bool) -> str:
    """Parse text with strptime patterns: zoned ones, then with a time, then date-only."""

    def parse(group: list[str]) -> str:
        return f"try_strptime({text}, [{', '.join(sql_literal(p) for p in group)}])"

    zoned = [p for p in patterns if is_zoned(p)]
    timed = [p for p in patterns if not is_zoned(p) and not is_date_only(p)]
    dated = [p for p in patterns if is_date_only(p)]
    cases: list[str] = []
    if zoned:
        aware = parse(zoned)
        cases.append(
            f"WHEN {aware} IS NOT NULL THEN "
            f"strftime(timezone('UTC', {aware}), '{_FULL}') || '+00:00'"
        )
    if timed:
        cases.append(f"WHEN {parse(timed)} IS NOT NULL THEN {_utc_text(parse(timed), zone)}")
    if dated:
        day = parse(dated) + (f" + {END_OF_DAY_SQL}" if end_of_day else "")
        cases.append(f"WHEN {parse(dated)} IS NOT NULL THEN {_utc_text(day, zone)}")
    # A value written with its own offset or zone name (ISO) is read as such.
    return (
        f"CASE WHEN {text} IS NULL THEN NULL {' '.join(cases)} "
        f"WHEN {_has_zone(text)} THEN {text} ELSE {text} || {_mismatch_note(text, patterns)} END"
    )


_DAY_OR_MONTH = re.compile(r"%-?[dm]")


def _swap_day_month(pattern: str) -> str | None:
    """Return the pattern with %d and %m exchanged, or None if it lacks either."""
    found = {m.replace("-", "") for m in _DAY_OR_MONTH.findall(pattern)}
    if found != {"%d", "%m"}:
        return None
    return _DAY_OR_MONTH.sub(
        lambda m: m.group()[:-1] + ("m" if m.group()[-1] == "d" else "d"), pattern
    )


def _mismatch_note(text: str, patterns: list[str]) -> str:
    """Return SQL for the note that an unreadable value carries into validation's report.

    When the patterns read it with day and month swapped (a US file read as European, or the
    reverse), the note says so: the commonest mistake with such files.
    """
    note = f" (does not match {' or '.join(patterns)})"
    swapped = [q for q in map(_swap_day_month, patterns) if q is not None]
    if not swapped:
        return sql_literal(note)
    hint = (
        f" (does not match {' or '.join(patterns)}; it reads as {' or '.join(swapped)}: "
        "are day and month the other way round?)"
    )
    reads = f"try_strptime({text}, [{', '.join(sql_literal(p) for p in swapped)}])"
    return f"(CASE WHEN {reads} IS NOT NULL THEN {sql_literal(hint)} ELSE {sql_literal(note)} END)"


def _timestamp_sql(mapping: Mapping, table: str, col: Column, x: str, src_type: str) -> str:
    """Map one timestamp column: patterns, the date-only promise rule and the table's zone."""
    tm = mapping.table(table)
    zone = mapping.zone(table)
    end_of_day = col.name == "promised_end" and mapping.promise_date(table) == "end_of_day"
    if src_type.startswith("TIMESTAMP WITH TIME ZONE") or src_type == "TIMESTAMPTZ":
        return x  # an instant already
    if src_type.startswith("TIMESTAMP") or src_type == "DATE":
        local = f"CAST({x} AS TIMESTAMP)"
        if end_of_day and src_type == "DATE":
            local = f"({local} + {END_OF_DAY_SQL})"
        if zone is None:
            return local
        return f"timezone('UTC', {local_to_utc(local, zone)})"  # TIMESTAMPTZ: an instant
    text = f"trim(CAST({x} AS VARCHAR))"
    patterns = tm.formats.get(col.name) or tm.timestamp_format
    if patterns:
        return _formatted_sql(text, patterns, zone, end_of_day)
    if zone is None and not end_of_day:
        return text  # validation reads it, with --assume-timezone if given
    # ISO text: values with their own offset or zone stay as they are.
    date_only = f"regexp_matches({text}, {sql_literal(DATE_ONLY)})"
    local = f"TRY_CAST({text} AS TIMESTAMP)"
    if end_of_day:
        local = f"CASE WHEN {date_only} THEN {local} + {END_OF_DAY_SQL} ELSE {local} END"
    return (
        f"CASE WHEN {_has_zone(text)} OR TRY_CAST({text} AS TIMESTAMP) IS NULL THEN {text} "
        f"ELSE {_utc_text(local, zone)} END"
    )


def _date_sql(mapping: Mapping, table: str, col: Column, x: str, src_type: str) -> str:
    patterns = mapping.table(table).formats.get(col.name)
    if not patterns or src_type != "VARCHAR":
        return x
    text = f"trim(CAST({x} AS VARCHAR))"
    parsed = f"try_strptime({text}, [{', '.join(sql_literal(p) for p in patterns)}])"
    return (
        f"CASE WHEN {text} IS NULL THEN NULL WHEN {parsed} IS NOT NULL "
        f"THEN strftime({parsed}, '%Y-%m-%d') ELSE {text} || {_mismatch_note(text, patterns)} END"
    )


def _value_sql(mapping: Mapping, table: str, col: Column, name: str, src_type: str) -> str:
    x = f"src.{quote_ident(name)}"
    if col.name in mapping.table(table).values:
        return _vocabulary_sql(mapping, table, col, x)
    if col.dtype == "timestamp":
        return _timestamp_sql(mapping, table, col, x, src_type)
    if col.dtype == "date":
        return _date_sql(mapping, table, col, x, src_type)
    return x


def mapped_sql(
    con: duckdb.DuckDBPyConnection,
    mapping: Mapping,
    table: str,
    source: Source,
    options: CsvOptions,
) -> tuple[str, list[MappingIssue]]:
    """Build the relation that reads one file in the contract table's shape.

    Args:
        con: DuckDB connection (for decimal-mark detection).
        mapping: the checked mapping.
        table: contract table.
        source: the opened file.
        options: its CSV options.

    Returns:
        The SQL relation, and the mapping's problems with this file (source columns that do
        not exist, required columns left unmapped); the relation is usable only without them.
    """
    tm = mapping.table(table)
    by_lower = {name.lower(): name for name in source.columns}
    found = ", ".join(source.columns)
    select: list[str] = []
    numeric: list[str] = []
    issues: list[MappingIssue] = []
    for col in CONTRACT_TABLES[table].columns:
        if col.name in tm.constants:
            select.append(f"{sql_literal(tm.constants[col.name])} AS {quote_ident(col.name)}")
            continue
        wanted = tm.columns.get(col.name, col.name).strip()
        name = by_lower.get(wanted.lower())
        if name is None and col.name in tm.columns:
            hint = _close_column(wanted, list(source.columns))
            issues.append(
                mapping.issue(
                    ("tables", table, "columns", col.name),
                    f"column {wanted!r} is not in {source.path.name}{hint} (its columns: {found})",
                )
            )
        elif name is None and not col.nullable:
            issues.append(
                mapping.issue(
                    ("tables", table, "columns"),
                    f"{table}.{col.name} is required: map it under columns (a column of "
                    f"{source.path.name}) or constants (one value for every row); "
                    f"{source.path.name} has: {found}",
                )
            )
        if name is None:
            continue
        if col.dtype in ("int", "float"):
            numeric.append(name)
        value = _value_sql(mapping, table, col, name, source.columns[name])
        select.append(f"{value} AS {quote_ident(col.name)}")
    relation = numbers_sql(con, source, numeric, options.decimal)
    return f"SELECT {', '.join(select)} FROM {relation} AS src", issues


def _plan(
    con: duckdb.DuckDBPyConnection, mapping: Mapping, csv: CsvOptions, workdir: Path
) -> tuple[list[_Plan], list[MappingIssue]]:
    """Open every mapped file and build its relation; gather what does not fit."""
    plans: list[_Plan] = []
    issues: list[MappingIssue] = []
    for table in (t for t in LOAD_ORDER if t in mapping.spec.tables):
        paths, missing = _files(mapping, table)
        issues += missing
        options = mapping.csv(table, csv)
        for path in paths:
            try:
                source = open_source(con, path, options, workdir)
            except ValueError as exc:
                issues.append(mapping.issue(("tables", table, "files"), f"{path.name}: {exc}"))
                continue
            sql, problems = mapped_sql(con, mapping, table, source, options)
            issues += problems
            plans.append(_Plan(table, path, sql, options))
    return plans, issues


def ingest_mapping(
    db: str | Path,
    mapping_path: str | Path,
    *,
    mode: LoadMode = "replace",
    assume_tz: str | None = None,
    memory_limit: str | None = None,
    csv: CsvOptions | None = None,
) -> LoadReport:
    """Load the files a mapping names into ``db`` in one atomic load.

    Args:
        db: DuckDB file (created if missing).
        mapping_path: the mapping YAML file; the files it names are relative to it.
        mode: ``replace`` empties each mapped table first; ``append`` adds rows and rejects
            keys that are already stored.
        assume_tz: zone of zone-less times in tables whose mapping names none.
        memory_limit: optional DuckDB memory cap.
        csv: CSV options for what the mapping leaves open (its own settings win).

    Returns:
        What was written.

    Raises:
        ValueError: the mapping file is missing, or ``assume_tz`` is not a known zone.
        MappingError: the mapping is wrong or does not fit its files (each problem with its
            line); nothing was written.
        DataValidationError: the mapped rows break the contract; nothing was written.
    """
    mapping = load_mapping(mapping_path)
    if assume_tz is not None:
        check_zone(assume_tz, "--assume-timezone")
    with (
        tempfile.TemporaryDirectory(prefix="lastmile-ingest-") as workdir,
        AtomicLoad(
            db,
            source=f"mapping {mapping.path}",
            mode=mode,
            assume_tz=assume_tz,
            memory_limit=memory_limit,
        ) as load,
    ):
        plans, issues = _plan(load.con, mapping, csv or CsvOptions(), Path(workdir))
        if issues:
            raise MappingError(mapping.path, issues)
        failed: list[Problem] = []
        for plan in plans:
            try:
                load.add_sql(plan.table, plan.sql, plan.path.name)
            except (duckdb.Error, ValueError) as exc:  # a file DuckDB fails on past its sample
                failed.append(unreadable(plan.table, plan.path, exc, plan.options))
        if failed:
            raise DataValidationError(failed + load.problems)
        return load.commit()
