"""Data faults injected into a stored world: what a broken pipeline does to good data.

The generator's incidents change the *world* (a storm, a shortage); these change the *data*
from a start date on, as a feed or an upstream job would: a units change, a carrier that
appears, a demand regime, a column stuck at one value or emptied, a feed that stops, a
column dropped. The data-health check (:mod:`tools.analytics.health`) must flag each; tests
and ``lastmile monitor`` trials use them. Each fault is one transaction and appends to the
load log, so caches keyed by the data version are refreshed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tools.data.connection import connect

FaultKind = Literal[
    "units", "new_carrier", "demand", "constant", "all_null", "feed_stop", "drop_column"
]


class DataFault(BaseModel):
    """One fault: its kind, its first service date and its parameters."""

    kind: FaultKind
    start: date = Field(description="First day affected (UTC date of promised_end).")
    table: str = "deliveries"
    column: str | None = Field(None, description="Column changed (units, constant, all_null).")
    factor: float = Field(1.0, gt=0, description="units: multiplier; demand: volume ratio.")
    value: float | None = Field(None, description="constant: the value every row gets.")
    carrier: str = Field("dsp", description="new_carrier: the carrier that appears.")
    share: float = Field(0.3, gt=0, le=1, description="new_carrier: share of deliveries moved.")
    seed: int = 0


def _from(fault: DataFault) -> str:
    if fault.table == "deliveries":
        return f"CAST(promised_end AS DATE) >= DATE '{fault.start.isoformat()}'"
    return f"date >= DATE '{fault.start.isoformat()}'"


def _sample(fault: DataFault, share: float) -> str:
    # hash of the id: the same rows whatever the engine's scan order (deterministic per seed)
    return f"(hash(delivery_id || '{fault.seed}') % 1000000) < {int(share * 1_000_000)}"


def fault_sql(fault: DataFault) -> list[str]:
    """Return the statements that inject ``fault`` (DuckDB)."""
    where = _from(fault)
    col, t = fault.column, fault.table
    if fault.kind == "units":
        return [f"UPDATE {t} SET {col} = {col} * {fault.factor} WHERE {where}"]
    if fault.kind == "constant":
        return [f"UPDATE {t} SET {col} = {fault.value} WHERE {where}"]
    if fault.kind == "all_null":
        return [f"UPDATE {t} SET {col} = NULL WHERE {where}"]
    if fault.kind == "feed_stop":
        return [f"DELETE FROM {t} WHERE {where}"]
    if fault.kind == "drop_column":
        return [f"ALTER TABLE {t} DROP COLUMN {col}"]
    if fault.kind == "new_carrier":
        return [
            f"UPDATE deliveries SET carrier = '{fault.carrier}' "
            f"WHERE {where} AND {_sample(fault, fault.share)}"
        ]
    if fault.factor >= 1:  # demand: copy a share of the day's deliveries (new ids)
        extra = fault.factor - 1
        copies = []
        k = 0
        while extra > 1e-9:
            share = min(extra, 1.0)
            copies.append(
                f"INSERT INTO deliveries SELECT * REPLACE (delivery_id || '-d{k}' AS delivery_id,"
                f" order_id || '-d{k}' AS order_id) FROM deliveries "
                f"WHERE {where} AND {_sample(fault.model_copy(update={'seed': k}), share)} "
                f"AND delivery_id NOT LIKE '%-d_'"
            )
            extra -= share
            k += 1
        return copies
    keep = fault.factor
    return [f"DELETE FROM deliveries WHERE {where} AND NOT {_sample(fault, keep)}"]


def inject(db: str | Path, faults: list[DataFault]) -> None:
    """Apply ``faults`` to the DuckDB world ``db`` in one transaction, and log the load."""
    con = connect(db)
    try:
        con.execute("BEGIN TRANSACTION")
        for fault in faults:
            for sql in fault_sql(fault):
                con.execute(sql)
        row = con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM load_log").fetchone()
        con.execute(
            "INSERT INTO load_log VALUES (?, ?, ?, ?, ?)",
            [
                row[0] if row else 1,
                datetime.now(UTC).replace(tzinfo=None),
                "faults",
                "update",
                ",".join(f.kind for f in faults),
            ],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
