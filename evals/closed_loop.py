"""``lastmile closed-loop``: every recommended action approved, and its outcome simulated.

Day by day in a synthetic world, what the approved actions realised is checked against
what they promised.

Each morning of the window is triaged as the schedule would (the anomaly scan as of that day,
then :func:`agent.nodes.triage.triage_order`); every flagged target gets
``recommend_actions``, and every action it proposes is approved. The world then simulates
the approved actions (:func:`tools.data.synthetic.actions.realised_outcomes`), so what each
one realised is exact, and the outcome enters the action's track record
(:mod:`tools.catalog.calibration`), which the next morning's ``recommend_actions`` reads from
its context: the loop the service runs with ``lastmile monitor``, without a model in it.

The harness applies each action on the day its promise was sized for (the flagged cell),
so the comparison judges the impact estimate itself, as the service does in a generated
world (:mod:`agent.outcomes`); each recommendation's actions are simulated together, in
rank order, apart from other alarms' (as each promise was made), and credited as the plan
counts: late deliveries removed, up to the excess it measured.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import Progress

from agent.nodes.triage import triage_order
from tools.catalog.calibration import (
    ActionCalibration,
    TrackedOutcome,
    calibrate,
    credited,
    side,
)
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world
from tools.data.synthetic.actions import AppliedAction, realised_outcomes, simulable, world_of
from tools.recommend_actions import RecommendActionsInput, recommend_actions
from tools.scan_anomalies import ScanAnomaliesInput, scan_anomalies

KINDS = (
    "driver_shortage",
    "dispatch_delay",
    "severe_weather",
    "carrier_outage",
    "volume_surge",
    "traffic_disruption",
)


class LoopOutcome(BaseModel):
    """One approved action, what it promised and what it realised."""

    n: int = Field(description="Dispatch number of this action type (1 = its first).")
    day: date
    target: str
    outcome: TrackedOutcome
    flagged: bool = Field(description="Its type was flagged uncalibrated after this outcome.")
    over_promising: bool = Field(description="... and over-promising.")


class ClosedLoopReport(BaseModel):
    """What the approved actions of a closed-loop run realised."""

    world: WorldConfig
    actions: int
    coverage: float = Field(description="Share realised inside the interval as promised.")
    model_coverage: float = Field(description="Share inside the impact model's own interval.")
    first_flagged: dict[str, int | None] = Field(
        description="Action -> dispatch number after which it was first flagged uncalibrated."
    )
    first_over_promising: dict[str, int | None] = Field(
        description="Action -> dispatch number after which it was first called over-promising."
    )
    calibration: dict[str, ActionCalibration]
    outcomes: list[LoopOutcome]


def draw_incidents(
    cfg: WorldConfig, first_day: int, every: int = 1, kinds: tuple[str, ...] = KINDS
) -> list[IncidentSpec]:
    """Return one incident every ``every`` days from ``first_day``, drawn from the seed.

    Kind, target, size and length are drawn: store kinds at a random store, weather and
    traffic at a random region.
    """
    rng = np.random.default_rng([cfg.seed, 14])
    regions = cfg.region_ids
    out = []
    for day in range(first_day, cfg.days - 3, every):
        kind = kinds[int(rng.integers(len(kinds)))]
        days = int(rng.integers(1, 4))
        magnitude = round(float(rng.uniform(0.6, 1.5)), 2)
        if kind in ("severe_weather", "traffic_disruption"):
            region = regions[int(rng.integers(len(regions)))]
            out.append(IncidentSpec(kind=kind, region=region, start_day=day, days=days))
        else:
            store = cfg.store_ids[int(rng.integers(cfg.stores))]
            out.append(
                IncidentSpec(kind=kind, store=store, start_day=day, days=days, magnitude=magnitude)
            )
    return out


def run_closed_loop(
    db: Path,
    start: date,
    end: date,
    *,
    min_actions: int | None = None,
    until_over_promising: str | None = None,
    progress: bool = True,
) -> ClosedLoopReport:
    """Triage, approve and simulate every morning from ``start`` to ``end``.

    Stops early once ``min_actions`` actions have outcomes, or once the action
    ``until_over_promising`` is called over-promising.

    Raises:
        ValueError: ``db`` is not a generated world with its truth file.
    """
    world = world_of(db)
    ctx = ToolContext.for_duckdb(db)
    tracked: list[TrackedOutcome] = []
    outcomes: list[LoopOutcome] = []
    counts: dict[str, int] = {}
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    bar = Progress(
        *Progress.get_default_columns(), console=Console(stderr=True), disable=not progress
    )
    with bar:
        task = bar.add_task("closed loop", total=min_actions or len(days))
        for day in days:
            before = len(outcomes)
            scan = scan_anomalies(ctx, ScanAnomaliesInput(day=day, max_results=50))
            kept = triage_order([a.model_dump(mode="json") for a in scan.anomalies])
            for alarm in kept:
                try:
                    rec = recommend_actions(
                        ctx,
                        RecommendActionsInput(
                            target=alarm["target"], day=day, window_days=alarm["grain_days"]
                        ),
                    )
                except ToolError:
                    continue
                chosen = [a for a in rec.actions if simulable(a.action_id)]
                if not chosen:
                    continue
                stores = {a.action_id: a.stores or world.config.store_ids for a in chosen}
                applied = [
                    AppliedAction(
                        action_id=a.action_id,
                        day=day,
                        stores=stores[a.action_id],
                        value=next(iter(a.parameters.values())),
                    )
                    for a in chosen
                ]
                realised = realised_outcomes(world, applied)
                # as the plan counts: late deliveries removed, up to the excess it measured
                credits = credited([r.raw_avoided for r in realised], max(a.cap for a in chosen))
                for a, credit in zip(chosen, credits, strict=True):
                    model = a.model_avoided or (a.expected_avoided, *a.avoided_ci)
                    outcome = TrackedOutcome(
                        action_id=a.action_id,
                        model_avoided=model[0],
                        model_low=model[1],
                        model_high=model[2],
                        promised=a.expected_avoided,
                        promised_low=a.avoided_ci[0],
                        promised_high=a.avoided_ci[1],
                        realised=round(credit, 1),
                    )
                    tracked.append(outcome)
                    counts[a.action_id] = counts.get(a.action_id, 0) + 1
                    ctx.calibration = calibrate(tracked)
                    outcomes.append(
                        LoopOutcome(
                            n=counts[a.action_id],
                            day=day,
                            target=alarm["target"],
                            outcome=outcome,
                            flagged=ctx.calibration[a.action_id].uncalibrated,
                            over_promising=ctx.calibration[a.action_id].over_promising,
                        )
                    )
            # the bar counts what stops the loop: actions with outcomes, or days
            bar.update(task, advance=len(outcomes) - before if min_actions else 1)
            if min_actions is not None and len(outcomes) >= min_actions:
                break
            judged = ctx.calibration.get(until_over_promising or "")
            if judged is not None and judged.over_promising:
                break
    return _report(world.config, outcomes, ctx.calibration)


def _report(
    cfg: WorldConfig, outcomes: list[LoopOutcome], calibration: dict[str, ActionCalibration]
) -> ClosedLoopReport:
    n = len(outcomes)
    first: dict[str, int | None] = {a: None for a in calibration}
    over: dict[str, int | None] = {a: None for a in calibration}
    for o in outcomes:
        a = o.outcome.action_id
        first[a] = first[a] or (o.n if o.flagged else None)
        over[a] = over[a] or (o.n if o.over_promising else None)
    shown = [
        side(o.outcome.realised, o.outcome.promised_low, o.outcome.promised_high) == 0
        for o in outcomes
    ]
    model = [
        side(o.outcome.realised, o.outcome.model_low, o.outcome.model_high) == 0 for o in outcomes
    ]
    return ClosedLoopReport(
        world=cfg,
        actions=n,
        coverage=round(sum(shown) / n, 3) if n else 0.0,
        model_coverage=round(sum(model) / n, 3) if n else 0.0,
        first_flagged=first,
        first_over_promising=over,
        calibration=calibration,
        outcomes=outcomes,
    )


def markdown(report: ClosedLoopReport) -> str:
    """Return the report as Markdown: coverage, then each action type's track record."""
    lines = [
        "# Closed loop: approved actions, promised against realised",
        "",
        f"World: {report.world.stores} stores x {report.world.days} days, seed "
        f"{report.world.seed}; action efficacy {report.world.action_efficacy or 'as modelled'}.",
        "",
        f"- Actions approved and simulated: **{report.actions}**",
        f"- Realised inside the 80 % interval as promised: **{report.coverage:.0%}** "
        f"(the impact model's own interval: {report.model_coverage:.0%})",
        "",
        "| action | outcomes judged | inside | below | above | median realised/estimated "
        "| verdict now | first flagged at dispatch | first over-promising at |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a, c in sorted(report.calibration.items()):
        what = c.verdict()  # "too few outcomes to judge" below the fewest that can flag
        lines.append(
            f"| {a} | {c.outcomes} | {c.inside} | {c.below} | {c.above} | "
            f"{c.median_ratio if c.median_ratio is not None else '-'} | {what} | "
            f"{report.first_flagged.get(a) or '-'} | {report.first_over_promising.get(a) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def make_world(
    db: Path, cfg: WorldConfig, first_day: int, kinds: tuple[str, ...] = KINDS
) -> list[IncidentSpec]:
    """Generate the loop's world with an incident every day from ``first_day``."""
    incidents = draw_incidents(cfg, first_day, kinds=kinds)
    generate_world(db, cfg, incidents, progress=False)
    return incidents
