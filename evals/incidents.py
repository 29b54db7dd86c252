"""Score a run's alarms against a synthetic world's ground truth, incident by incident.

Detection, root cause (against the correlation, deviation and anomaly-only baselines),
forecast persistence, the action's fit, and its promised impact against the simulated
counterfactual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from agent.schemas import ActionPlan, PlannedAction
from evals.groundtruth import Truth, incidents_touched, simulated_avoided
from evals.scoring import CaseResult, IncidentScore, treats
from tools.data.synthetic import CAUSES, World
from tools.scan_anomalies import Anomaly

logger = logging.getLogger(__name__)

DRIVER_CAUSE = {column: cause for cause, column in CAUSES.values()}
"""Anomaly-only baseline: the cause a manager would read off the alarm's top KPI (the
simulator's own mapping, independent of the causal graph under test)."""


@dataclass
class Reading:
    """What the run concluded: diagnoses, plan, forecasts and each action's excess cap."""

    diagnoses: list[dict[str, Any]]
    plan: ActionPlan | None
    forecasts: list[dict[str, Any]]
    caps: dict[tuple[str, str], float]
    """(target, action id) -> the most that action may avoid (the cell's excess)."""


def score_alarms(
    result: CaseResult,
    alarms: list[Anomaly],
    span: tuple[date, date],
    reading: Reading,
    truth: Truth,
    world: Callable[[], World],
) -> None:
    """Score alarms against the ground truth of the incidents active in ``span``.

    An action's impact is scored as the quantity the plan promises: late deliveries
    above the cell's normal avoided, never more than that excess (``caps``). The truth of
    that quantity is the simulated counterfactual, capped the same way: an action that
    in simulation would also undo a lucky day's lateness is not credited beyond it.
    """
    first, last = span
    result.alarms = len(alarms)
    touched = {id(a): incidents_touched(a, truth) for a in alarms}
    result.correct_alarms = sum(bool(t) for t in touched.values())
    kinds = truth.incidents.set_index("incident_id")
    active = truth.injected[
        (pd.to_datetime(truth.injected.start_date).dt.date <= last)
        & (pd.to_datetime(truth.injected.end_date).dt.date >= first)
    ]
    for inc in active.itertuples():
        cause = CAUSES[str(inc.kind)][0]
        score = IncidentScore(
            incident=inc.incident_id, kind=inc.kind, true_cause=cause, detected=False
        )
        hits = [a for a in alarms if inc.incident_id in touched[id(a)]]
        # The alarm on the incident's own scope speaks for it (a storm's region alarm, a
        # shortage's store alarm), else the most specific one that touches it.
        own = inc.store_id if isinstance(inc.store_id, str) else inc.region
        hits.sort(key=lambda a: (a.target != own, a.level != "store"))
        score.detected = bool(hits)
        if hits:
            alarm = hits[0]
            truths = {CAUSES[str(kinds.loc[i, "kind"])][0] for i in touched[id(alarm)]}
            _score_reading(score, alarm, cause, len(truths), reading)
            score.persists = pd.Timestamp(str(inc.end_date)).date() > last
            action = next(
                (
                    a
                    for a in (reading.plan.actions if reading.plan else [])
                    if a.target == alarm.target
                ),
                None,
            )
            if action is not None:
                _score_action(score, alarm, action, cause, reading, truth, world)
        result.incidents.append(score)


def _score_reading(
    score: IncidentScore, alarm: Anomaly, cause: str, k: int, reading: Reading
) -> None:
    """Score the alarm's cause (and its baselines) and forecast against the truth."""
    k = max(1, k)
    score.anomaly_only_top1 = bool(alarm.drivers) and DRIVER_CAUSE.get(alarm.drivers[0]) == cause
    score.forecast = next(
        (
            f["persistence"]
            for f in reading.forecasts
            if alarm.target in str(f.get("scope", "")).split(" ")[-1].split(",")
        ),
        None,
    )
    d = next((d for d in reading.diagnoses if d["target"] == alarm.target), None)
    if d is not None:
        ranked = [c["cause"] for c in d["causes"]]
        score.diagnosed = True
        score.top1 = ranked[0] == cause or (k > 1 and cause in ranked[:k])
        score.top3 = cause in ranked[:3]
        score.correlation_top1 = d["correlation_ranking"][0] == cause
        score.deviation_top1 = d["deviation_ranking"][0] == cause


def _score_action(
    score: IncidentScore,
    alarm: Anomaly,
    action: PlannedAction,
    cause: str,
    reading: Reading,
    truth: Truth,
    world: Callable[[], World],
) -> None:
    """Score the plan's action for the alarm: its fit, and its impact against simulation."""
    score.action = action.action_id
    score.action_ok = cause in treats(action.action_id)
    score.impact_estimated = action.expected_avoided
    try:
        stores = (
            [alarm.target]
            if alarm.level == "store"
            else sorted(truth.stores[truth.stores.region == alarm.region].store_id)
        )
        (value,) = action.lever.values()
        simulated = simulated_avoided(world(), action.action_id, value, alarm.date, stores)
        cap = reading.caps.get((action.target, action.action_id))
        if cap is not None:
            simulated = min(simulated, cap)
        score.impact_simulated = round(simulated, 1)
    except (KeyError, ValueError) as exc:
        logger.warning("no counterfactual for %s: %s", action.action_id, exc)
