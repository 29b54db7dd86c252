"""Outcomes of dispatched actions in the service: realised against promised, and the loop back.

Once the day an approved action was for is in the data, :meth:`Outcomes.measure_outcomes`
measures what it realised, once:

* **synthetic worlds** (a generated database with its truth file): the world is simulated
  with the action applied on the day its promise was sized for (its cell, or its
  ``apply_on`` day), with the run's actions ranked above it
  (:func:`tools.data.synthetic.actions.realised_outcomes`): exact, no caveat. It judges the
  estimate itself; whether a problem seen yesterday goes on today is the forecast's to
  answer, and an action's record must not pay for it;
* **real data**: on the day it applied, against the plan's no-action forecast: the excess
  the promise assumed (its cap) minus the late deliveries above normal that remained, as
  ``diagnose`` measures them. A problem that faded by itself counts as avoided, so the
  figure carries a caveat; a promise sized on the day before it applied is recorded but
  kept out of the track record (it also measures whether the problem went on).

Both count as the plan does: late deliveries removed, up to the excess the recommendation
measured. The track record per catalog action (:mod:`tools.catalog.calibration`) goes into
every run's context, so ``recommend_actions`` corrects the estimates of an action that has
been over-promising and the plan says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.storage.approvals import DispatchedAction, outbox
from agent.storage.outcomes import OutcomeRecord, list_outcomes, measured_keys, record_outcome
from agent.storage.runs import utc_now
from tools.analytics.scope import Catalog, load_catalog
from tools.catalog.calibration import ActionCalibration, calibrate, credited
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import Backend
from tools.data.synthetic import World
from tools.data.synthetic.actions import (
    AppliedAction,
    realised_outcomes,
    simulable,
    synthetic_world,
)
from tools.data.views import LateRule
from tools.diagnose import DiagnoseInput, diagnose

if TYPE_CHECKING:
    from agent.storage.runs import RunRecord, RunStore

logger = logging.getLogger(__name__)

NOT_JUDGED = (
    "its promise was sized on the day before it applied, so this also measures whether the "
    "problem went on: kept out of the action's track record"
)
NO_ACTION_CAVEAT = (
    "measured against the plan's no-action forecast (the excess it assumed, less the excess "
    "that remained), shared among a run's actions at one target by what each promised: a "
    "problem that faded by itself counts as avoided"
)


@dataclass
class Promise:
    """A dispatched action as the outcome tracker needs it."""

    action: DispatchedAction
    applied_on: date
    sized_for: date
    stores: list[str]
    cap: float
    model: tuple[float, float, float]
    promised: tuple[float, float, float]


def _evidence_numbers(record: RunRecord, action: DispatchedAction) -> dict[str, Any]:
    """Return the numbers of the recommendation the action's promise cites."""
    key = f"{action.action_id}.expected_avoided"
    for e in record.evidence:
        if e.get("id") in action.evidence_ids and key in e.get("numbers", {}):
            return dict(e["numbers"])
    return {}


def action_days(planned: dict[str, Any]) -> tuple[date, date] | None:
    """Return (the day a planned action is carried out, the day its estimate was sized for).

    An action with ``apply_on`` is sized by the forecast for that day; one sized on its
    diagnosed cell is for the day after it. None: the plan gives neither.
    """
    if planned.get("apply_on"):
        applied_on = date.fromisoformat(str(planned["apply_on"]))
        return applied_on, applied_on
    if planned.get("day"):
        sized_for = date.fromisoformat(str(planned["day"]))
        return sized_for + timedelta(days=1), sized_for
    return None


def stores_by_target(catalog: Catalog) -> dict[str, list[str]]:
    """Return the stores an action's target reaches: 'all', each region, each store."""
    stores_of = {"all": catalog.stores.store_id.tolist()}
    for region, group in catalog.stores.groupby("region"):
        stores_of[str(region)] = group.store_id.tolist()
    return stores_of | {s: [s] for s in catalog.stores.store_id}


def promise_of(
    record: RunRecord, action: DispatchedAction, stores_of: dict[str, list[str]]
) -> Promise | None:
    """Return what a dispatched action promised, or None when it promised no figure."""
    plan_actions = (record.plan or {}).get("actions", [])
    if action.expected_avoided is None or not action.avoided_ci or action.idx >= len(plan_actions):
        return None
    planned = plan_actions[action.idx]
    days = action_days(planned)
    if days is None:
        return None
    applied_on, sized_for = days
    numbers = _evidence_numbers(record, action)
    low, high = (float(x) for x in action.avoided_ci)
    promised = (float(action.expected_avoided), low, high)
    name = action.action_id
    model = (
        (
            float(numbers[f"{name}.model_avoided"]),
            float(numbers[f"{name}.model_ci_low"]),
            float(numbers[f"{name}.model_ci_high"]),
        )
        if f"{name}.model_avoided" in numbers
        else promised
    )
    target = action.target or str(planned.get("target") or "all")
    return Promise(
        action=action,
        applied_on=applied_on,
        sized_for=sized_for,
        stores=stores_of.get(target, []),
        cap=float(numbers.get(f"{name}.cap", high)),
        model=model,
        promised=promised,
    )


class Outcomes:
    """Outcome tracking for :class:`agent.service.AgentService` (a mixin)."""

    if TYPE_CHECKING:  # what the service provides
        store: RunStore
        db: Path

        def backend(self, late: LateRule | None = None) -> Backend: ...  # noqa: D102

        def record(self, run_id: str) -> RunRecord: ...  # noqa: D102

    def outcomes(
        self, action_id: str | None = None, through: date | None = None
    ) -> list[OutcomeRecord]:
        """Return measured outcomes, oldest dispatch first (of days up to ``through``)."""
        found = list_outcomes(self.store.engine, action_id)
        return [o for o in found if through is None or o.applied_on <= through.isoformat()]

    def calibration(self, through: date | None = None) -> dict[str, ActionCalibration]:
        """Return each catalog action's track record (judged outcomes, up to ``through``)."""
        return calibrate([o.tracked() for o in self.outcomes(through=through) if o.judged])

    def measure_outcomes(self, through: date | None = None) -> list[OutcomeRecord]:
        """Measure every dispatched action whose day is in the data (each one once).

        ``through`` bounds the days (a monitor run as of an earlier date measures nothing
        after it).

        Returns:
            The outcomes measured now, in dispatch order.
        """
        engine = self.store.engine
        done = measured_keys(engine)
        # only runs with an outcome still to measure (their measured actions come along:
        # a run's actions are credited in rank order)
        pending = {a.run_id for a in outbox(engine) if (a.run_id, a.idx) not in done}
        if not pending:
            return []
        dispatched = [a for a in outbox(engine) if a.run_id in pending]
        backend = self.backend()
        catalog = load_catalog(backend)
        stores_of = stores_by_target(catalog)
        records = {run_id: self.record(run_id) for run_id in pending}
        last = min(catalog.last_day, through or catalog.last_day)
        promises = []
        for a in dispatched:
            p = promise_of(records[a.run_id], a, stores_of)
            if p is not None and p.stores and p.applied_on <= last:
                promises.append(p)
        world = synthetic_world(self.db)
        if world is not None:
            # days do not interact: only the days with an outcome still to measure are run
            todo = {p.sized_for for p in promises if (p.action.run_id, p.action.idx) not in done}
            measured = _simulated(world, [p for p in promises if p.sized_for in todo])
        else:
            measured = _against_forecast(ToolContext(backend=backend), promises, done)
        out = []
        for p, (realised, method, caveat, judged) in measured:
            if (p.action.run_id, p.action.idx) in done:
                continue
            outcome = OutcomeRecord(
                run_id=p.action.run_id,
                idx=p.action.idx,
                action_id=p.action.action_id,
                target=p.action.target,
                stores=p.stores,
                applied_on=p.applied_on.isoformat(),
                sized_for=p.sized_for.isoformat(),
                judged=judged,
                model_avoided=p.model[0],
                model_low=p.model[1],
                model_high=p.model[2],
                promised=p.promised[0],
                promised_low=p.promised[1],
                promised_high=p.promised[2],
                realised=round(realised, 1),
                method=method,
                caveat=caveat,
                dispatched_at=p.action.dispatched_at,
                measured_at=utc_now(),
            )
            if record_outcome(engine, outcome):
                out.append(outcome)
        logger.info("measured %d action outcome(s)", len(out))
        return out


Measured = list[tuple[Promise, tuple[float, str, str | None, bool]]]


def _simulated(world: World, promises: list[Promise]) -> Measured:
    """Exact outcomes in a synthetic world: each action simulated on the day it was sized for.

    That is the day whose excess the promise measured (its cell, or the ``apply_on`` day),
    so the figure judges the impact estimate itself, as the closed loop does; whether the
    problem went on to the next day is the forecast's to judge, not the action's. An action
    is credited, as its plan counts, with the late deliveries it removed up to the excess
    its recommendation measured, after the actions of its run ranked above it
    (:func:`tools.catalog.calibration.credited`).
    """
    cfg = world.config
    end = cfg.start_date + timedelta(days=cfg.days)
    # an action the simulator does not know (a real-data lever) has no outcome here
    known = [
        p for p in promises if simulable(p.action.action_id) and cfg.start_date <= p.sized_for < end
    ]
    applied = [
        AppliedAction(
            action_id=p.action.action_id,
            day=p.sized_for,
            stores=p.stores,
            value=next(iter(p.action.parameters.values())),
        )
        for p in known
    ]
    results = realised_outcomes(world, applied)
    by_run: dict[str, list[int]] = {}
    for i, p in enumerate(known):
        by_run.setdefault(p.action.run_id, []).append(i)
    credit = [0.0] * len(known)
    for members in by_run.values():
        members.sort(key=lambda i: known[i].action.idx)
        cap = max(known[i].cap for i in members)
        removed = [results[i].raw_avoided for i in members]
        for i, c in zip(members, credited(removed, cap), strict=True):
            credit[i] = c
    return [(p, (c, "simulated", None, True)) for p, c in zip(known, credit, strict=True)]


def _against_forecast(
    ctx: ToolContext, promises: list[Promise], done: set[tuple[str, int]]
) -> Measured:
    """Outcomes on real data: the excess the promise assumed, less what remained that day.

    The data cannot tell a run's actions at one target apart, so what they realised
    together is shared in proportion to what each promised.
    """
    groups: dict[tuple[str, str, date], list[Promise]] = {}
    for p in promises:
        if (p.action.run_id, p.action.idx) not in done:
            key = (p.action.run_id, p.action.target or "all", p.applied_on)
            groups.setdefault(key, []).append(p)
    out: Measured = []
    for (_, target, day), members in groups.items():
        try:
            found = diagnose(ctx, DiagnoseInput(target=target, day=day, window_days=1))
        except ToolError as exc:  # a day without deliveries at the target: nothing to judge
            logger.info("no outcome for %s on %s: %s", target, day, exc)
            continue
        cap = max(p.cap for p in members)
        together = min(max(cap - max(0.0, float(found.late_excess)), 0.0), cap)
        promised = sum(p.promised[0] for p in members)
        for p in members:
            share = p.promised[0] / promised if promised > 0 else 1.0 / len(members)
            # a promise sized on the day before also bets that the problem goes on: what
            # the day shows is the manager's outcome, not a judgement of the estimate
            judged = p.sized_for == p.applied_on
            caveat = NO_ACTION_CAVEAT if judged else f"{NO_ACTION_CAVEAT}; {NOT_JUDGED}"
            out.append((p, (together * share, "no_action_forecast", caveat, judged)))
    return out
