"""Agent health from the run records: latency, model calls, tokens, errors, decisions.

Figures are per UTC calendar day of the runs' start (wall clock, not service date): how the
agent behaved that day, whatever day its runs looked at.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import Engine, select

from agent.errors import DATA_STOP_PREFIX
from agent.storage.monitoring import Figure
from agent.storage.schema import runs

METRICS: dict[str, str] = {
    "runs": "runs started",
    "failed": "runs that failed (the agent's own failures)",
    "data_stops": "runs the data-health check stopped (the data's failures, not the agent's)",
    "latency_s": "median seconds from start to the run's last update (done, waiting, failed)",
    "llm_calls": "model calls",
    "input_tokens": "prompt tokens",
    "output_tokens": "completion tokens",
    "tool_errors": "tool calls that failed",
    "verify_failures": "plans the verifier rejected",
    "template_fallbacks": "runs whose plan came from the templates after the model's failed",
    "approval_rate": "share of decided actions approved (as proposed or edited); -1: none",
    "decision_hours": "median hours from a run's start to its decisions; -1: none",
}
"""Agent-health figures, by name, with what each counts."""


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def agent_figures(engine: Engine, start: date, end: date) -> list[Figure]:
    """Return the agent-health figures of the runs started from ``start`` to ``end``.

    A day whose runs all failed is flagged: the agent is answering nobody.
    """
    with engine.connect() as con:
        rows = (
            con.execute(
                select(runs).where(
                    runs.c.created_at >= start.isoformat(),
                    runs.c.created_at < (end + timedelta(days=1)).isoformat(),
                )
            )
            .mappings()
            .all()
        )
    by_day: dict[date, list[Any]] = defaultdict(list)
    for r in rows:
        by_day[datetime.fromisoformat(r["created_at"]).date()].append(r)
    out: list[Figure] = []
    for day, day_runs in sorted(by_day.items()):
        values = _day_values(day_runs)
        for name, value in values.items():
            # a day whose runs the data stopped is the data's alert (health), not the agent's
            flagged = (
                name == "failed" and value > 0 and value == values["runs"] - values["data_stops"]
            )
            out.append(
                Figure(
                    day=day,
                    kind="agent",
                    name=name,
                    value=value,
                    flagged=flagged,
                    severity="warn" if flagged else None,
                    message=f"every run started on {day} failed ({value:g})" if flagged else None,
                )
            )
    return out


def _data_stop(run: Any) -> bool:
    return str(run["error"] or "").startswith(DATA_STOP_PREFIX)


def _day_values(day_runs: list[Any]) -> dict[str, float]:
    traces = [json.loads(r["trace"] or "[]") for r in day_runs]
    decisions = [d for r in day_runs for d in json.loads(r["decisions"] or "[]")]
    decided = [d for d in decisions if d.get("decision") in ("approve", "edit", "reject")]
    waits = [
        _seconds(r["created_at"], d["at"]) / 3600
        for r in day_runs
        for d in json.loads(r["decisions"] or "[]")
        if d.get("at")
    ]
    return {
        "runs": float(len(day_runs)),
        "failed": float(sum(r["status"] == "failed" and not _data_stop(r) for r in day_runs)),
        "data_stops": float(sum(r["status"] == "failed" and _data_stop(r) for r in day_runs)),
        "latency_s": median(_seconds(r["created_at"], r["updated_at"]) for r in day_runs),
        "llm_calls": float(sum(e.get("kind") == "llm" for t in traces for e in t)),
        "input_tokens": float(sum(r["input_tokens"] or 0 for r in day_runs)),
        "output_tokens": float(sum(r["output_tokens"] or 0 for r in day_runs)),
        "tool_errors": float(
            sum(e.get("kind") == "tool" and bool(e.get("error")) for t in traces for e in t)
        ),
        "verify_failures": float(
            sum(e.get("node") == "verify_plan" and e.get("ok") is False for t in traces for e in t)
        ),
        "template_fallbacks": float(sum(any(e.get("fallback") for e in t) for t in traces)),
        "approval_rate": (
            sum(d["decision"] != "reject" for d in decided) / len(decided) if decided else -1.0
        ),
        "decision_hours": median(waits) if waits else -1.0,
    }
