"""Expected impact of a catalog action: late deliveries avoided, its interval, and the cost.

Each lever moves a variable of the fitted causal graph and the change propagates along the
fitted mechanisms to the late rate (an interventional query on the linear SCM: the lever's
change times the variable's total effect). Intervals (80 %) come from the coefficients'
sampling uncertainty and the noise of the measured excess they are capped by. Two levers
need no model: moving DSP orders to the own fleet changes only the carrier mix (the store's
DSP gap times the share moved), and widening windows or extending promises turns the late
deliveries that arrived within the extension on time (observed delays).

Nothing here promises more than the problem: the avoided deliveries are capped by the cell's
late deliveries above its normal (no action takes a cell below normal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from tools.analytics.thresholds import ACTION_DRAWS, ACTION_INTERVAL, LEVER_DEFAULTS
from tools.catalog import ActionSpec
from tools.causal.scm import FittedScm
from tools.data.backend import Backend
from tools.data.views import outcomes_sql

LateWithin = Callable[[float], tuple[int, int]]
"""Minutes -> (late deliveries at most that late, all late deliveries) of the affected cells."""


def interval(values: np.ndarray) -> tuple[float, float]:
    """Return the central :data:`ACTION_INTERVAL` interval of ``values``, one decimal."""
    lo, hi = np.quantile(values, [(1 - ACTION_INTERVAL) / 2, 1 - (1 - ACTION_INTERVAL) / 2])
    return round(float(lo), 1), round(float(hi), 1)


def _excess(rows: pd.DataFrame, expected: pd.DataFrame, column: str) -> np.ndarray:
    moved = rows[column].to_numpy(dtype=float) - expected[column].to_numpy(dtype=float)
    out: np.ndarray = np.maximum(np.nan_to_num(moved), 0.0)
    return out


def _via_model(
    fitted: FittedScm, node: str, change: np.ndarray, resolved: np.ndarray, sign: float = -1.0
) -> tuple[float, list[float]]:
    """Late deliveries avoided when ``node`` moves by ``change`` (per row), point and draws."""
    draws = fitted.draw_coefficients(ACTION_DRAWS, 0)

    def avoided(coefs: dict[str, dict[str, float]] | None) -> float:
        effect = fitted.total_effect(node, coefficients=coefs)
        return float(sign * (effect * change * resolved).sum())

    return avoided(None), [avoided(c) for c in draws]


def estimate_impact(
    action: ActionSpec,
    value: float,
    rows: pd.DataFrame,
    expected: pd.DataFrame,
    fitted: FittedScm,
    late_within: LateWithin,
    *,
    cap: float,
    cap_sd: float = 0.0,
    random_state: int = 0,
) -> tuple[float, tuple[float, float], float, float]:
    """Estimate late deliveries avoided, their interval, and the cost of one action.

    Args:
        action: catalog entry.
        value: the lever parameter (drivers per store, a share, minutes or hours).
        rows: affected cells (cell KPIs and counts).
        expected: their normal values of the graph variables.
        fitted: the fitted causal model.
        late_within: minutes -> (late deliveries at most that late, all late ones).
        cap: the most the action may avoid: the cell's late deliveries above normal.
        cap_sd: standard deviation of that excess as measured: the cell's day-to-day noise
            in late deliveries (its late-rate spread times its deliveries). The excess the
            action can remove is the true one, which may be smaller than the one measured,
            so each draw is capped by a draw of the excess (and by the measured excess:
            nothing past it is credited); without it an action that removes the whole
            excess would promise it to the delivery, with an interval of zero width.
        random_state: seed of the draws.

    Returns:
        (avoided, (low, high), cost, beyond normal): avoided and its interval within
        ``[0, cap]``; what the lever's model says it would avoid past the cap (a late rate
        below the cell's normal: improvement beyond fixing the problem, never counted as
        avoided).
    """
    resolved = rows.resolved.to_numpy(dtype=float)
    orders = rows.orders.to_numpy(dtype=float)
    kind = action.lever.kind
    touched = float(orders.sum())  # orders the action handles (for per-order costs)
    rng = np.random.default_rng(random_state)
    if kind == "add_drivers":
        present = rows.present_drivers.to_numpy(dtype=float)
        d_opd = orders / (present + value) - orders / present
        point, samples = _via_model(fitted, "orders_per_driver", d_opd, resolved, sign=-1.0)
    elif kind == "defer_orders":
        by_roster = "orders_per_scheduled_driver" in fitted.graph.nodes
        node = "orders_per_scheduled_driver" if by_roster else "volume"
        # orders per scheduled driver fall by the deferred share; volume (a log-ratio node)
        # by log(1 - share)
        if by_roster:
            change = -value * rows[node].to_numpy(dtype=float)
        else:
            change = np.full(len(rows), np.log1p(-value))
        rate = rows.late_rate.to_numpy(dtype=float)

        def deferred(coefs: dict[str, dict[str, float]] | None) -> float:
            effect = fitted.total_effect(node, coefficients=coefs)
            new_rate = rate + effect * change
            return float((rate * resolved - new_rate * resolved * (1 - value)).sum())

        point = deferred(None)
        samples = [deferred(c) for c in fitted.draw_coefficients(ACTION_DRAWS, random_state)]
        touched = float((orders * value).sum())
    elif kind == "cut_dispatch":
        late_by = _excess(rows, expected, "dispatch_delay_min")
        cut = np.where(late_by > 0, value, 0.0)  # the recovery applies where dispatch is late
        point, samples = _via_model(fitted, "dispatch_delay_min", -cut, resolved)
    elif kind in ("cut_transit", "cut_handover", "reduce_traffic"):
        node = {"cut_transit": "transit_h", "cut_handover": "handover_h"}.get(kind, "traffic_index")
        point, samples = _via_model(fitted, node, -value * _excess(rows, expected, node), resolved)
    elif kind == "shift_carrier":
        # Moving DSP orders to the own fleet changes only the carrier mix: the store's own DSP
        # gap times the share moved (an accounting identity, no model needed).
        gap = np.nan_to_num(rows.dsp_gap.to_numpy(dtype=float))
        share = np.nan_to_num(rows.dsp_share.to_numpy(dtype=float))
        point = float((value * share * gap * resolved).sum())
        counts = value * share * resolved
        late_dsp = np.clip(rows.dsp_late_rate.fillna(0).to_numpy(dtype=float), 0, 1)
        se = float(np.sqrt((counts * late_dsp).sum()))
        samples = list(rng.normal(point, se, ACTION_DRAWS))
        touched = float((value * share * orders).sum())
    elif kind in ("widen_windows", "extend_promises"):
        minutes = value if kind == "widen_windows" else 60.0 * value
        within, _ = late_within(minutes)
        point = float(within)
        samples = list(rng.normal(point, math.sqrt(max(point, 1.0)), ACTION_DRAWS))
    else:  # pragma: no cover - the catalog schema admits no other kind
        raise ValueError(f"unknown lever kind {kind}")
    # fixed costs are per cell; unit costs per unit of the parameter at each cell (e.g. per
    # driver) or per order handled
    units = touched if action.cost.per == "order" else value * len(rows)
    cost = action.cost.fixed * len(rows) + action.cost.per_unit * units
    cap = max(0.0, min(cap, float(rows.late.sum())))
    beyond = max(0.0, point - cap)
    point = min(max(point, 0.0), cap)
    # the true excess may be below the measured one (never credited above it: the plan
    # counts avoided deliveries up to the measured problem)
    caps = np.clip(cap + rng.normal(0.0, cap_sd, len(samples)), 0.0, cap) if cap_sd else cap
    lo, hi = interval(np.clip(np.array(samples), 0.0, caps))
    # the point is the measured excess at most; the interval holds it
    ci = (min(lo, round(point, 1)), max(hi, round(point, 1)))
    return round(point, 1), ci, round(cost, 2), round(beyond, 1)


def default_parameter(
    action: ActionSpec, rows: pd.DataFrame, expected: pd.DataFrame
) -> float | None:
    """Return the lever setting the situation calls for (None: the action does not apply)."""
    kind = action.lever.kind
    if kind == "add_drivers":
        normal_present = rows.scheduled_drivers * (1 - expected.no_show_rate)
        shortfall = (normal_present - rows.present_drivers).clip(lower=0)
        # a volume surge needs drivers for the unplanned orders as well
        surge = (rows.orders - rows.present_drivers * expected.orders_per_driver).clip(lower=0)
        needed = np.maximum(shortfall, surge / expected.orders_per_driver.clip(lower=1))
        k = float(np.ceil(needed.max()))
        return k if k >= 1 else None
    if kind == "defer_orders":
        node = (
            "orders_per_scheduled_driver"
            if rows.get("orders_per_scheduled_driver", pd.Series(dtype=float)).notna().any()
            else "volume"
        )
        share = 1 - expected[node] / rows[node]
        q = float(share.clip(lower=0).max())
        return round(q, 2) if q >= action.lever.min else None
    if kind == "cut_dispatch":
        late_by = float(_excess(rows, expected, "dispatch_delay_min").max())
        minutes = round(LEVER_DEFAULTS[kind] * late_by)
        return float(minutes) if minutes >= action.lever.min else None
    if kind == "shift_carrier":
        return LEVER_DEFAULTS[kind] if rows.dsp_gap.fillna(0).max() > 0.05 else None
    if kind in ("reduce_traffic", "cut_transit", "cut_handover"):
        node = {"cut_transit": "transit_h", "cut_handover": "handover_h"}.get(kind, "traffic_index")
        moved = _excess(rows, expected, node).max() > 0
        return LEVER_DEFAULTS[kind] if moved else None
    if kind == "extend_promises":
        # Promises of a day or more only (same-day windows are widened, not moved by days):
        # the typical slowdown, rounded up to whole half-days, within the lever's range.
        lead = expected["lead_h"] if "lead_h" in expected else pd.Series(dtype=float)
        if lead.dropna().empty or float(lead.min()) < 24.0:
            return None
        slow = float(_excess(rows, expected, "transit_h").max()) if "transit_h" in rows else 0.0
        hours = 12.0 * math.ceil(max(slow, 24.0) / 12.0)
        return float(min(max(hours, action.lever.min), action.lever.max))
    return LEVER_DEFAULTS[kind]


def late_within_counter(backend: Backend, stores: list[str], first: date, day: date) -> LateWithin:
    """Count, for the stores' deliveries due ``first``..``day``, late ones at most N minutes late.

    As of the end of ``day``: a delivery still overdue then counts as more than N late.

    Returns:
        A function of N giving (deliveries delivered 0 < delay <= N minutes late, all late).
    """
    sql = f"""
        SELECT count(*) FILTER (WHERE is_late AND status_asof = 'delivered'
                                AND delay_min > 0 AND delay_min <= ?) AS within,
               count(*) FILTER (WHERE is_late) AS late
        FROM ({
        outcomes_sql(
            backend.late,
            as_of=day,
            first_day=first,
            stores=stores,
            has_timezone=backend.has_timezone,
        )
    }) AS o
        WHERE service_date >= ?
    """

    def count(minutes: float) -> tuple[int, int]:
        got = backend.query(sql, [minutes, first])
        return int(got.within.iloc[0]), int(got.late.iloc[0])

    return count
