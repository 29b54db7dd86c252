"""Where tools read data from: a backend runs SQL over the contract and knows its data version.

DuckDB is the embedded default. Tools only send SQL the contract's views understand, so a
Spark backend can serve the same tools (see the scale work).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd

from tools.data.store import connect


class Backend(Protocol):
    """A read-only query engine over the data contract."""

    name: str

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one SELECT and return its rows."""
        ...

    def data_version(self) -> str:
        """Return an id that changes whenever the data changes (it keys model caches)."""
        ...


class DuckDBBackend:
    """The contract in a DuckDB file, opened read-only for each query.

    A connection is not kept open between queries, so loads (which need the write lock) are
    never blocked by an idle reader.
    """

    name = "duckdb"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(
                f"database {self.path} does not exist: generate or ingest data first"
            )

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one SELECT on a fresh read-only connection."""
        con = connect(self.path, read_only=True)
        try:
            return con.execute(sql, list(params)).df()
        finally:
            con.close()

    def data_version(self) -> str:
        """Hash of the database path and its load log (every load appends to it)."""
        frame = self.query(
            "SELECT max(load_id) AS id, max(loaded_at) AS at, count(*) AS n FROM load_log"
        )
        raw = f"{self.path.resolve()}|{frame.to_json()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]
