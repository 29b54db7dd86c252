"""Monitor history and alert episodes: once per episode, re-runs change nothing, gaps kept."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.storage import monitoring as store
from agent.storage.monitoring import Figure
from agent.storage.runs import RunStore

D0 = date(2026, 3, 1)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return RunStore.open(path=tmp_path / "state.sqlite").engine


def drift(day: date, flagged: bool) -> list[Figure]:
    return [
        Figure(day=day, kind="drift", name="orders", value=9.0 if flagged else 0.5),
        Figure(day=day, kind="health", name="trusted", value=0.0 if flagged else 1.0),
    ] + (
        [
            Figure(
                day=day,
                kind="health",
                name="drift",
                subject="orders",
                flagged=True,
                severity="warn",
                message="orders drifted",
            )
        ]
        if flagged
        else []
    )


def run(engine: Engine, pattern: str) -> list[store.Alert]:
    """Feed one day per character: F flagged, . clean, ? orders not tested."""
    opened = []
    for i, c in enumerate(pattern):
        day = D0 + timedelta(days=i)
        figures = drift(day, c == "F")
        if c == "?":
            figures = [f for f in figures if f.kind != "drift"]
        unknown = frozenset({("health", "drift", "orders")}) if c == "?" else frozenset()
        store.record_day(engine, day, figures, "v1")
        opened += store.update_alerts(engine, day, figures, unknown)
    return opened


def test_an_episode_opens_once_and_closes_on_the_first_clean_day(engine: Engine) -> None:
    opened = run(engine, "..FFF..F")
    assert [a.opened_on for a in opened] == [D0 + timedelta(days=2), D0 + timedelta(days=7)]
    first, second = sorted(store.alerts(engine), key=lambda a: a.opened_on)
    assert (first.last_seen, first.closed_on) == (D0 + timedelta(days=4), D0 + timedelta(days=5))
    assert second.closed_on is None


def test_a_day_not_tested_neither_extends_nor_closes(engine: Engine) -> None:
    assert len(run(engine, "FF??F")) == 1
    (alert,) = store.alerts(engine)
    assert alert.closed_on is None and alert.last_seen == D0 + timedelta(days=4)


def test_a_re_run_over_the_same_days_opens_nothing(engine: Engine) -> None:
    run(engine, "..FF..")
    assert run(engine, "..FF..") == []
    assert len(store.alerts(engine)) == 1
    assert len(store.figures(engine, D0, D0 + timedelta(days=5), "drift")) == 6


def test_alerts_are_posted_once_even_when_over(engine: Engine) -> None:
    run(engine, ".FF..")
    pending = store.unposted(engine)
    assert len(pending) == 1 and pending[0].closed_on is not None
    store.mark_posted(engine, [pending[0].alert_id])
    assert store.unposted(engine) == []


def test_the_snapshot_is_the_latest_day(engine: Engine) -> None:
    assert store.snapshot(engine).day is None
    run(engine, ".F")
    snap = store.snapshot(engine)
    assert snap.day == D0 + timedelta(days=1)
    assert snap.trusted == 0.0 and snap.max_drift_z == 9.0
    assert snap.open_alerts == {"health": 1}


def test_runs_the_data_stopped_are_the_datas_failures_not_the_agents(tmp_path: Path) -> None:
    from agent.agent_health import agent_figures
    from agent.errors import DATA_STOP_PREFIX

    runs = RunStore.open(path=tmp_path / "runs.sqlite")
    at = "2026-03-01T07:00:00+00:00"
    for i, error in enumerate([f"{DATA_STOP_PREFIX}: no deliveries on 2026-02-28", None]):
        runs.save_run(
            run_id=f"r{i}",
            kind="triage",
            status="failed" if error else "done",
            error=error,
            created_at=at,
            updated_at=at,
        )
    values = {f.name: f for f in agent_figures(runs.engine, D0, D0)}
    assert values["data_stops"].value == 1 and values["failed"].value == 0
    assert not values["failed"].flagged
    # every run the agent itself failed: flagged, with the data's stops left out
    runs.save_run(run_id="r1", status="failed", error="the model endpoint timed out")
    values = {f.name: f for f in agent_figures(runs.engine, D0, D0)}
    assert values["failed"].value == 1 and values["failed"].flagged


def test_an_open_alert_says_what_its_latest_day_says(engine: Engine) -> None:
    def stale(day: date, days: int) -> list[Figure]:
        return [
            Figure(
                day=day,
                kind="health",
                name="feed",
                subject="conditions",
                flagged=True,
                severity="warn",
                message=f"the conditions feed ended {days} day(s) ago",
            )
        ]

    (opened,) = store.update_alerts(engine, D0, stale(D0, 1))
    assert store.update_alerts(engine, D0 + timedelta(days=1), stale(D0, 2)) == []
    (alert,) = store.alerts(engine, open_only=True)
    assert alert.alert_id == opened.alert_id and alert.message.endswith("2 day(s) ago")


def test_a_rerun_of_the_latest_day_closes_an_alert_its_new_figures_clear(engine: Engine) -> None:
    def record(flagged: bool) -> list[Figure]:
        return [
            Figure(
                day=D0,
                kind="outcomes",
                name="rebalance_dsp_volume",
                value=0.2,
                flagged=flagged,
                message="over-promising" if flagged else None,
            )
        ]

    store.update_alerts(engine, D0, record(True))
    assert store.alerts(engine, open_only=True)
    store.update_alerts(engine, D0, record(False))  # the same day, monitored again
    assert store.alerts(engine, open_only=True) == []
