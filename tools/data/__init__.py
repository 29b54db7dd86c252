"""The data layer: the contract's schemas, DuckDB storage, validation, synthetic worlds, ingest."""

from tools.data.schema import CONTRACT_TABLES, LATE_SQL, TableSchema
from tools.data.store import AtomicLoad, LoadReport, connect, ensure_schema, table_counts
from tools.data.validate import DataValidationError, Problem

__all__ = [
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
