"""Incidents in the state store: continued, resolved, snoozed; approvals still in effect."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from agent.storage import incidents as inc
from agent.storage.approvals import DispatchedAction, enqueue
from agent.storage.runs import RunStore

D = date(2026, 3, 9)


def anomaly(target: str, level: str = "store", region: str = "R1") -> dict[str, object]:
    return {
        "level": level,
        "target": target,
        "region": region,
        "severity": "high",
        "drivers": ["late_rate"],
        "late_excess": 12.0,
    }


def every(_incident: inc.Incident) -> bool:
    return True


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore.open(path=tmp_path / "state.sqlite")


def test_consecutive_days_continue_one_incident_and_a_day_without_it_resolves_it(
    store: RunStore,
) -> None:
    e = store.engine
    for k in range(3):
        inc.track(e, date(2026, 3, 9 + k), [anomaly("S003")], every, f"run{k}")
    inc.track(e, date(2026, 3, 11), [anomaly("S003")], every, "rerun")  # a re-run: no change
    [one] = inc.list_incidents(e)
    assert (one.opened_on, one.last_seen, one.days_seen) == (D, date(2026, 3, 11), 3)
    inc.track(e, date(2026, 3, 12), [], lambda i: i.region == "R2", "elsewhere")
    assert inc.list_incidents(e)[0].status == "open"  # a triage of R2 does not cover S003
    inc.track(e, date(2026, 3, 12), [], every, "run3")
    assert inc.list_incidents(e) == []
    [gone] = inc.list_incidents(e, include_resolved=True)
    assert gone.resolved_on == date(2026, 3, 12)
    inc.track(e, date(2026, 3, 13), [anomaly("S003")], every, "run4")
    assert inc.list_incidents(e)[0].opened_on == date(2026, 3, 13)  # back: a new incident


def test_acknowledge_and_snooze_and_their_refusals(store: RunStore) -> None:
    e = store.engine
    [one] = inc.track(e, D, [anomaly("S003")], every, "run")
    assert inc.acknowledge(e, one.incident_id, "ana").acknowledged_by == "ana"
    snoozed = inc.snooze(e, one.incident_id, "ben", 2)
    assert snoozed.snoozed_until == date(2026, 3, 11)
    assert snoozed.state_on(date(2026, 3, 11)) == "snoozed"
    assert snoozed.state_on(date(2026, 3, 12)) == "acknowledged"  # the snooze ran out
    [other] = inc.track(e, D, [anomaly("S004")], every, "run")
    lapsed = inc.snooze(e, other.incident_id, "ben", 1)  # a snooze is not an acknowledgement
    assert lapsed.state_on(date(2026, 3, 11)) == "open"
    with pytest.raises(inc.IncidentError, match="1 to 30"):
        inc.snooze(e, one.incident_id, "ben", 0)
    with pytest.raises(inc.IncidentError, match="no incident"):
        inc.acknowledge(e, "nope", "ana")
    inc.track(e, date(2026, 3, 10), [], every, "run2")
    with pytest.raises(inc.IncidentError, match="resolved on 2026-03-10"):
        inc.acknowledge(e, one.incident_id, "ana")


def test_an_action_approved_for_an_ongoing_incident_is_in_effect(store: RunStore) -> None:
    e = store.engine
    inc.track(e, D, [anomaly("S003")], every, "run1")
    store.save_run(run_id="run1", kind="triage", day=D.isoformat(), status="done")
    store.save_run(run_id="old", kind="triage", day="2026-03-01", status="done")
    for run_id, decision in (("run1", "approve"), ("old", "approve")):
        enqueue(
            e,
            DispatchedAction(
                run_id=run_id,
                idx=0,
                action_id="call_backup_drivers",
                target="S003",
                parameters={"drivers": 2.0},
                expected_avoided=5.0,
                avoided_ci=(2.0, 8.0),
                cost=300.0,
                decision=decision,
                decided_by="ana",
                decided_at="2026-03-09T07:00:00+00:00",
                dispatched_at="2026-03-09T07:00:00+00:00",
                evidence_ids=["E1"],
            ),
        )
    [held] = inc.in_effect(e, D)  # the older run's approval was before the incident began
    assert (held.target, held.action_id, held.run_id) == ("S003", "call_backup_drivers", "run1")
    assert "approved by ana for 2026-03-09" in held.reason
    inc.track(e, date(2026, 3, 10), [], every, "run2")
    assert inc.in_effect(e) == []  # resolved: nothing is held any more


def test_a_long_quiet_spell_starts_a_new_incident_and_a_counted_day_changes_nothing(
    store: RunStore,
) -> None:
    e = store.engine
    inc.track(e, D, [anomaly("R2", level="region")], every, "storm1")
    inc.track(e, date(2026, 3, 10), [anomaly("R2", level="region")], every, "storm1b")
    inc.track(e, date(2026, 3, 11), [], every, "calm")  # resolved on the 11th
    # the run of the 10th resumed after its approval: that day is counted, nothing reopens
    inc.track(e, date(2026, 3, 10), [anomaly("R2", level="region")], every, "storm1b")
    assert inc.list_incidents(e) == []
    # flagged again 19 days later, with no triage in between: another storm, not the same
    inc.track(e, date(2026, 3, 30), [anomaly("R2", level="region")], every, "storm2")
    [storm] = inc.list_incidents(e)
    assert (storm.opened_on, storm.days_seen) == (date(2026, 3, 30), 1)
    inc.track(e, date(2026, 4, 2), [anomaly("R2", level="region")], every, "closed-days")
    [same] = inc.list_incidents(e)  # 3 days later (a closed weekend): still the same one
    assert (same.incident_id, same.days_seen) == (storm.incident_id, 2)
    inc.track(e, date(2026, 4, 9), [anomaly("R2", level="region")], every, "much later")
    [later] = inc.list_incidents(e)
    assert later.opened_on == date(2026, 4, 9)
    gone = [i for i in inc.list_incidents(e, include_resolved=True) if i.status == "resolved"]
    assert len(gone) == 2
