"""Reading a synthetic world's ground truth in tests (it lives in a file of its own)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tools.data import connect
from tools.data.truth_file import truth_path


def connect_with_truth(db: Path) -> duckdb.DuckDBPyConnection:
    """Open ``db`` read-only with its truth file attached and ``incidents`` as a temp view."""
    con = connect(db, read_only=True)
    con.execute(f"ATTACH '{truth_path(db)}' AS truth (READ_ONLY)")
    con.execute("CREATE TEMP VIEW incidents AS SELECT * FROM truth.incidents")
    return con
