"""The data layer: the contract's schemas, DuckDB storage, validation, synthetic worlds, ingest."""

from tools.data.schema import ALL_TABLES, CONTRACT_TABLES, LATE_SQL, TableSchema
from tools.data.store import AtomicLoad, LoadReport, connect, ensure_schema, table_counts
from tools.data.validate import DataValidationError, Problem

__all__ = [
    "ALL_TABLES",
    "CONTRACT_TABLES",
    "LATE_SQL",
    "AtomicLoad",
    "DataValidationError",
    "LoadReport",
    "Problem",
    "TableSchema",
    "connect",
    "ensure_schema",
    "table_counts",
]
