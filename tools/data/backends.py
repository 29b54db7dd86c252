"""Which backend a run reads: DuckDB over a database file, or Spark over a Parquet lake.

:class:`DataSource` is the one value the service, the graph's context and the monitor pass
around; :meth:`DataSource.open` builds the backend. A Spark backend registers its lake's
views once per process and definition of late (:func:`_spark_backend` keeps them), so a
run's many tool calls do not re-read the lake's footers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.data.backend import Backend, DuckDBBackend
from tools.data.spark import LAKE_MARKER, SparkBackend, SparkConfig, lake_problem
from tools.data.views import DEFAULT_LATE_RULE, LateRule

BackendKind = Literal["duckdb", "spark"]


class DataSource(BaseModel):
    """Where the contract's data is and which engine reads it.

    Attributes:
        kind: ``duckdb`` (the embedded default) or ``spark``.
        location: the DuckDB file, or the lake (a folder or an object-store URL).
        spark: how a Spark session is started (``kind == "spark"`` only).
    """

    model_config = ConfigDict(frozen=True)

    kind: BackendKind = "duckdb"
    location: str
    spark: SparkConfig = Field(default_factory=SparkConfig)

    @property
    def is_local(self) -> bool:
        """The data is on this machine's file system (not an object-store URL)."""
        return "://" not in self.location

    def exists(self) -> bool:
        """Whether there is readable data at the location (a URL always: Spark will say)."""
        if self.kind == "spark":
            return lake_problem(self.location) is None
        return not self.is_local or Path(self.location).exists()

    def missing(self) -> str:
        """Say what is wrong and what to do when :meth:`exists` is False."""
        if self.kind == "spark":
            return lake_problem(self.location) or f"data lake {self.location} cannot be read"
        return f"database {self.location} does not exist: generate or ingest data first"

    def open(self, late: LateRule = DEFAULT_LATE_RULE) -> Backend:
        """Return the backend over this data for a definition of late.

        Raises:
            FileNotFoundError: no data at the location.
            SparkUnavailableError: Spark cannot start here (pyspark or Java missing: how to
                install them).
        """
        if self.kind == "spark":
            return _spark_backend(self.location, self.spark, late, self._stamp())
        return DuckDBBackend(self.location, late=late)

    def _stamp(self) -> int:
        """When the lake was last written (a new export opens new views of its files)."""
        marker = Path(self.location, LAKE_MARKER)
        return marker.stat().st_mtime_ns if self.is_local and marker.exists() else 0


@lru_cache(maxsize=8)
def _spark_backend(location: str, config: SparkConfig, late: LateRule, stamp: int) -> SparkBackend:
    del stamp  # part of the cache key only
    return SparkBackend(location, config=config, late=late)
