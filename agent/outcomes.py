"""Outcomes of dispatched actions in the service: realised against promised, and the loop back.

Once the day an approved action was for is in the data, :meth:`Outcomes.measure_outcomes`
measures what it realised, once:

* **synthetic worlds** (a generated database with its truth file): the world is simulated
  with the dispatched actions applied, in dispatch order
  (:func:`tools.data.synthetic.actions.realised_outcomes`): exact, no caveat;
* **real data**: against the plan's no-action forecast: the excess the promise assumed
  (its cap) minus the late deliveries above normal that remained on the day, as ``diagnose``
  measures them. A problem that faded by itself counts as avoided, so the figure carries a
  caveat.

The track record per catalog action (:mod:`tools.catalog.calibration`) goes into every run's
context, so ``recommend_actions`` corrects the estimates of an action that has been
over-promising and the plan says so.
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
from tools.analytics.scope import load_catalog
from tools.catalog.calibration import ActionCalibration, calibrate, credited
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import DuckDBBackend
from tools.data.synthetic import World
from tools.data.synthetic.actions import (
    AppliedAction,
    realised_outcomes,
    simulable,
    synthetic_world,
)
from tools.diagnose import DiagnoseInput, diagnose

if TYPE_CHECKING:
    from agent.storage.runs import RunRecord, RunStore

logger = logging.getLogger(__name__)

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


def promise_of(
    record: RunRecord, action: DispatchedAction, stores_of: dict[str, list[str]]
) -> Promise | None:
    """Return what a dispatched action promised, or None when it promised no figure."""
    plan_actions = (record.plan or {}).get("actions", [])
    if action.expected_avoided is None or not action.avoided_ci or action.idx >= len(plan_actions):
        return None
    planned = plan_actions[action.idx]
    if planned.get("apply_on"):
        applied_on = date.fromisoformat(str(planned["apply_on"]))
    elif planned.get("day"):  # a plan's action is for the day after its cell
        applied_on = date.fromisoformat(str(planned["day"])) + timedelta(days=1)
    else:
        return None
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

        def record(self, run_id: str) -> RunRecord: ...  # noqa: D102

    def outcomes(self, action_id: str | None = None) -> list[OutcomeRecord]:
        """Return measured outcomes, oldest dispatch first."""
        return list_outcomes(self.store.engine, action_id)

    def calibration(self) -> dict[str, ActionCalibration]:
        """Return each catalog action's track record (actions with outcomes only)."""
        return calibrate([o.tracked() for o in self.outcomes()])

    def measure_outcomes(self) -> list[OutcomeRecord]:
        """Measure every dispatched action whose day is now in the data (each one once).

        Returns:
            The outcomes measured now, in dispatch order.
        """
        engine = self.store.engine
        done = measured_keys(engine)
        dispatched = outbox(engine)
        if not any((a.run_id, a.idx) not in done for a in dispatched):
            return []
        backend = DuckDBBackend(self.db)
        catalog = load_catalog(backend)
        stores_of = {"all": catalog.stores.store_id.tolist()}
        for region, group in catalog.stores.groupby("region"):
            stores_of[str(region)] = group.store_id.tolist()
        stores_of |= {s: [s] for s in catalog.stores.store_id}
        records: dict[str, RunRecord] = {}
        promises = []
        for a in dispatched:
            record = records.setdefault(a.run_id, self.record(a.run_id))
            p = promise_of(record, a, stores_of)
            if p is not None and p.stores and p.applied_on <= catalog.last_day:
                promises.append(p)
        world = synthetic_world(self.db)
        if world is not None:
            # days do not interact: only the days with an outcome still to measure are run
            todo = {p.applied_on for p in promises if (p.action.run_id, p.action.idx) not in done}
            measured = _simulated(world, [p for p in promises if p.applied_on in todo])
        else:
            measured = _against_forecast(ToolContext(backend=backend), promises, done)
        out = []
        for p, (realised, method, caveat) in measured:
            if (p.action.run_id, p.action.idx) in done:
                continue
            outcome = OutcomeRecord(
                run_id=p.action.run_id,
                idx=p.action.idx,
                action_id=p.action.action_id,
                target=p.action.target,
                stores=p.stores,
                applied_on=p.applied_on.isoformat(),
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

    def _calibration_context(self) -> dict[str, ActionCalibration]:
        """Return the track records a run's ``recommend_actions`` corrects estimates by."""
        return self.calibration()


Measured = list[tuple[Promise, tuple[float, str, str | None]]]


def _simulated(world: World, promises: list[Promise]) -> Measured:
    """Exact outcomes in a synthetic world, every dispatched action applied in order.

    The realised figure is the late deliveries above the world's true normal that the
    action removed, credited as the plan counts them: up to the excess its recommendation
    measured, each action after the ones of its run ranked above it
    (:func:`tools.catalog.calibration.credited`).
    """
    known = [p for p in promises if simulable(p.action.action_id)]
    applied = [
        AppliedAction(
            action_id=p.action.action_id,
            day=p.applied_on,
            stores=p.stores,
            value=next(iter(p.action.parameters.values())),
        )
        for p in known
    ]
    # an action the simulator does not know (a real-data lever) has no outcome here
    in_world = [
        (p, a)
        for p, a in zip(known, applied, strict=True)
        if world.config.start_date <= a.day < world.config.start_date + timedelta(world.config.days)
    ]
    results = realised_outcomes(world, [a for _, a in in_world])
    # a run's actions are credited in plan order up to the excess its promises measured
    by_run: dict[str, list[int]] = {}
    for i, (p, _) in enumerate(in_world):
        by_run.setdefault(p.action.run_id, []).append(i)
    credit = [0.0] * len(in_world)
    for members in by_run.values():
        members.sort(key=lambda i: in_world[i][0].action.idx)
        cap = max(in_world[i][0].cap for i in members)
        for i, c in zip(members, credited([results[i].avoided for i in members], cap), strict=True):
            credit[i] = c
    return [(p, (c, "simulated", None)) for (p, _), c in zip(in_world, credit, strict=True)]


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
            out.append((p, (together * share, "no_action_forecast", NO_ACTION_CAVEAT)))
    return out
