"""Load the contract's own tables from CSV or Parquet files.

Each file is matched to a table by an explicit ``table=path`` or by its name
(``deliveries.csv``, ``deliveries_2026-03.parquet``, ``stores.csv.gz``). All files of one call
form one atomic load: every problem in every file is reported together, and nothing is
written unless all of them are clean.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from tools.data.schema import CONTRACT_TABLES, LOAD_ORDER
from tools.data.store import AtomicLoad, LoadMode, LoadReport
from tools.data.validate import DataValidationError, Problem, sql_literal

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


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


def source_sql(path: Path) -> str:
    """DuckDB relation reading ``path`` (CSV as text, to be typed by validation; or Parquet)."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return f"read_parquet({sql_literal(str(path))})"
    delim = "\t" if name.endswith(".tsv") else ","
    return (
        f"read_csv({sql_literal(str(path))}, header = true, all_varchar = true, "
        f"delim = {sql_literal(delim)})"
    )


def _read_error(path: Path, exc: Exception) -> str:
    """Say in one line why a file could not be read, without DuckDB's list of fixes."""
    if isinstance(exc, ValueError):
        return str(exc)
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    detail = lines[1] if len(lines) > 1 and "sniffing" in lines[0] else lines[0]
    kind = (
        "Parquet"
        if path.name.lower().endswith(PARQUET_SUFFIXES)
        else ("CSV (UTF-8 text, comma-separated, a header row, balanced quotes)")
    )
    return f"file cannot be read as {kind}: {detail}"


def ingest_files(
    db: str | Path,
    specs: list[str],
    *,
    mode: LoadMode = "replace",
    assume_tz: str | None = None,
    memory_limit: str | None = None,
) -> LoadReport:
    """Validate and load contract tables from files in one atomic load.

    Args:
        db: DuckDB file (created if missing).
        specs: ``table=path``, files named after tables, or folders of such files.
        mode: ``replace`` empties each loaded table first; ``append`` adds rows and rejects
            keys that are already stored.
        assume_tz: zone of timestamps written without one (default: such values are errors).
        memory_limit: optional DuckDB memory cap.

    Returns:
        What was written.

    Raises:
        ValueError: an argument names no file or table.
        DataValidationError: listing every problem in every file; nothing was written.
    """
    pairs = resolve_inputs(specs)
    with AtomicLoad(
        db,
        source="files: " + ", ".join(str(p) for _, p in pairs),
        mode=mode,
        assume_tz=assume_tz,
        memory_limit=memory_limit,
    ) as load:
        unreadable: list[Problem] = []
        for table, path in pairs:
            rel = source_sql(path)
            try:
                if path.stat().st_size == 0:
                    raise ValueError("file is empty")
                load.con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
                load.add_sql(table, f"SELECT * FROM {rel}", path.name)
            except (duckdb.Error, ValueError) as exc:
                unreadable.append(
                    Problem(
                        table=table,
                        source=path.name,
                        column=None,
                        problem=_read_error(path, exc),
                        count=0,
                        examples=[],
                    )
                )
        if unreadable:
            raise DataValidationError(unreadable + load.problems)
        if "deliveries" in load.rows and mode == "replace":
            # Ground truth belongs to the world whose deliveries are being replaced.
            load.replace_tables(["incidents"])
        return load.commit()
