"""Load the contract's own tables from CSV or Parquet files.

Each file is matched to a table by an explicit ``table=path`` or by its name
(``deliveries.csv``, ``deliveries_2026-03.parquet``, ``stores.csv.gz``). All files of one call
form one atomic load: every problem in every file is reported together, and nothing is
written unless all of them are clean. CSV separators, decimal commas and encodings are handled
by :mod:`tools.data.dialect`; files in another shape are loaded with a mapping
(:mod:`tools.data.mapping`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from tools.data.dialect import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    CsvOptions,
    Source,
    numbers_sql,
    open_source,
    unreadable,
)
from tools.data.schema import CONTRACT_TABLES, LOAD_ORDER
from tools.data.store import AtomicLoad, LoadMode, LoadReport
from tools.data.validate import DataValidationError, Problem
from tools.data.zones import check_zone


def _table_for(path: Path) -> str | None:
    stem = path.name.lower()
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for table in sorted(CONTRACT_TABLES, key=len, reverse=True):
        if stem == table or stem.startswith((table + "_", table + "-", table + ".")):
            return table
    return None


def resolve_inputs(specs: list[str]) -> list[tuple[str, Path]]:
    """Turn ``table=path``, file and folder arguments into (table, file) pairs, parents first.

    Raises:
        ValueError: naming every argument that matches no table or does not exist.
    """
    pairs: list[tuple[str, Path]] = []
    errors: list[str] = []
    for spec in specs:
        table: str | None
        if "=" in spec and spec.split("=", 1)[0] in CONTRACT_TABLES:
            table, raw = spec.split("=", 1)
            path = Path(raw)
        else:
            table, path = None, Path(spec)
        if path.is_dir():
            found = [(t, p) for p in sorted(path.iterdir()) if p.is_file() and (t := _table_for(p))]
            if not found:
                errors.append(
                    f"{path}: no file named after a contract table ({', '.join(CONTRACT_TABLES)})"
                )
            pairs += found
            continue
        if not path.exists():
            errors.append(f"{path}: no such file")
            continue
        table = table or _table_for(path)
        if table is None:
            errors.append(
                f"{path}: cannot tell which table it holds; name it after one of "
                f"{', '.join(CONTRACT_TABLES)} or write TABLE=PATH"
            )
            continue
        pairs.append((table, path))
    if errors:
        raise ValueError("cannot load these inputs:\n  " + "\n  ".join(errors))
    return sorted(pairs, key=lambda tp: LOAD_ORDER.index(tp[0]))


def _numeric_columns(table: str, source: Source) -> list[str]:
    """Return the source's columns (spelled as in the file) feeding numeric contract columns."""
    numeric = {c.name for c in CONTRACT_TABLES[table].columns if c.dtype in ("int", "float")}
    return [name for name in source.columns if name.lower() in numeric]


def ingest_files(
    db: str | Path,
    specs: list[str],
    *,
    mode: LoadMode = "replace",
    assume_tz: str | None = None,
    memory_limit: str | None = None,
    csv: CsvOptions | None = None,
) -> LoadReport:
    """Validate and load contract tables from files in one atomic load.

    Args:
        db: DuckDB file (created if missing).
        specs: ``table=path``, files named after tables, or folders of such files.
        mode: ``replace`` empties each loaded table first; ``append`` adds rows and rejects
            keys that are already stored.
        assume_tz: zone of timestamps written without one (default: such values are errors).
        memory_limit: optional DuckDB memory cap.
        csv: separator, decimal mark and encoding of CSV files (default: detected, UTF-8; see
            :mod:`tools.data.dialect`).

    Returns:
        What was written.

    Raises:
        ValueError: an argument names no file or table, or an unknown time zone.
        DataValidationError: listing every problem in every file; nothing was written.
    """
    pairs = resolve_inputs(specs)
    options = csv or CsvOptions()
    if assume_tz is not None:
        check_zone(assume_tz, "--assume-timezone")
    with (
        tempfile.TemporaryDirectory(prefix="lastmile-ingest-") as workdir,
        AtomicLoad(
            db,
            source="files: " + ", ".join(str(p) for _, p in pairs),
            mode=mode,
            assume_tz=assume_tz,
            memory_limit=memory_limit,
        ) as load,
    ):
        failed: list[Problem] = []
        for table, path in pairs:
            try:
                source = open_source(load.con, path, options, Path(workdir))
                relation = numbers_sql(
                    load.con, source, _numeric_columns(table, source), options.decimal
                )
                load.add_sql(table, f"SELECT * FROM {relation}", path.name)
            except (duckdb.Error, ValueError) as exc:
                failed.append(unreadable(table, path, exc, options))
        if failed:
            raise DataValidationError(failed + load.problems)
        return load.commit()
