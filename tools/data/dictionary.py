"""The data dictionary a model reads before it writes SQL: tables, columns, units, "late".

Generated from the contract (:mod:`tools.data.schema`) and the views' column dictionary
(:data:`tools.data.views.STORE_DAY_COLUMNS`), so it cannot drift from the database. The
``delivery_outcomes`` view's columns are read from DuckDB itself, over empty contract tables.
"""

from __future__ import annotations

from functools import lru_cache

import duckdb

from tools.data.schema import CONTRACT_TABLES
from tools.data.views import STORE_DAY_COLUMNS, VIEWS, LateRule

_OUTCOME_COLUMNS = {
    "tz": "the store's time zone",
    "service_date": "the day the delivery was due (date of promised_end, store-local)",
    "cutoff": "when the data was extracted: later events are not known",
    "dispatched_at": "dispatched_ts as known at the cutoff",
    "delivered_at": "delivered_ts as known at the cutoff",
    "status_asof": "status as known at the cutoff",
    "is_late": "late by the definition on the last line",
    "is_resolved": "delivered, failed or overdue: counts in the late rate's denominator",
    "delay_min": "minutes past promised_end (delivered deliveries; on time = 0)",
    "dispatch_delay_min": "minutes from promised_start to dispatch",
    "handover_h": "hours from order to dispatch",
    "transit_h": "hours from dispatch to delivery",
    "lead_h": "hours from order to promised_end",
}


def late_definition(rule: LateRule | None = None) -> str:
    """One sentence defining a late delivery under ``rule`` (default: the settings' default)."""
    rule = rule or LateRule()
    grace = f" by more than {rule.grace_min:g} minutes" if rule.grace_min else ""
    failed = "failed, or " if rule.failed_is_late else ""
    return (
        f"A delivery is late when it was {failed}delivered after promised_end{grace}, or is "
        "still undelivered past promised_end; late_rate = late / resolved deliveries "
        "(a fraction: 0.12 is 12 %)."
    )


@lru_cache(maxsize=1)
def _outcome_columns() -> list[str]:
    con = duckdb.connect(":memory:")
    try:
        for table in CONTRACT_TABLES.values():
            con.execute(table.ddl())
        con.execute(f"CREATE VIEW delivery_outcomes AS {VIEWS['delivery_outcomes']}")
        return [str(r[0]) for r in con.execute("DESCRIBE delivery_outcomes").fetchall()]
    finally:
        con.close()


def _column(name: str, meaning: str | None, allowed: tuple[str, ...] | None = None) -> str:
    extra = [m for m in (meaning, "|".join(allowed) if allowed else None) if m]
    return f"{name} [{'; '.join(extra)}]" if extra else name


def data_dictionary(rule: LateRule | None = None, *, compact: bool = False) -> str:
    """Return the tables and views ``run_sql`` may read, one line each.

    Returns:
        Plain text: each table or view with its description and its columns (a meaning or
        the allowed values in square brackets); times are UTC timestamps, durations carry their
        unit in the name (``_min``, ``_h``), rates are fractions. ``compact`` lists the
        column names only (for a model with a small context).
    """
    if compact:
        tables = [f"- {t.name}: {', '.join(t.column_names)}" for t in CONTRACT_TABLES.values()]
        tables.append(
            f"- store_day (view, one row per store and service date): "
            f"{', '.join(STORE_DAY_COLUMNS)}"
        )
        tables.append(
            "- delivery_outcomes (view): deliveries plus service_date, is_late, "
            "is_resolved, delay_min"
        )
        return "\n".join(["Tables and views (timestamps UTC):", *tables, late_definition(rule)])
    lines = ["Tables and views (timestamps UTC, ids strings, rates fractions):"]
    for table in CONTRACT_TABLES.values():
        cols = ", ".join(
            _column(c.name, c.description.rstrip(".") or None, c.allowed) for c in table.columns
        )
        lines.append(f"- {table.name}: {table.description} Columns: {cols}.")
    cols = ", ".join(_column(n, m) for n, m in STORE_DAY_COLUMNS.items())
    lines.append(f"- store_day (view): one row per store and service date. Columns: {cols}.")
    own = set(CONTRACT_TABLES["deliveries"].column_names)
    meanings = {**STORE_DAY_COLUMNS, **_OUTCOME_COLUMNS}
    extra = [c for c in _outcome_columns() if c not in own]
    cols = ", ".join(_column(n, meanings.get(n)) for n in extra)
    lines.append(f"- delivery_outcomes (view): the deliveries' columns and {cols}.")
    lines.append(late_definition(rule))
    return "\n".join(lines)
