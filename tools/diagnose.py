"""Tool ``diagnose``: why was a store (or region) late on a given day? Causes, not correlations.

For the anomalous row, every variable of the reviewed causal graph (``causal/graph.yaml``) is
compared with its normal-day baseline. A linear structural causal model fitted on the
region's history (DoWhy ``gcm``) attributes the late-rate excess to each node's own,
unexplained part (``attribute_anomalies``): rain that caused no-shows is credited to the
rain, not to the no-shows. Each candidate cause also gets a backdoor-adjusted effect estimate
(DoWhy ``CausalModel``) with a confidence interval and refutations.

Two naive baselines are computed beside it for the evals: ranking by correlation with the
late rate (what a quick analysis would do) and ranking by how far each factor moved.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> d = diagnose(ctx, DiagnoseInput(target="S010", day=date(2026, 3, 9)))
    >>> d.hypotheses[0].cause, d.hypotheses[0].contribution
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.baselines import kpi_residuals, region_residuals
from tools.analytics.panel import finite, region_day_frame, store_day_frame
from tools.analytics.scope import load_catalog, resolve_target
from tools.causal.effects import EffectEstimate, estimate_effect
from tools.causal.graph import CausalGraph, load_graph
from tools.causal.scm import FittedScm, attribute, fit_scm, linear_attribution
from tools.core.context import ToolContext
from tools.core.errors import ToolError

Confidence = Literal["high", "medium", "low"]


class CauseFinding(BaseModel):
    """One candidate cause of the anomaly."""

    cause: str = Field(description="Root-cause name (shared vocabulary).")
    variable: str = Field(description="store_day column that carries it.")
    value: float | None
    expected: float | None
    z: float | None = Field(description="How unusual the value is (robust SDs).")
    contribution: float = Field(description="Late-rate points attributed to this cause (gcm).")
    share: float = Field(description="Share of the attributed excess (0..1).")
    linear_contribution: float = Field(description="Effect x own deviation (cross-check).")
    effect: float = Field(description="Late-rate change per unit of the variable (backdoor).")
    effect_ci: tuple[float, float]
    refutations_passed: int
    refutations_run: int


class Hypothesis(BaseModel):
    """A likely explanation, with how much of the excess it carries."""

    cause: str
    variable: str
    contribution: float
    share: float
    confidence: Confidence


class DiagnoseInput(BaseModel):
    """Arguments of ``diagnose``."""

    target: str = Field(description="Store id (e.g. S003) or region id (e.g. R2).")
    day: date = Field(description="The day to explain.")
    lookback_days: int = Field(
        56, ge=21, le=365, description="History the causal model learns from."
    )


class Diagnosis(BaseModel):
    """Ranked causes of a late-rate anomaly."""

    target: str
    level: Literal["store", "region"]
    day: date
    kpi: str
    value: float
    expected: float
    excess: float = Field(description="Late-rate points above the normal day.")
    late_excess: float = Field(description="Late deliveries above the normal day.")
    causes: list[CauseFinding]
    hypotheses: list[Hypothesis] = Field(description="Top 2-3 explanations.")
    confidence: Confidence
    unexplained: float = Field(description="Points left to the late rate's own noise.")
    correlation_ranking: list[str] = Field(
        description="Baseline: by |correlation| with the KPI over the history before the day."
    )
    deviation_ranking: list[str] = Field(description="Baseline: by how far each factor moved.")
    method: str
    graph_version: int


class DiagnoseResult(Diagnosis):
    """A diagnosis registered as evidence."""

    evidence_id: str


_CACHE: dict[tuple[object, ...], tuple[FittedScm, dict[str, EffectEstimate]]] = {}
_CACHE_LOCK = threading.Lock()


def causal_model(
    frame: pd.DataFrame,
    *,
    graph: CausalGraph | None = None,
    cache_key: tuple[object, ...] | None = None,
    random_state: int = 0,
) -> tuple[FittedScm, dict[str, EffectEstimate]]:
    """Fit the causal graph on store-day deviations, with per-cause effect estimates.

    Cached per ``cache_key`` (data version and window), graph structure and stores, so the
    diagnosis and the action recommender of one anomaly share one fit.
    """
    graph = graph or load_graph()
    key = (
        (cache_key, graph.fingerprint, tuple(sorted(frame.store_id.unique())))
        if cache_key
        else None
    )
    with _CACHE_LOCK:
        if key is not None and key in _CACHE:
            return _CACHE[key]
    deviations, _, _ = deviation_frame(frame.reset_index(drop=True), "store_id", graph)
    fitted = fit_scm(deviations, graph, random_state=random_state)
    effects = {}
    for node in graph.causes:
        effects[node] = estimate_effect(
            deviations,
            node,
            graph.target,
            graph.parents(node),
            num_simulations=10,
            random_state=random_state,
        )
    if key is not None:
        with _CACHE_LOCK:
            if len(_CACHE) > 64:
                _CACHE.clear()
            _CACHE[key] = (fitted, effects)
    return fitted, effects


def deviation_frame(
    frame: pd.DataFrame, entity_col: str, graph: CausalGraph
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Values minus normal-day baselines for every graph node; also (expected, z)."""
    nodes = list(graph.nodes)
    if entity_col == "store_id":
        expected, z = kpi_residuals(frame, entity_col, nodes)
    else:
        expected, z = region_residuals(frame, nodes)
    deviations = frame[nodes].astype(float) - expected[nodes]
    return deviations, expected, z


def diagnose_frame(
    frame: pd.DataFrame,
    target: str,
    day: date,
    *,
    graph: CausalGraph | None = None,
    cache_key: tuple[object, ...] | None = None,
    random_state: int = 0,
) -> Diagnosis:
    """Diagnose one store-day or region-day from ``store_day`` rows (pure: no I/O).

    Args:
        frame: store-day rows of the target's region(s), history and the day itself.
        target: store id or region id.
        day: the day to explain.
        graph: causal graph (default: the reviewed one).
        cache_key: key for reusing the fitted model across calls on the same data.
        random_state: seed.

    Returns:
        The ranked causes and hypotheses.
    """
    graph = graph or load_graph()
    frame = frame.reset_index(drop=True)
    level: Literal["store", "region"] = "store" if target in set(frame.store_id) else "region"
    fitted, effects = causal_model(
        frame, graph=graph, cache_key=cache_key, random_state=random_state
    )

    if level == "store":
        rows, entity_col, entity_frame = frame, "store_id", frame
        deviations, expected, z = deviation_frame(frame, "store_id", graph)
    else:
        entity_frame = region_day_frame(frame).reset_index(drop=True)
        rows, entity_col = entity_frame, "region"
        deviations, expected, z = deviation_frame(entity_frame, "region", graph)
    hit = rows.index[(rows[entity_col] == target) & (rows.date == pd.Timestamp(day))]
    if len(hit) == 0:
        raise ToolError(f"no data for {target} on {day}")
    i = hit[0]
    row = deviations.loc[i]
    if row.isna().any():
        raise ToolError(f"{target} on {day} lacks data for {', '.join(row.index[row.isna()])}")

    gcm_contrib = attribute(fitted, row, random_state=random_state)
    lin_contrib = linear_attribution(fitted, row)
    target_node = graph.target
    value = float(rows.loc[i, target_node])
    exp_value = float(expected.loc[i, target_node])
    positive = sum(max(gcm_contrib[n], 0.0) for n in graph.nodes)
    findings = []
    for node, cause in graph.causes.items():
        est = effects[node]
        contribution = gcm_contrib.get(node, 0.0)
        findings.append(
            CauseFinding(
                cause=cause,
                variable=node,
                value=finite(rows.loc[i, node]),
                expected=finite(expected.loc[i, node]),
                z=finite(z.loc[i, node]),
                contribution=round(contribution, 4),
                share=round(max(contribution, 0.0) / positive, 3) if positive > 0 else 0.0,
                linear_contribution=round(lin_contrib.get(node, 0.0), 4),
                effect=round(est.effect, 6),
                effect_ci=(round(est.ci[0], 6), round(est.ci[1], 6)),
                refutations_passed=sum(r.passed for r in est.refutations),
                refutations_run=len(est.refutations),
            )
        )
    findings.sort(key=lambda c: -c.contribution)
    hypotheses = _hypotheses(findings)
    confidence = _confidence(findings)
    resolved = (
        float(rows.loc[i, "delivered"] + rows.loc[i, "failed"])
        if "delivered" in rows.columns
        else float(rows.loc[i, "orders"])
    )
    if level == "region":
        resolved = float(entity_frame.loc[i, "resolved"])
    # The naive analyst: "what usually goes with lateness here?" - correlations over the
    # entity's history before the day, blind to what actually moved today.
    history = entity_frame[
        (entity_frame[entity_col] == target) & (entity_frame.date < pd.Timestamp(day))
    ]
    correlation = {
        cause: abs(float(history[node].astype(float).corr(history[target_node].astype(float))))
        for node, cause in graph.causes.items()
    }
    moved = {
        cause: float(z.loc[i, node]) if pd.notna(z.loc[i, node]) else 0.0
        for node, cause in graph.causes.items()
    }
    return Diagnosis(
        target=target,
        level=level,
        day=day,
        kpi=target_node,
        value=round(value, 4),
        expected=round(exp_value, 4),
        excess=round(value - exp_value, 4),
        late_excess=round((value - exp_value) * resolved, 1),
        causes=findings,
        hypotheses=hypotheses,
        confidence=confidence,
        unexplained=round(gcm_contrib.get(target_node, 0.0), 4),
        correlation_ranking=sorted(correlation, key=lambda c: -np.nan_to_num(correlation[c])),
        deviation_ranking=sorted(moved, key=lambda c: -moved[c]),
        method="DoWhy gcm.attribute_anomalies (mean deviation, linear additive-noise SCM) "
        "over the reviewed graph; effects by backdoor linear regression with refutations",
        graph_version=graph.version,
    )


def _hypotheses(findings: list[CauseFinding]) -> list[Hypothesis]:
    out: list[Hypothesis] = []
    for f in findings[:3]:
        if f.contribution <= 0 or (out and f.share < 0.1):
            continue
        robust = f.refutations_passed == f.refutations_run
        conf: Confidence = (
            "high" if f.share >= 0.6 and robust else "medium" if f.share >= 0.3 else "low"
        )
        out.append(
            Hypothesis(
                cause=f.cause,
                variable=f.variable,
                contribution=f.contribution,
                share=f.share,
                confidence=conf,
            )
        )
    return out


def _confidence(findings: list[CauseFinding]) -> Confidence:
    """Rate how sure the diagnosis is.

    High when the top cause carries most of the excess, the linear cross-check agrees and
    its effect survived every refutation; low when nothing stands out.
    """
    top = findings[0]
    agree = max(findings, key=lambda f: f.linear_contribution).cause == top.cause
    robust = top.refutations_passed == top.refutations_run
    if top.share >= 0.6 and agree and robust:
        return "high"
    if top.share >= 0.35 and agree:
        return "medium"
    return "low"


def diagnose(ctx: ToolContext, args: DiagnoseInput) -> DiagnoseResult:
    """Explain a store's or region's late rate on a day.

    Raises:
        ToolError: unknown target, a day without data, or too little history.
    """
    scope = resolve_target(load_catalog(ctx.backend), args.target, args.day, args.lookback_days)
    frame = store_day_frame(
        ctx.backend, stores=scope.region_stores, start=scope.start, end=args.day
    )
    key = (ctx.backend.data_version(), scope.start, args.day)
    try:
        found = diagnose_frame(
            frame, args.target, args.day, cache_key=key, random_state=ctx.random_state
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    numbers: dict[str, float] = {
        "value": found.value,
        "expected": found.expected,
        "excess": found.excess,
        "late_excess": found.late_excess,
        "unexplained": found.unexplained,
    }
    for c in found.causes:
        for part in ("contribution", "share", "effect", "value", "expected", "z"):
            v = getattr(c, part)
            if v is not None:
                numbers[f"{c.cause}.{part}"] = v
        numbers[f"{c.cause}.effect_ci_low"], numbers[f"{c.cause}.effect_ci_high"] = c.effect_ci
    top = found.hypotheses[0] if found.hypotheses else None
    summary = (
        f"{args.target} on {args.day}: late rate {found.value:.1%} "
        f"vs {found.expected:.1%} normal; "
        + (
            f"top cause {top.cause} ({top.contribution:+.1%}, {top.confidence})"
            if top
            else "no cause stands out"
        )
    )
    evidence = ctx.evidence.register("diagnose", args.model_dump(mode="json"), numbers, summary)
    return DiagnoseResult(evidence_id=evidence.id, **found.model_dump())
