"""Tool ``recommend_actions``: what to do about a diagnosed problem, and what it will achieve.

Candidate actions come only from the reviewed catalog (``catalog/actions.yaml``), and only for
causes that carry a real share of the excess (the diagnosis's hypotheses, or the causes the
caller names): an action for a cause that carries 2 % of the excess treats nothing. Each
action's lever is turned into an expected number of late deliveries avoided on the affected
cells with the causal model ``diagnose`` fitted (:mod:`tools.catalog.impact`), never more than
the late deliveries its causes carry. An action whose lever acts through data the user does
not have (no staffing feed for backup drivers) is skipped, and the result says why.

Actions that treat the leading hypothesis rank first; among them, more late deliveries
avoided per dollar ranks higher.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> r = recommend_actions(ctx, RecommendActionsInput(target="S010", day=date(2026, 3, 9)))
    >>> [(a.action_id, a.parameters, a.expected_avoided, a.cost) for a in r.actions]
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.baselines import kpi_residuals, region_residuals
from tools.analytics.cells import aggregate, with_medians
from tools.analytics.scope import load_catalog
from tools.analytics.thresholds import ACTION_INTERVAL, GRAINS, MIN_CAUSE_SHARE
from tools.catalog import ActionSpec
from tools.catalog import load_catalog as load_action_catalog
from tools.catalog.ahead import Ahead, expected_ahead
from tools.catalog.calibration import ActionCalibration, adjust
from tools.catalog.impact import (
    LateWithin,
    default_parameter,
    estimate_impact,
    late_within_counter,
)
from tools.catalog.ranking import MIN_AVOIDED, RecommendedAction, additive
from tools.causal.case import Case, explain
from tools.causal.findings import Diagnosis
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import Backend

MAX_LISTED_STORES = 100
"""An action on more stores than this (the whole chain) lists none: its target says where."""


class RecommendActionsInput(BaseModel):
    """Arguments of ``recommend_actions``."""

    target: str = Field(description="Store id, region id, or 'all', of the diagnosed anomaly.")
    day: date
    window_days: int | None = Field(
        None, description=f"Days of the cell, ending at `day` (one of {GRAINS}); default: auto."
    )
    causes: list[str] | None = Field(
        None, description="Root causes, most likely first (default: diagnose them now)."
    )
    parameters: dict[str, float] = Field(
        default_factory=dict, description="Override an action's parameter: {action_id: value}."
    )
    max_actions: int = Field(5, ge=1, le=20)
    lookback_days: int = Field(56, ge=21, le=365)
    apply_on: date | None = Field(
        None,
        description="Day the actions are for, after `day` ('what should we do tomorrow'): "
        "effects are sized to the excess the late-rate forecast still expects then; none "
        "when it expects the problem to be over. Default: the diagnosed cell itself.",
    )


class RecommendActionsResult(BaseModel):
    """Ranked actions for one anomaly."""

    evidence_id: str
    target: str
    day: date
    window_days: int
    causes: list[str]
    late_deliveries: float = Field(description="Late deliveries on the affected cells.")
    late_excess: float = Field(description="Late deliveries above normal on the affected cells.")
    apply_on: date | None = Field(None, description="Day the actions are for (after `day`).")
    expected_excess: float | None = Field(
        None, description="Late deliveries above normal the forecast expects on `apply_on`."
    )
    actions: list[RecommendedAction]
    skipped: dict[str, str] = Field(description="Catalog actions not proposed, and why.")
    in_effect: dict[str, str] = Field(
        default_factory=dict,
        description="Actions already approved for this problem and in effect (not proposed "
        "again), and when.",
    )
    currency: str


def affected_cells(case: Case, backend: Backend) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the cells an action acts on, with their normal values of the graph variables.

    A store's own cell; a region's stores when the model learned from stores (levers such
    as backup drivers act store by store); otherwise the target's cell itself.
    """
    window = case.window
    nodes = [n for n in case.model.graph.nodes if n in case.history.columns]
    if window.level == "region" and case.model.fit_level == "store":
        cells = aggregate(case.store_days, "store", case.grain)
        cells = cells[cells.region == window.target].reset_index(drop=True)
        cells = with_medians(cells, backend, as_of=window.day, stores=window.stores)
        reference = cells.date <= pd.Timestamp(window.day - timedelta(days=case.grain))
        expected, _ = kpi_residuals(cells, "entity", nodes, reference)
    else:
        cells = case.history
        reference = cells["reference"].astype(bool)
        if window.level == "store":
            expected, _ = kpi_residuals(cells, "entity", nodes, reference)
        else:
            expected, _ = region_residuals(cells, nodes, "entity", reference)
    on_day = cells.date == pd.Timestamp(window.day)
    if not (window.level == "region" and case.model.fit_level == "store"):
        on_day &= cells.entity == case.history.entity.iloc[case.row]
    return cells[on_day], expected[on_day]


def _cap(diagnosis: Diagnosis) -> float:
    """Return the most an action may avoid: the cell's late deliveries above its normal.

    No action takes a cell below its normal late rate, whatever the lever's model says (its
    cause's own attributed share is not the cap: attribution leaves part of a real cause's
    excess to noise, and the simulated counterfactuals of ``make quality`` recover it).
    """
    return round(max(0.0, diagnosis.late_excess), 1)


def _excess_sd(diagnosis: Diagnosis) -> float:
    """Return the excess's noise in late deliveries: the cell's late-rate spread x deliveries.

    ``late_z`` is the excess in robust SDs of the cell's late rate, so excess / z is one SD
    in late deliveries (0 when the spread is unknown).
    """
    z = diagnosis.late_z
    return diagnosis.late_excess / z if z and z > 0 and diagnosis.late_excess > 0 else 0.0


def _applies(action: ActionSpec, case: Case) -> str | None:
    """Why an action cannot act here (its lever's data is missing), or None."""
    if not action.needs or any(n in case.model.graph.nodes for n in action.needs):
        return None
    reasons = [case.model.dropped.get(n, "no data") for n in action.needs]
    return f"needs {' or '.join(action.needs)}: not assessed here ({'; '.join(reasons)})"


def recommend_for(
    case: Case,
    diagnosis: Diagnosis,
    causes: list[str],
    *,
    backend: Backend,
    late_within: LateWithin,
    parameters: dict[str, float] | None = None,
    max_actions: int = 5,
    random_state: int = 0,
    ahead: Ahead | None = None,
    in_effect: dict[str, str] | None = None,
    calibration: dict[str, ActionCalibration] | None = None,
) -> tuple[list[RecommendedAction], dict[str, str], float]:
    """Rank catalog actions for a diagnosed cell (pure but for the data the case holds).

    With ``ahead`` the actions are for a later day: each effect on the cell is scaled to the
    excess the forecast still expects then (:mod:`tools.catalog.ahead`), and the cost is one
    day's. Actions in ``in_effect`` (action id -> why: already approved for this problem)
    are skipped with that reason. An action ``calibration`` calls uncalibrated has its
    estimate corrected by its track record (:func:`tools.catalog.calibration.adjust`).

    Returns:
        (actions, skipped action ids with reasons, late deliveries on the affected cells).
    """
    catalog = load_action_catalog()
    parameters = parameters or {}
    rows, expected = affected_cells(case, backend)
    resolved = float(rows.resolved.sum())
    # the stores the action reaches: listed when few (a store, a region's stores)
    stores = sorted(case.window.stores) if len(case.window.stores) <= MAX_LISTED_STORES else []
    ranked: list[tuple[tuple[float, float], RecommendedAction]] = []
    skipped: dict[str, str] = {}
    weight = {c: len(causes) - i for i, c in enumerate(causes)}
    for action in catalog.actions:
        addressed = [c for c in causes if c in action.treats]
        if not addressed:
            skipped[action.id] = f"treats {', '.join(action.treats)}, not a hypothesis here"
            continue
        held = (in_effect or {}).get(action.id)
        why_not = f"already in effect: {held}" if held else _applies(action, case)
        if why_not:
            skipped[action.id] = why_not
            continue
        cap = _cap(diagnosis)
        if ahead is not None and ahead.excess < MIN_AVOIDED:
            skipped[action.id] = (
                f"the forecast expects no problem on {ahead.day} (late rate "
                f"{ahead.late_rate:.1%} against {ahead.normal:.1%} normally)"
            )
            continue
        if cap <= 0 or diagnosis.within_normal:
            skipped[action.id] = (
                "the late rate is within its normal range: nothing to avoid"
                if diagnosis.within_normal
                else "the late rate is not above normal: nothing to avoid"
            )
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
        avoided, ci, cost, beyond = estimate_impact(
            action,
            value,
            rows,
            expected,
            case.model.scm,
            late_within,
            cap=cap,
            cap_sd=_excess_sd(diagnosis),
            random_state=random_state,
        )
        late_after = (float(rows.late.sum()) - avoided) / resolved if resolved else None
        if ahead is not None:
            k = ahead.scale
            avoided, beyond, cap = round(avoided * k, 1), round(beyond * k, 1), round(cap * k, 1)
            ci = (round(ci[0] * k, 1), round(ci[1] * k, 1))
            cost = round(cost / case.grain, 2)
            late_after = None  # a forecast day's late rate with the action: not modelled
        model = (avoided, *ci)
        avoided, ci, note = adjust(avoided, ci, cap, (calibration or {}).get(action.id))
        if note is not None and late_after is not None and resolved:
            late_after = (float(rows.late.sum()) - avoided) / resolved
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
                    stores=stores,
                    expected_avoided=avoided,
                    avoided_ci=ci,
                    cap=cap,
                    beyond_normal=beyond,
                    late_rate_after=None if late_after is None else round(late_after, 4),
                    cost=cost,
                    avoided_per_100=per100 if math.isfinite(per100) else 9999.0,
                    lead_time_hours=action.lead_time_hours,
                    needs_approval=action.needs_approval,
                    rationale=f"treats {cause}: "
                    f"{action.lever.parameter} = {value:g} {action.lever.unit}",
                    calibration=note,
                    model_avoided=model if note is not None else None,
                ),
            )
        )
    ranked.sort(key=lambda kv: (-kv[0][0], -kv[0][1]))
    return additive([a for _, a in ranked], skipped, max_actions), skipped, float(rows.late.sum())


def _causes(args: RecommendActionsInput, diagnosis: Diagnosis, known: list[str]) -> list[str]:
    if args.causes is None:
        return [h.cause for h in diagnosis.hypotheses]
    unknown = [c for c in args.causes if c not in known]
    if unknown:
        raise ToolError(
            f"unknown cause {', '.join(map(repr, unknown))}; causes are: {', '.join(known)}"
        )
    # A named cause that carries too little of the excess is not treated either.
    carried = {c.cause: c.share for c in diagnosis.causes}
    return [c for c in args.causes if carried.get(c, 0.0) >= MIN_CAUSE_SHARE]


def recommend_actions(ctx: ToolContext, args: RecommendActionsInput) -> RecommendActionsResult:
    """Propose catalog actions with expected impact and cost for an anomaly.

    Raises:
        ToolError: unknown target, cause or action, a day without data, a parameter out of
            range.
    """
    actions_catalog = load_action_catalog()
    for action_id in args.parameters:
        try:
            actions_catalog.get(action_id)
        except KeyError as exc:
            raise ToolError(str(exc.args[0])) from None
    case, diagnosis = explain(
        ctx,
        load_catalog(ctx.backend),
        args.target,
        args.day,
        lookback_days=args.lookback_days,
        grain=args.window_days,
    )
    causes = _causes(args, diagnosis, case.graph.cause_names)
    first = args.day - timedelta(days=case.grain - 1)
    late_within = late_within_counter(ctx.backend, case.window.stores, first, args.day)
    ahead = None
    if args.apply_on is not None and not diagnosis.within_normal and diagnosis.late_excess > 0:
        ahead = expected_ahead(ctx, diagnosis, args.apply_on)
    actions, skipped, late = recommend_for(
        case,
        diagnosis,
        causes,
        backend=ctx.backend,
        late_within=late_within,
        parameters=args.parameters,
        max_actions=args.max_actions,
        random_state=ctx.random_state,
        ahead=ahead,
        in_effect=ctx.in_effect.get(args.target),
        calibration=ctx.calibration,
    )
    numbers: dict[str, float] = {
        "late_deliveries": late,
        "late_excess": diagnosis.late_excess,
        "interval": ACTION_INTERVAL,
    }
    if ahead is not None:
        numbers |= {"expected_excess": ahead.excess, "forecast_late_rate": ahead.late_rate}
    for a in actions:
        numbers[f"{a.action_id}.expected_avoided"] = a.expected_avoided
        numbers[f"{a.action_id}.ci_low"], numbers[f"{a.action_id}.ci_high"] = a.avoided_ci
        numbers[f"{a.action_id}.cap"] = a.cap
        numbers[f"{a.action_id}.beyond_normal"] = a.beyond_normal
        numbers[f"{a.action_id}.cost"] = a.cost
        numbers[f"{a.action_id}.avoided_per_100"] = a.avoided_per_100
        if a.late_rate_after is not None:
            numbers[f"{a.action_id}.late_rate_after"] = a.late_rate_after
        if a.model_avoided is not None:  # the estimate before the track record corrected it
            numbers[f"{a.action_id}.model_avoided"] = a.model_avoided[0]
            numbers[f"{a.action_id}.model_ci_low"] = a.model_avoided[1]
            numbers[f"{a.action_id}.model_ci_high"] = a.model_avoided[2]
        for name, v in a.parameters.items():
            numbers[f"{a.action_id}.{name}"] = v
    summary = (
        f"{len(actions)} action(s) for {args.target} on {args.apply_on or args.day} "
        f"({', '.join(causes) or 'no cause carries enough of the excess'})"
        + (
            f"; best: {actions[0].action_id} avoids ~{actions[0].expected_avoided:g} "
            f"late deliveries for {actions[0].cost:g}"
            if actions
            else ""
        )
    )
    facts = {
        "target": diagnosis.target,
        "level": diagnosis.level,
        "region": diagnosis.region,
        "day": diagnosis.day.isoformat(),
        "within_normal": str(diagnosis.within_normal).lower(),
    }
    if args.apply_on is not None:
        facts["apply_on"] = args.apply_on.isoformat()
    evidence = ctx.evidence.register(
        "recommend_actions", args.model_dump(mode="json"), numbers, summary, facts
    )
    return RecommendActionsResult(
        evidence_id=evidence.id,
        target=args.target,
        day=args.day,
        window_days=case.grain,
        causes=causes,
        late_deliveries=late,
        late_excess=diagnosis.late_excess,
        apply_on=args.apply_on,
        expected_excess=None if ahead is None else ahead.excess,
        actions=actions,
        skipped=skipped,
        in_effect={
            k: v
            for k, v in (ctx.in_effect.get(args.target) or {}).items()
            if skipped.get(k) == f"already in effect: {v}"
        },
        currency=actions_catalog.currency,
    )
