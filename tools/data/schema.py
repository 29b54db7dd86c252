"""Declare the last-mile data contract: tables, columns, keys and the one definition of "late".

Every load path (synthetic generator, Olist adapter, CSV/Parquet ingest) validates against
these declarations before anything is written, and the DuckDB DDL is generated from them, so
the contract lives in exactly one place.

Conventions:
    * All timestamps are UTC, stored as naive ``TIMESTAMP`` columns. Inputs must carry a time
      zone (or the loader must be told which one applies); they are converted to UTC on load.
    * Dates (``date`` columns) are UTC calendar days.
    * A delivery's *service date* is the UTC date of its ``promised_end``: store-day KPIs count
      a delivery on the day it was due.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

DType = Literal["string", "int", "float", "bool", "date", "timestamp"]

CARRIERS: tuple[str, ...] = ("own_fleet", "dsp", "crowd")
"""Who carried a delivery: the store's own fleet, a delivery service partner, or crowd drivers."""

STATUSES: tuple[str, ...] = ("delivered", "failed", "cancelled", "in_transit")
"""Delivery outcomes. ``in_transit`` (not in DESIGN.md's first draft) is needed for real feeds:
an order handed to a carrier and not yet delivered or failed. It is neither late nor on time
until it resolves, so it is left out of rate denominators."""

CALENDAR_KINDS: tuple[str, ...] = ("promo", "holiday", "event", "closure")

IncidentKind = Literal[
    "driver_shortage",
    "severe_weather",
    "carrier_outage",
    "volume_surge",
    "dispatch_delay",
    "traffic_disruption",
]
INCIDENT_KINDS: tuple[str, ...] = get_args(IncidentKind)

_DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


class Column(BaseModel):
    """One column of a contract table."""

    name: str
    dtype: DType
    nullable: bool = False
    allowed: tuple[str, ...] | None = Field(
        default=None, description="Closed vocabulary for string columns."
    )
    min: float | None = Field(default=None, description="Inclusive lower bound for numbers.")
    max: float | None = Field(default=None, description="Inclusive upper bound for numbers.")
    description: str = ""

    @property
    def sql_type(self) -> str:
        """DuckDB type of the column."""
        return _DUCKDB_TYPES[self.dtype]


class RowRule(BaseModel):
    """A cross-column rule every row must satisfy, written as a SQL predicate.

    The predicate is evaluated by DuckDB over the candidate rows; rows where it is FALSE
    violate the rule (NULL means "not applicable" and passes).
    """

    name: str
    predicate: str
    message: str


class TableSchema(BaseModel):
    """A contract table: columns, primary key, foreign keys and row rules."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: dict[str, str] = Field(
        default_factory=dict, description="column -> 'table.column' it must reference."
    )
    rules: tuple[RowRule, ...] = ()
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        """Column names in declaration order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """Return the column called ``name``.

        Raises:
            KeyError: if the table has no such column.
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    def ddl(self, table_name: str | None = None) -> str:
        """Return the ``CREATE TABLE`` statement for this table in DuckDB."""
        cols = ",\n  ".join(
            f"{c.name} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" for c in self.columns
        )
        return f"CREATE TABLE {table_name or self.name} (\n  {cols}\n)"


def _c(name: str, dtype: DType, **kw: object) -> Column:
    return Column(name=name, dtype=dtype, **kw)  # type: ignore[arg-type]


DEFAULT_TIMEZONE = "UTC"
"""A store's zone when none is given (stored as such: ``stores.timezone`` is never NULL)."""

STORES = TableSchema(
    name="stores",
    description="Dispatch points (stores, depots, sellers): one row each.",
    columns=(
        _c("store_id", "string", description="Stable id, e.g. S001."),
        _c("name", "string", description="Display name. Untrusted free text."),
        _c("region", "string", description="Operating region, e.g. R1."),
        _c("market", "string", description="Market or metro area."),
        _c("lat", "float", nullable=True, min=-90, max=90),
        _c("lon", "float", nullable=True, min=-180, max=180),
        # Last, so databases that gained the column with ALTER TABLE keep the same order.
        _c(
            "timezone",
            "string",
            nullable=True,
            description=(
                "IANA zone of the store, e.g. Europe/Paris: its local date of a promise is the "
                "delivery's service date. Empty or omitted means UTC (stored as 'UTC')."
            ),
        ),
    ),
    primary_key=("store_id",),
    rules=(
        RowRule(
            name="known_timezone",
            predicate="timezone IN (SELECT #1 FROM pg_timezone_names())",
            message="unknown time zone names (write an IANA name such as Europe/Paris or "
            "America/Sao_Paulo; empty means UTC)",
        ),
    ),
)

DELIVERIES = TableSchema(
    name="deliveries",
    description="One row per delivery (a shipment of one order from one store).",
    columns=(
        _c("delivery_id", "string"),
        _c("order_id", "string"),
        _c("store_id", "string"),
        _c("zone_id", "string", nullable=True),
        _c("driver_id", "string", nullable=True),
        _c("carrier", "string", allowed=CARRIERS),
        _c("order_ts", "timestamp"),
        _c("promised_start", "timestamp"),
        _c("promised_end", "timestamp"),
        _c("dispatched_ts", "timestamp", nullable=True),
        _c("delivered_ts", "timestamp", nullable=True),
        _c("status", "string", allowed=STATUSES),
        _c("failure_reason", "string", nullable=True),
        _c("distance_km", "float", nullable=True, min=0, max=1000),
        _c("items", "int", min=1, max=10_000),
        _c("driver_note", "string", nullable=True, description="Untrusted free text."),
    ),
    primary_key=("delivery_id",),
    foreign_keys={"store_id": "stores.store_id"},
    rules=(
        RowRule(
            name="window_order",
            predicate="promised_end >= promised_start",
            message="negative promise window: promised_end is before promised_start",
        ),
        RowRule(
            name="delivered_after_order",
            predicate="delivered_ts >= order_ts",
            message="delivered before it was ordered: delivered_ts is before order_ts",
        ),
        RowRule(
            name="dispatched_after_order",
            predicate="dispatched_ts >= order_ts",
            message="dispatched before it was ordered: dispatched_ts is before order_ts",
        ),
        RowRule(
            name="delivered_has_timestamp",
            predicate="status <> 'delivered' OR delivered_ts IS NOT NULL",
            message="status is 'delivered' but delivered_ts is empty",
        ),
        RowRule(
            name="undelivered_has_no_timestamp",
            predicate="status = 'delivered' OR delivered_ts IS NULL",
            message="delivered_ts is set but status is not 'delivered'",
        ),
    ),
)

STAFFING = TableSchema(
    name="staffing",
    description="Driver roster per store and day: planned versus present.",
    columns=(
        _c("date", "date"),
        _c("store_id", "string"),
        _c("scheduled_drivers", "int", min=0, max=100_000),
        _c("present_drivers", "int", min=0, max=100_000),
    ),
    primary_key=("date", "store_id"),
    foreign_keys={"store_id": "stores.store_id"},
)

CONDITIONS = TableSchema(
    name="conditions",
    description="Weather and traffic per region and day.",
    columns=(
        _c("date", "date"),
        _c("region", "string"),
        _c("precip_mm", "float", min=0, max=2000),
        _c("temp_c", "float", min=-90, max=70),
        _c("severe_weather", "bool"),
        _c("traffic_index", "float", min=0, max=20, description="1.0 = a typical day."),
    ),
    primary_key=("date", "region"),
)

CALENDAR = TableSchema(
    name="calendar",
    description="Promotions, holidays and events; store_id NULL means chain-wide.",
    columns=(
        _c("date", "date"),
        _c("store_id", "string", nullable=True),
        _c("kind", "string", allowed=CALENDAR_KINDS),
        _c("name", "string", nullable=True),
    ),
    primary_key=("date", "store_id", "kind"),
    foreign_keys={"store_id": "stores.store_id"},
)

INCIDENTS = TableSchema(
    name="incidents",
    description=(
        "Ground truth of a synthetic world: injected incidents and labelled natural events."
    ),
    columns=(
        _c("incident_id", "string", description="I001.. injected, N001.. natural."),
        _c("kind", "string", allowed=INCIDENT_KINDS),
        _c("store_id", "string", nullable=True),
        _c("region", "string", nullable=True),
        _c("start_date", "date"),
        _c("end_date", "date"),
        _c("kpi", "string", description="KPI the incident moves (store_day column)."),
        _c("true_cause", "string", description="Root cause, a fixed vocabulary."),
        _c("cause_variable", "string", description="store_day column carrying the cause."),
        _c("magnitude", "float", min=0),
        _c("true_effect", "float", description="Mean rise of the KPI over affected store-days."),
        _c("late_excess", "float", description="Expected extra late deliveries in total."),
        _c("affected_store_days", "int", min=0),
        _c("injected", "bool"),
        _c("description", "string"),
    ),
    primary_key=("incident_id",),
)

CONTRACT_TABLES: dict[str, TableSchema] = {
    t.name: t for t in (STORES, DELIVERIES, STAFFING, CONDITIONS, CALENDAR)
}
"""The tables a user may load (DESIGN.md, "The data contract")."""

LOAD_ORDER: tuple[str, ...] = ("stores", "deliveries", "staffing", "conditions", "calendar")
"""Parents before children, so foreign keys can be checked against what is already loaded."""

# --- The one definition of a late delivery -------------------------------------------------
# Late = delivered after promised_end, or failed. Cancelled deliveries and those still in
# transit are neither late nor on time. Every KPI (DuckDB view, Spark, pandas helpers) uses
# these expressions, never its own.
LATE_SQL = "(status = 'failed' OR (status = 'delivered' AND delivered_ts > promised_end))"
RESOLVED_SQL = "(status IN ('delivered', 'failed'))"
SERVICE_DATE_SQL = "CAST(promised_end AS DATE)"


def is_late(status: object, delivered_ts: object, promised_end: object) -> object:
    """Vectorised twin of :data:`LATE_SQL` for pandas Series or numpy arrays.

    Args:
        status: delivery statuses, shape (n,).
        delivered_ts: delivery timestamps (NaT when not delivered), shape (n,).
        promised_end: end of the promised window, shape (n,).

    Returns:
        Boolean array or Series of shape (n,): True where the delivery is late.
    """
    delivered_late = (status == "delivered") & (delivered_ts > promised_end)  # type: ignore[operator]
    return (status == "failed") | delivered_late  # type: ignore[operator]
