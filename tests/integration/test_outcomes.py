"""Outcomes of approved actions end to end: triage, approve, measure, monitor, feed back.

The small world's storm in R2 lasts two days (days 45-46): the triage of its first day
proposes actions for the next, when the storm is still on, and the world simulates them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from agent.errors import RunInputError
from agent.monitor_report import write_report
from agent.schemas import Decision
from agent.service import AgentService
from agent.settings import Settings
from agent.storage.monitoring import snapshot
from agent.storage.outcomes import OutcomeRecord, record_outcome
from tests.conftest import ALL_KINDS, SMALL_WORLD
from tools.analytics.scope import load_catalog
from tools.catalog.calibration import credited
from tools.core.context import ToolContext
from tools.data.backend import DuckDBBackend
from tools.data.olist import ingest_olist
from tools.data.synthetic import generate_world
from tools.data.synthetic.actions import AppliedAction, realised_outcomes, world_of
from tools.diagnose import DiagnoseInput, diagnose

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORM = date(2026, 2, 15)


@pytest.fixture
def service(small_world_db: Path, tmp_path: Path) -> Iterator[AgentService]:
    svc = AgentService(
        Settings(llm_offline=True), db=small_world_db, state_db=tmp_path / "s.sqlite"
    )  # type: ignore[call-arg]
    yield svc
    svc.close()


def _approve_all(service: AgentService, day: date, region: str) -> str:
    view = service.triage(day, "region", [region])
    plan = service.record(view.run_id).plan
    assert plan and plan["actions"], "the storm's triage proposes actions"
    decisions = [
        Decision(index=i, decision="approve", by="ops@example.com")
        for i in range(len(plan["actions"]))
    ]
    service.approve(view.run_id, decisions)
    return view.run_id


def test_an_approved_action_is_measured_once_against_the_simulated_world(
    service: AgentService, small_world_db: Path, tmp_path: Path
) -> None:
    run_id = _approve_all(service, STORM, "R2")
    measured = service.measure_outcomes()
    assert measured and {o.run_id for o in measured} == {run_id}
    record = service.record(run_id)
    plan = record.plan or {}
    world = world_of(small_world_db)
    # the estimate is judged on the day it was sized for (the storm's first day, its cell):
    # each action simulated there, in rank order, credited up to the excess it measured
    applied = [
        AppliedAction(
            action_id=o.action_id,
            day=date.fromisoformat(o.sized_for),
            stores=o.stores,
            value=plan["actions"][o.idx]["parameters"][0]["value"],
        )
        for o in measured
    ]
    caps = [
        e["numbers"][f"{o.action_id}.cap"]
        for o in measured
        for e in record.evidence
        if e["id"] in plan["actions"][o.idx]["evidence_ids"]
        and f"{o.action_id}.cap" in e["numbers"]
    ]
    truth = credited([t.raw_avoided for t in realised_outcomes(world, applied)], max(caps))
    for o, t in zip(measured, truth, strict=True):
        assert o.method == "simulated" and o.caveat is None and o.judged
        assert (o.sized_for, o.applied_on) == ("2026-02-15", "2026-02-16")
        assert o.realised == pytest.approx(t, abs=0.06)
        assert o.promised_low <= o.promised <= o.promised_high
    assert service.measure_outcomes() == []  # each action once

    result = service.monitor(date(2026, 2, 28), 28)
    assert {o.run_id for o in result.outcomes} == {run_id}
    write_report(result, tmp_path / "report")
    # a monitor as of a day before the action's shows none of it
    early = service.monitor(date(2026, 2, 14), 7)
    assert early.outcomes == [] and early.pending_outcomes == len(measured)
    series = pd.read_csv(tmp_path / "report" / "outcome_calibration.csv")
    assert (tmp_path / "report" / "outcome_calibration.png").stat().st_size > 5_000
    assert series.realised.tolist() == [o.realised for o in result.outcomes]
    assert series.promised.tolist() == [o.promised for o in result.outcomes]
    assert series.inside_as_promised.tolist() == [o.inside for o in result.outcomes]
    # /metrics reads the track record from the latest monitored day
    coverage = snapshot(service.store.engine).outcome_coverage
    assert coverage == {a: c.coverage for a, c in result.calibration.items()}
    text = (tmp_path / "report" / "monitor.md").read_text()
    assert "## Outcomes of approved actions" in text and "weather_protocol" in text


def test_an_over_promising_action_is_corrected_and_said_so_in_the_next_plan(
    service: AgentService,
) -> None:
    # ten earlier dispatches of the storm action that realised half of their promise
    for i in range(10):
        record_outcome(
            service.store.engine,
            OutcomeRecord(
                run_id=f"past{i}",
                idx=0,
                action_id="weather_protocol",
                target="R2",
                stores=["S011"],
                applied_on="2026-01-20",
                sized_for="2026-01-20",
                model_avoided=100.0,
                model_low=95.0,
                model_high=105.0,
                promised=100.0,
                promised_low=95.0,
                promised_high=105.0,
                realised=50.0 + i,
                method="simulated",
                dispatched_at=f"2026-01-20T08:0{i}:00+00:00",
                measured_at="2026-01-21T08:00:00+00:00",
            ),
        )
    calibration = service.calibration()["weather_protocol"]
    assert calibration.over_promising and calibration.median_ratio == pytest.approx(0.545)
    view = service.triage(STORM, "region", ["R2"])
    record = service.record(view.run_id)
    action = next(a for a in record.plan["actions"] if a["action_id"] == "weather_protocol")  # type: ignore[index]
    rec = next(
        e
        for e in record.evidence
        if e["tool"] == "recommend_actions" and "weather_protocol.model_avoided" in e["numbers"]
    )
    model = rec["numbers"]["weather_protocol.model_avoided"]
    assert action["expected_avoided"] == pytest.approx(
        min(model * 0.545, rec["numbers"]["weather_protocol.cap"]), abs=0.15
    )
    assert action["expected_avoided"] < model
    assert any(
        c.startswith("Track record of weather_protocol: ") and "over-promising" in c
        for c in record.plan["caveats"]
    )  # type: ignore[index]
    assert record.status == "waiting_approval"  # the corrected plan passed the verifier


def test_without_a_simulator_outcomes_are_measured_against_the_no_action_forecast(
    small_world_db: Path, tmp_path: Path
) -> None:
    # the same data without its truth file: what a team's own database looks like
    db = tmp_path / "ours.duckdb"
    shutil.copy(small_world_db, db)
    service = AgentService(Settings(llm_offline=True), db=db, state_db=tmp_path / "s.sqlite")  # type: ignore[call-arg]
    try:
        run_id = _approve_all(service, STORM, "R2")
        measured = service.measure_outcomes()
        evidence = service.record(run_id).evidence
    finally:
        service.close()
    assert measured
    ctx = ToolContext.for_duckdb(db)
    for o in measured:
        assert o.method == "no_action_forecast" and o.caveat and "faded" in o.caveat
        # sized on the storm's first day, applied on its second: kept out of the record
        assert not o.judged and "kept out of the action's track record" in o.caveat
    caps = [
        e["numbers"][f"{o.action_id}.cap"]
        for o in measured
        for e in evidence
        if f"{o.action_id}.cap" in e.get("numbers", {})
    ]
    (day,) = {o.applied_on for o in measured}
    left = diagnose(
        ctx, DiagnoseInput(target="R2", day=date.fromisoformat(day), window_days=1)
    ).late_excess
    together = min(max(max(caps) - max(left, 0.0), 0.0), max(caps))
    # the data cannot tell the run's actions apart: what they did together, shared by promise
    assert sum(o.realised for o in measured) == pytest.approx(together, abs=0.1 * len(measured))
    total = sum(o.promised for o in measured)
    for o in measured:
        assert o.realised == pytest.approx(together * o.promised / total, abs=0.06)


def test_a_continued_world_lives_the_approved_actions_in_its_data(tmp_path: Path) -> None:
    db = tmp_path / "lived.duckdb"
    generate_world(db, SMALL_WORLD, ALL_KINDS, progress=False, through=STORM)
    service = AgentService(Settings(llm_offline=True), db=db, state_db=tmp_path / "s.sqlite")  # type: ignore[call-arg]
    try:
        run_id = _approve_all(service, STORM, "R2")
        plan = service.record(run_id).plan or {}
        with pytest.raises(RunInputError, match=r"14 day\(s\) left after 2026-02-15"):
            service.advance_world(days=15)  # nothing appended: the world has 14 more days
        assert load_catalog(DuckDBBackend(db)).last_day == STORM
        (day,) = service.advance_world()
        assert day.day == STORM + timedelta(days=1) and day.deliveries > 0
        assert [a.action_id for a in day.carried_out] == [a["action_id"] for a in plan["actions"]]
        assert {s for a in day.carried_out for s in a.stores} <= set(
            load_catalog(DuckDBBackend(db)).stores_in(["R2"])
        )
        assert load_catalog(DuckDBBackend(db)).last_day == day.day
        # the next morning's data holds what was carried out; it is measured as before
        assert service.measure_outcomes(), "the approved actions' outcomes are measured"
    finally:
        service.close()
    real = tmp_path / "olist.duckdb"
    ingest_olist(Path(__file__).parents[1] / "fixtures" / "olist_2017h1", real)
    refused = (
        (real, "not a generated world that can be continued"),
        (tmp_path / "no.duckdb", "not exist"),
    )
    for path, why in refused:
        plain = AgentService(
            Settings(llm_offline=True),  # type: ignore[call-arg]
            db=path,
            state_db=tmp_path / "p.sqlite",
        )
        try:
            with pytest.raises(RunInputError, match=why):
                plain.advance_world()
        finally:
            plain.close()
