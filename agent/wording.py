"""How plans write numbers, units, places and periods.

Every number a template writes is formatted here from a number the evidence carries, at a
precision the verifier checks (:mod:`agent.verify`): a plan never states a number the tools
did not produce.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tools.analytics.scope import CHAIN_TARGET
from tools.causal.graph import load_graph
from tools.vocabulary import kpis

HOURS_AS_DAYS = 48.0
"""Durations of two days or more are written in days (Olist's carrier transit: 9.9 days)."""


def cause_label(cause: str) -> str:
    """How plans name a root cause (from the reviewed graph)."""
    return load_graph().cause_label(cause)


def variable_label(variable: str) -> str:
    """Return a graph variable's label without its unit (the value beside it has one).

    The vocabulary takes it from the graph (:func:`tools.vocabulary.kpis`), unit dropped.
    """
    spec = kpis().get(variable)
    return spec.label if spec else variable.replace("_", " ")


def pct(x: float) -> str:
    """0.2394 -> '23.9%'."""
    return f"{100 * x:.1f}%"


def pts(x: float) -> str:
    """0.1496 -> '+15.0 pts'."""
    return f"{100 * x:+.1f} pts"


def in_days(variable: str, value: float | None) -> bool:
    """Whether a duration variable is written in days (else hours or minutes)."""
    spec = kpis().get(variable)
    hours = spec.unit == "h" if spec else variable.endswith("_h")
    return hours and value is not None and abs(value) >= HOURS_AS_DAYS


def value_text(variable: str, x: float | None, *, days: bool | None = None) -> str:
    """Format a graph variable's value in its unit.

    Args:
        variable: the graph variable (a cell KPI).
        x: its value (hours for ``*_h`` variables).
        days: write hours as days (default: when the value is two days or more).
    """
    if x is None:
        return "n/a"
    return _no_negative_zero(_value_text(variable, x, days))


def _no_negative_zero(text: str) -> str:
    """'-0.0 pts' reads as a fall that did not happen: zero has no sign."""
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text


def _value_text(variable: str, x: float, days: bool | None) -> str:
    spec = kpis().get(variable)
    if spec is None:
        return f"{x:.1f}"
    if spec.unit == "h" and (days if days is not None else in_days(variable, x)):
        return f"{x / 24:.1f} days"
    return unit_text(spec.unit, x)


def unit_text(unit: str, x: float) -> str:
    """Format a value in a KPI unit (:data:`tools.vocabulary.Unit`).

    >>> unit_text("share", 0.2394), unit_text("pts", 0.05), unit_text("orders", 1234.4)
    ('23.9%', '5.0 pts', '1,234 orders')
    """
    if unit == "share":
        return pct(x)
    if unit == "pts":
        return f"{100 * x:.1f} pts"
    if unit in ("min", "mm", "km", "h"):
        return f"{x:,.1f} {unit}"
    if unit == "orders":
        return f"{x:,.0f} orders"
    return f"{x:,.2f}" if unit == "index" else f"{x:,.1f}"


def avoided_text(point: float, lo: float, hi: float) -> tuple[str, str, str]:
    """Format late deliveries avoided and its interval with one shared precision.

    Whole deliveries read best, but a narrow interval (a well-estimated effect on one
    store-day) would print as "6 to 6", so it keeps one decimal then.

    >>> avoided_text(42.3, 40.8, 43.9)
    ('42', '41', '44')
    >>> avoided_text(5.9, 5.7, 6.1)
    ('5.9', '5.7', '6.1')
    """
    digits = 0 if hi - lo >= 2 or point >= 100 else 1
    return f"{point:,.{digits}f}", f"{lo:,.{digits}f}", f"{hi:,.{digits}f}"


def deliveries(x: float) -> str:
    """Format a count of deliveries: whole from 100 up ('1,029'), else one decimal ('33.1')."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def place(level: str, target: str) -> str:
    """How a plan names a store, a region or the whole chain."""
    if level == "chain":
        return "all stores"
    return target


def target_name(target: str) -> str:
    """How a plan names a target id: ``all`` is every store, anything else is itself."""
    return "all stores" if target == CHAIN_TARGET else target


def period(window_start: str | date | None, day: str | date) -> str:
    """'on 2026-03-09', or 'from 2017-05-10 to 2017-05-16' for a window of days."""
    if window_start is None or str(window_start) == str(day):
        return f"on {day}"
    return f"from {window_start} to {day}"


def diagnosis_place(d: dict[str, Any]) -> str:
    """Where and when a diagnosis looked: 'all stores from A to B', 'S010 on D'."""
    return f"{place(d['level'], d['target'])} {period(d.get('window_start'), d['day'])}"
