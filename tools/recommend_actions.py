"""Tool ``recommend_actions``: what to do about a diagnosed problem, and what it will achieve.

Candidate actions come only from the reviewed catalog (``catalog/actions.yaml``). Each
action's lever is turned into an expected number of late deliveries avoided on the affected
store-day(s) with the causal model fitted by ``diagnose``: the lever changes a variable of the
graph and the change propagates along the fitted mechanisms (an interventional query on the
linear SCM). Intervals come from the coefficients' sampling uncertainty (80 %).

Actions that treat the leading hypothesis rank first; among them, more late deliveries
avoided per dollar ranks higher.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> r = recommend_actions(ctx, RecommendActionsInput(target="S010", day=date(2026, 3, 9)))
    >>> [(a.action_id, a.parameters, a.expected_avoided, a.cost) for a in r.actions]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.baselines import kpi_residuals
from tools.analytics.panel import store_day_frame
from tools.analytics.scope import load_catalog, resolve_target
from tools.catalog import ActionSpec
from tools.catalog import load_catalog as load_action_catalog
from tools.causal.graph import load_graph
from tools.causal.scm import FittedScm
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import Backend
from tools.diagnose import causal_model, diagnose_frame

INTERVAL = 0.8
DRAWS = 400
DEFAULTS = {"cut_dispatch": 0.8, "shift_carrier": 0.8, "reduce_traffic": 0.4, "widen_windows": 60.0}


class RecommendedAction(BaseModel):
    """A catalog action with parameters, expected effect and cost."""

    rank: int
    action_id: str
    title: str
    treats: list[str]
    addresses: str = Field(description="The hypothesis (root cause) this action is proposed for.")
    parameters: dict[str, float]
    stores: list[str]
    expected_avoided: float = Field(description="Late deliveries avoided (expected).")
    avoided_ci: tuple[float, float]
    late_rate_after: float | None = Field(description="Expected late rate with the action.")
    cost: float
    avoided_per_100: float = Field(description="Late deliveries avoided per 100 of cost.")
    lead_time_hours: float
    needs_approval: bool
    rationale: str


class RecommendActionsInput(BaseModel):
    """Arguments of ``recommend_actions``."""

    target: str = Field(description="Store id or region id of the diagnosed anomaly.")
    day: date
    causes: list[str] | None = Field(
        None, description="Root causes, most likely first (default: diagnose them now)."
    )
    parameters: dict[str, float] = Field(
        default_factory=dict, description="Override an action's parameter: {action_id: value}."
    )
    max_actions: int = Field(5, ge=1, le=20)
    lookback_days: int = Field(56, ge=21, le=365)


class RecommendActionsResult(BaseModel):
    """Ranked actions for one anomaly."""

    evidence_id: str
    target: str
    day: date
    causes: list[str]
    late_deliveries: float = Field(description="Late deliveries on the affected store-days.")
    actions: list[RecommendedAction]
    skipped: dict[str, str] = Field(description="Catalog actions not proposed, and why.")
    currency: str


def _interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2])
    return round(float(lo), 1), round(float(hi), 1)


def _affected(frame: pd.DataFrame, target: str, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the affected store-days with their normal-day expectations."""
    graph = load_graph()
    frame = frame.reset_index(drop=True)
    expected, _ = kpi_residuals(
        frame, "store_id", list(graph.nodes), pd.Series(True, index=frame.index)
    )
    on_day = frame.date == pd.Timestamp(day)
    mask = on_day & ((frame.store_id == target) | (frame.region == target))
    if not mask.any():
        raise ToolError(f"no data for {target} on {day}")
    return frame[mask], expected[mask]


def estimate_impact(
    action: ActionSpec,
    value: float,
    rows: pd.DataFrame,
    expected: pd.DataFrame,
    fitted: FittedScm,
    late_within: Callable[[float], tuple[int, int]],
    *,
    random_state: int = 0,
) -> tuple[float, tuple[float, float], float, float]:
    """Estimate late deliveries avoided, its interval, the cost, and the orders handled.

    Args:
        action: catalog entry.
        value: the lever parameter (drivers per store, a share, or minutes).
        rows: affected store-days (store_day columns).
        expected: their normal-day values of the graph variables.
        fitted: the fitted causal model.
        late_within: minutes -> (late deliveries that were at most that late, all late ones).
        random_state: seed of the coefficient draws.
    """
    draws = fitted.draw_coefficients(DRAWS, random_state)
    resolved = (rows.delivered + rows.failed).to_numpy(dtype=float)
    orders = rows.orders.to_numpy(dtype=float)
    late = rows.late.to_numpy(dtype=float)
    kind = action.lever.kind
    touched = float(orders.sum())  # orders the action handles (for per-order costs)
    if kind == "add_drivers":
        present = rows.present_drivers.to_numpy(dtype=float)
        d_opd = orders / (present + value) - orders / present
        samples = [
            float(-(c["late_rate"]["orders_per_driver"] * d_opd * resolved).sum()) for c in draws
        ]
        point = float(
            -(fitted.coefficients["late_rate"]["orders_per_driver"] * d_opd * resolved).sum()
        )
    elif kind == "defer_orders":
        vol = rows.orders_per_scheduled_driver.to_numpy(dtype=float)
        rate = rows.late_rate.to_numpy(dtype=float)

        def avoided(coefs: dict[str, dict[str, float]]) -> float:
            effect = fitted.total_effect("orders_per_scheduled_driver", coefficients=coefs)
            new_rate = rate + effect * (-value * vol)
            return float((rate * resolved - new_rate * resolved * (1 - value)).sum())

        samples = [avoided(c) for c in draws]
        point = avoided(fitted.coefficients)
        touched = float((orders * value).sum())
    elif kind == "cut_dispatch":
        excess = rows.dispatch_delay_min.to_numpy(
            dtype=float
        ) - expected.dispatch_delay_min.to_numpy(dtype=float)
        cut = np.where(excess > 0, value, 0.0)  # the recovery applies where dispatch is late
        samples = [
            float((c["late_rate"]["dispatch_delay_min"] * cut * resolved).sum()) for c in draws
        ]
        point = float(
            (fitted.coefficients["late_rate"]["dispatch_delay_min"] * cut * resolved).sum()
        )
    elif kind == "shift_carrier":
        # Moving DSP orders to the own fleet changes only the carrier mix: the store's own
        # DSP gap times the share moved (an accounting identity, no model needed).
        gap = np.nan_to_num(rows.dsp_gap.to_numpy(dtype=float))
        share = np.nan_to_num(rows.dsp_share.to_numpy(dtype=float))
        point = float((value * share * gap * resolved).sum())
        counts = value * share * resolved
        se = float(
            np.sqrt(
                (counts * np.clip(rows.dsp_late_rate.fillna(0).to_numpy(dtype=float), 0, 1)).sum()
            )
        )
        samples = list(np.random.default_rng(random_state).normal(point, se, DRAWS))
        touched = float((value * share * orders).sum())
    elif kind == "reduce_traffic":
        excess = np.maximum(rows.traffic_index.to_numpy(dtype=float) - 1.0, 0.0)
        cut = value * excess
        samples = [float((c["late_rate"]["traffic_index"] * cut * resolved).sum()) for c in draws]
        point = float((fitted.coefficients["late_rate"]["traffic_index"] * cut * resolved).sum())
    elif kind == "widen_windows":
        within, _ = late_within(value)
        point = float(within)
        samples = list(
            np.random.default_rng(random_state).normal(point, math.sqrt(max(point, 1.0)), DRAWS)
        )
    else:  # pragma: no cover - the catalog schema admits no other kind
        raise ValueError(f"unknown lever kind {kind}")
    # fixed costs are per store-day; unit costs per unit of the parameter at each store
    # (e.g. per driver) or per order handled
    units = touched if action.cost.per == "order" else value * len(rows)
    cost = action.cost.fixed * len(rows) + action.cost.per_unit * units
    point = min(max(point, 0.0), float(late.sum()))
    return (
        round(point, 1),
        _interval(np.clip(np.array(samples), 0.0, float(late.sum()))),
        round(cost, 2),
        touched,
    )


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
        share = 1 - expected.orders_per_scheduled_driver / rows.orders_per_scheduled_driver
        q = float(share.clip(lower=0).max())
        return round(q, 2) if q >= action.lever.min else None
    if kind == "cut_dispatch":
        late_by = float((rows.dispatch_delay_min - expected.dispatch_delay_min).max())
        return (
            round(DEFAULTS[kind] * late_by)
            if DEFAULTS[kind] * late_by >= action.lever.min
            else None
        )
    if kind == "shift_carrier":
        return DEFAULTS[kind] if rows.dsp_gap.fillna(0).max() > 0.05 else None
    if kind == "reduce_traffic":
        return (
            DEFAULTS[kind] if (rows.traffic_index - expected.traffic_index).max() > 0.05 else None
        )
    return DEFAULTS[kind]


def recommend_for(
    frame: pd.DataFrame,
    target: str,
    day: date,
    causes: list[str],
    *,
    late_within: Callable[[float], tuple[int, int]],
    parameters: dict[str, float] | None = None,
    cache_key: tuple[object, ...] | None = None,
    max_actions: int = 5,
    random_state: int = 0,
) -> tuple[list[RecommendedAction], dict[str, str], float]:
    """Rank catalog actions for an anomaly (pure except for the ``late_within`` callback).

    Returns:
        (actions, skipped action ids with reasons, late deliveries on the affected days).
    """
    catalog = load_action_catalog()
    parameters = parameters or {}
    fitted, _ = causal_model(frame, cache_key=cache_key, random_state=random_state)
    rows, expected = _affected(frame, target, day)
    ranked: list[tuple[tuple[float, float], RecommendedAction]] = []
    skipped: dict[str, str] = {}
    weight = {c: len(causes) - i for i, c in enumerate(causes)}
    for action in catalog.actions:
        addressed = [c for c in causes if c in action.treats]
        if not addressed:
            skipped[action.id] = f"treats {', '.join(action.treats)}, not a hypothesis here"
            continue
        value = parameters.get(action.id)
        if value is None:
            value = default_parameter(action, rows, expected)
        if value is None:
            skipped[action.id] = "its lever is not off today (nothing to recover)"
            continue
        if not action.lever.min <= value <= action.lever.max:
            if action.id in parameters:
                raise ToolError(
                    f"{action.id}: {action.lever.parameter} must be within "
                    f"{action.lever.min:g}..{action.lever.max:g} {action.lever.unit}, got {value:g}"
                )
            value = float(min(max(value, action.lever.min), action.lever.max))
        avoided, ci, cost, _ = estimate_impact(
            action, value, rows, expected, fitted, late_within, random_state=random_state
        )
        resolved = float((rows.delivered + rows.failed).sum())
        late_after = (float(rows.late.sum()) - avoided) / resolved if resolved else None
        per100 = round(100 * avoided / cost, 2) if cost > 0 else float("inf")
        cause = addressed[0]
        ranked.append(
            (
                (weight[cause], per100 if math.isfinite(per100) else 1e9),
                RecommendedAction(
                    rank=0,
                    action_id=action.id,
                    title=action.title,
                    treats=action.treats,
                    addresses=cause,
                    parameters={action.lever.parameter: value},
                    stores=sorted(rows.store_id.astype(str)),
                    expected_avoided=avoided,
                    avoided_ci=ci,
                    late_rate_after=None if late_after is None else round(late_after, 4),
                    cost=cost,
                    avoided_per_100=per100 if math.isfinite(per100) else 9999.0,
                    lead_time_hours=action.lead_time_hours,
                    needs_approval=action.needs_approval,
                    rationale=f"treats {cause}: "
                    f"{action.lever.parameter} = {value:g} {action.lever.unit}",
                ),
            )
        )
    ranked.sort(key=lambda kv: (-kv[0][0], -kv[0][1]))
    actions = []
    for i, (_, a) in enumerate(ranked[:max_actions], start=1):
        a.rank = i
        actions.append(a)
    return actions, skipped, float(rows.late.sum())


def late_within_counter(
    backend: Backend, stores: list[str], day: date
) -> Callable[[float], tuple[int, int]]:
    """Count, for the stores' deliveries due on ``day``, late ones at most N minutes late.

    Returns:
        A function of N giving (deliveries delivered 0 < delay <= N minutes late, all late).
    """

    def count(minutes: float) -> tuple[int, int]:
        placeholders = ", ".join("?" for _ in stores)
        got = backend.query(
            "SELECT count(*) FILTER (WHERE status = 'delivered' AND delay_min > 0 "
            "AND delay_min <= ?) AS within, count(*) FILTER (WHERE is_late) AS late "
            f"FROM delivery_outcomes WHERE store_id IN ({placeholders}) AND service_date = ?",
            [minutes, *stores, day],
        )
        return int(got.within.iloc[0]), int(got.late.iloc[0])

    return count


def recommend_actions(ctx: ToolContext, args: RecommendActionsInput) -> RecommendActionsResult:
    """Propose catalog actions with expected impact and cost for an anomaly.

    Raises:
        ToolError: unknown target or action, a day without data, a parameter out of range.
    """
    actions_catalog = load_action_catalog()
    for action_id in args.parameters:
        try:
            actions_catalog.get(action_id)
        except KeyError as exc:
            raise ToolError(str(exc.args[0])) from None
    scope = resolve_target(load_catalog(ctx.backend), args.target, args.day, args.lookback_days)
    frame = store_day_frame(
        ctx.backend, stores=scope.region_stores, start=scope.start, end=args.day
    )
    key = (ctx.backend.data_version(), scope.start, args.day)
    causes = args.causes
    if not causes:
        diagnosis = diagnose_frame(
            frame, args.target, args.day, cache_key=key, random_state=ctx.random_state
        )
        causes = [h.cause for h in diagnosis.hypotheses] or [diagnosis.causes[0].cause]

    late_within = late_within_counter(ctx.backend, scope.stores, args.day)

    try:
        actions, skipped, late = recommend_for(
            frame,
            args.target,
            args.day,
            causes,
            late_within=late_within,
            parameters=args.parameters,
            cache_key=key,
            max_actions=args.max_actions,
            random_state=ctx.random_state,
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    numbers: dict[str, float] = {"late_deliveries": late, "interval": INTERVAL}
    for a in actions:
        numbers[f"{a.action_id}.expected_avoided"] = a.expected_avoided
        numbers[f"{a.action_id}.ci_low"], numbers[f"{a.action_id}.ci_high"] = a.avoided_ci
        numbers[f"{a.action_id}.cost"] = a.cost
        numbers[f"{a.action_id}.avoided_per_100"] = a.avoided_per_100
        if a.late_rate_after is not None:
            numbers[f"{a.action_id}.late_rate_after"] = a.late_rate_after
        for name, v in a.parameters.items():
            numbers[f"{a.action_id}.{name}"] = v
    summary = f"{len(actions)} action(s) for {args.target} on {args.day} ({', '.join(causes)})" + (
        f"; best: {actions[0].action_id} avoids ~{actions[0].expected_avoided:g} "
        f"late deliveries for {actions[0].cost:g}"
        if actions
        else ""
    )
    evidence = ctx.evidence.register(
        "recommend_actions", args.model_dump(mode="json"), numbers, summary
    )
    return RecommendActionsResult(
        evidence_id=evidence.id,
        target=args.target,
        day=args.day,
        causes=causes,
        late_deliveries=late,
        actions=actions,
        skipped=skipped,
        currency=actions_catalog.currency,
    )
