"""Aggregate case scores into suite metrics (means with standard errors) and gate them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel

from agent.coherence import COHERENCE_KINDS
from evals.runner import Mode
from evals.scoring import CaseResult
from evals.suite import Suite, threshold_key

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.yaml")


class Metric(BaseModel):
    """A suite-level number: value, how many observations, standard error."""

    value: float | None
    n: int
    se: float | None = None


def _share(flags: list[bool]) -> Metric:
    if not flags:
        return Metric(value=None, n=0)
    p = float(np.mean(flags))
    return Metric(value=round(p, 4), n=len(flags), se=round(math.sqrt(p * (1 - p) / len(flags)), 4))


def _mean(values: list[float]) -> Metric:
    if not values:
        return Metric(value=None, n=0)
    arr = np.asarray(values, dtype=float)
    se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else None
    return Metric(
        value=round(float(arr.mean()), 4), n=len(arr), se=None if se is None else round(se, 4)
    )


def aggregate(suite: Suite, results: list[CaseResult]) -> dict[str, Metric]:
    """Suite metrics from case results (one repeat counts as one observation)."""
    incidents = [i for r in results for i in r.incidents]
    detected = [i for i in incidents if i.detected]
    diagnosed = [i for i in detected if i.diagnosed]
    acted = [i for i in detected if i.action is not None]
    # (estimated, simulated) late deliveries avoided, where the world could simulate the action
    impacts = [
        (i.impact_estimated, i.impact_simulated)
        for i in acted
        if i.impact_estimated is not None and i.impact_simulated
    ]
    agent_runs = [r for r in results if r.kind != "scan"]
    scans = [r for r in results if r.kind == "scan"]
    questions = [r for r in results if r.kind == "question" and r.question_ok is not None]
    forecast = [i for i in detected if i.forecast is not None]
    m: dict[str, Metric] = {
        "detection_recall": _share([i.detected for i in incidents]),
        "event_precision": Metric(
            value=round(
                sum(r.correct_alarms for r in results) / max(1, sum(r.alarms for r in results)), 4
            )
            if any(r.alarms for r in results)
            else None,
            n=sum(r.alarms for r in results),
        ),
        "root_cause_top1": _share([i.top1 for i in diagnosed]),
        "root_cause_top3": _share([i.top3 for i in diagnosed]),
        "action_correct": _share([i.action_ok for i in acted]),
        "impact_within_30pct": _share([abs(e - s) <= 0.3 * abs(s) for e, s in impacts]),
        "impact_abs_relative_error": _mean([abs(e - s) / abs(s) for e, s in impacts]),
        "baseline_correlation_top1": _share([i.correlation_top1 for i in diagnosed]),
        "baseline_deviation_top1": _share([i.deviation_top1 for i in diagnosed]),
        "baseline_anomaly_only_top1": _share([i.anomaly_only_top1 for i in detected]),
        # does the problem carry into tomorrow? the forecast's verdict against the truth, and
        # the no-forecast baseline: today's problem is tomorrow's
        "persistence_correct": _share([(i.forecast == "persists") == i.persists for i in forecast]),
        "baseline_no_forecast_persistence": _share([i.persists for i in forecast]),
        "groundedness": _mean([r.groundedness for r in agent_runs if r.groundedness is not None]),
        "plan_valid": _share([r.plan_valid for r in agent_runs]),
        "template_fallback": _share([r.fallback for r in agent_runs]),
        "question_correct": _share([bool(r.question_ok) for r in questions]),
        "tool_call_validity": Metric(
            value=round(
                sum(r.tool_calls_valid for r in agent_runs)
                / max(1, sum(r.tool_calls for r in agent_runs)),
                4,
            )
            if any(r.tool_calls for r in agent_runs)
            else None,
            n=sum(r.tool_calls for r in agent_runs),
        ),
        "llm_calls_per_case": _mean([float(r.llm_calls) for r in agent_runs]),
        "tokens_per_case": _mean([float(r.input_tokens + r.output_tokens) for r in agent_runs]),
        "latency_s": _mean([r.latency_s for r in agent_runs]),
        "case_errors": Metric(
            value=float(sum(r.error is not None for r in results)), n=len(results)
        ),
        "cases_passed": _share([r.passed for r in results]),
        # plans that promise what the evidence does not support, counted on every plan
        **{
            kind: Metric(
                value=float(sum(r.coherence.get(kind, 0) for r in agent_runs)),
                n=len(agent_runs),
            )
            for kind in COHERENCE_KINDS
        },
    }
    if scans:
        unexplained = sum(r.alarms - r.correct_alarms for r in scans)
        weeks = sum(r.store_weeks for r in scans)
        m["unexplained_per_100_store_weeks"] = Metric(
            value=round(100 * unexplained / weeks, 3), n=int(weeks)
        )
    if "confounded" in suite.tags and m["root_cause_top1"].value is not None:
        margin = m["root_cause_top1"].value - (m["baseline_correlation_top1"].value or 0.0)
        m["correlation_margin"] = Metric(value=round(margin, 4), n=m["root_cause_top1"].n)
    return m


def pass_k(results: list[CaseResult]) -> Metric:
    """pass^k: the share of cases that passed in every one of their repeats."""
    by_case: dict[str, list[bool]] = {}
    for r in results:
        by_case.setdefault(r.case, []).append(r.passed)
    return _share([all(v) for v in by_case.values()])


def thresholds(
    mode: Mode, suite: Suite, path: Path = THRESHOLDS_FILE
) -> dict[str, dict[str, float]]:
    """Return the bounds for a suite in a mode (file defaults, then the suite's overrides)."""
    table: dict[str, Any] = yaml.safe_load(path.read_text())
    bounds = {k: dict(v) for k, v in (table.get(mode) or {}).items()}
    for key, value in suite.thresholds.items():
        name, side = threshold_key(key)
        if value is None:
            bounds.pop(name, None)
        else:
            bounds.setdefault(name, {})[side] = value
    return bounds


def check(metrics: dict[str, Metric], bounds: dict[str, dict[str, float]]) -> list[str]:
    """Metrics outside their bounds (metrics a suite does not measure are skipped)."""
    fails = []
    for name, bound in bounds.items():
        metric = metrics.get(name)
        if metric is None or metric.value is None:
            continue
        if "min" in bound and metric.value < bound["min"] - 1e-9:
            fails.append(f"{name} = {metric.value:g} < {bound['min']:g}")
        if "max" in bound and metric.value > bound["max"] + 1e-9:
            fails.append(f"{name} = {metric.value:g} > {bound['max']:g}")
    return fails
