"""``lastmile backtest``: the morning triage replayed on a team's own history, day by day.

Before the schedule is switched on, a team wants to know how many alerts a morning brings.
Each day from ``--from`` to ``--to`` is triaged as that morning would have been: the anomaly
scan as of the end of the day (nothing known later is used), then the triage's own ordering
and filtering (:func:`agent.nodes.triage.triage_order`: a region flagged for one store's bad
day is the store's alert). The alert load is reported per 100 store-weeks, by level and by
day; where the data is a synthetic world with ground truth, also the share of alerts that
touch a labelled event (precision) and the injected incidents of the period found (recall).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console
from rich.progress import track

from agent.errors import RunInputError
from agent.nodes.triage import triage_order
from evals.groundtruth import load_truth, score_detection
from tools.analytics.scope import load_catalog
from tools.core.context import ToolContext
from tools.data.backend import DuckDBBackend
from tools.data.truth_file import TruthMissingError
from tools.data.views import LateRule
from tools.scan_anomalies import Anomaly, ScanAnomaliesInput, scan_anomalies


class BacktestDay(BaseModel):
    """One replayed morning."""

    day: date
    stores: int
    alerts: int
    targets: list[str]


class TruthScore(BaseModel):
    """The alerts against a synthetic world's ground truth."""

    precision: float
    """Share of alerts touching an injected or labelled natural event."""
    recall: float | None
    """Share of the period's injected incidents some alert touched (None: none injected)."""
    incidents: int
    detected: int


class BacktestReport(BaseModel):
    """The alert load of the replayed mornings."""

    start: date
    end: date
    days: list[BacktestDay]
    store_weeks: float
    alerts: int
    alerts_per_100_store_weeks: float
    by_level: dict[str, int]
    truth: TruthScore | None


def backtest(db: Path, start: date, end: date, *, late: LateRule | None = None) -> BacktestReport:
    """Replay the morning triage's detection on each day from ``start`` to ``end``.

    Raises:
        RunInputError: the period is empty or outside the data.
    """
    backend = DuckDBBackend(db, late=late or LateRule())
    catalog = load_catalog(backend)
    if start > end:
        raise RunInputError(f"--from {start} is after --to {end}")
    if start < catalog.first_day or end > catalog.last_day:
        raise RunInputError(
            f"{start}..{end} is not inside the data ({catalog.first_day}..{catalog.last_day})"
        )
    ctx = ToolContext(backend=backend)
    days: list[BacktestDay] = []
    alarms: list[Anomaly] = []
    n = (end - start).days + 1
    mornings = [start + timedelta(days=i) for i in range(n)]
    # progress on stderr: stdout may carry the JSON report
    for day in track(mornings, description="replaying mornings", console=Console(stderr=True)):
        scan = scan_anomalies(ctx, ScanAnomaliesInput(day=day, max_results=50))
        kept = triage_order([a.model_dump(mode="json") for a in scan.anomalies])
        ids = {(a["target"], a["date"]) for a in kept}
        chosen = [a for a in scan.anomalies if (a.target, a.date.isoformat()) in ids]
        alarms += chosen
        days.append(
            BacktestDay(
                day=day,
                stores=scan.store_days_scanned,
                alerts=len(chosen),
                targets=[a.target for a in chosen],
            )
        )
    store_weeks = sum(d.stores for d in days) / 7
    levels: dict[str, int] = {}
    for a in alarms:
        levels[a.level] = levels.get(a.level, 0) + 1
    return BacktestReport(
        start=start,
        end=end,
        days=days,
        store_weeks=store_weeks,
        alerts=len(alarms),
        alerts_per_100_store_weeks=100 * len(alarms) / store_weeks if store_weeks else 0.0,
        by_level=levels,
        truth=_truth(db, alarms, start, end),
    )


def _truth(db: Path, alarms: list[Anomaly], start: date, end: date) -> TruthScore | None:
    try:
        truth = load_truth(db)
    except TruthMissingError:
        return None  # real data: no ground truth
    score = score_detection(alarms, truth)
    inc = truth.injected
    in_period = set(
        inc[
            (inc.start_date.astype(str) <= end.isoformat())
            & (inc.end_date.astype(str) >= start.isoformat())
        ].incident_id
    )
    detected = sum(score.detected.get(i, False) for i in in_period)
    return TruthScore(
        precision=score.precision,
        recall=detected / len(in_period) if in_period else None,
        incidents=len(in_period),
        detected=detected,
    )


def markdown(report: BacktestReport) -> str:
    """Return the report for people: the load, its split, and the busiest mornings."""
    lines = [
        f"# Backtest of the morning triage: {report.start} to {report.end}",
        "",
        f"- Mornings replayed: {len(report.days)}; store-weeks: {report.store_weeks:.1f}",
        f"- Alerts: {report.alerts} (**{report.alerts_per_100_store_weeks:.2f} per 100 "
        "store-weeks**); by level: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report.by_level.items())) or "none"),
        f"- Mornings with at least one alert: {sum(d.alerts > 0 for d in report.days)}",
    ]
    if report.truth is not None:
        t = report.truth
        recall = f"{t.recall:.2f} ({t.detected}/{t.incidents})" if t.recall is not None else "-"
        lines.append(
            f"- Against the world's ground truth: precision {t.precision:.2f}, recall {recall}"
        )
    busiest = sorted(report.days, key=lambda d: -d.alerts)[:5]
    lines += ["", "| busiest mornings | alerts | targets |", "|---|---|---|"]
    lines += [f"| {d.day} | {d.alerts} | {', '.join(d.targets)} |" for d in busiest if d.alerts]
    return "\n".join(lines) + "\n"
