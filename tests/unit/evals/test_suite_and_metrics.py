"""Suite files and metric arithmetic (no agent runs)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from evals.metrics import Metric, aggregate, check, pass_k, thresholds
from evals.scoring import CaseResult, IncidentScore
from evals.suite import METRICS, SUITES_DIR, load_suite, suite_paths

SUITE = """\
name: mine
world: {stores: 10, days: 50, seed: 3, regions: 2, start_date: 2026-01-01}
incidents:
  - {kind: driver_shortage, store: S004, start_day: 40, days: 1, magnitude: 1.0}
  - {kind: severe_weather, region: R2, start_day: 44, days: 2}
cases:
  - {triage_day: 40}
  - {triage_day: 30}
  - {question: "why were deliveries late at store S004 on {date:40}?"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_the_issue_example_loads_with_its_fixed_keys(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, SUITE))
    assert suite.name == "mine" and len(suite.incidents) == 2
    assert suite.incidents[1].magnitude == 1.0  # the default
    assert [c.kind for c in suite.cases] == ["triage", "triage", "question"]
    assert suite.render(suite.cases[2].question or "") == (
        "why were deliveries late at store S004 on 2026-02-10?"
    )
    assert suite.day_of(40) == date(2026, 2, 10)
    assert suite.case_id(0) == "triage-1" and len(suite.sha256) == 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("cases:", "casess:"), "casess"),
        (("{triage_day: 30}", "{triage_day: 30, questoin: x}"), "questoin"),
        (("{triage_day: 30}", "{triage_day: 30, question: x}"), "exactly one of"),
        (("kind: driver_shortage", "kind: driver_strike"), "driver_strike"),
        (("store: S004", "region: R9, store: S004"), "exactly one of 'store' or 'region'"),
        (("name: mine", "name: mine\nthresholds: {recal: 0.5}"), "unknown metric 'recal'"),
        (("name: mine", "name: mine\nworld2: 1"), "world2"),
    ],
)
def test_a_bad_suite_names_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, SUITE.replace(*change))
    with pytest.raises(ValueError) as info:
        load_suite(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_suites_resolve_by_name_folder_file_or_all(tmp_path: Path) -> None:
    shipped = suite_paths("all")
    assert {p.stem for p in shipped} >= {
        "kind_driver_shortage",
        "kind_severe_weather",
        "kind_carrier_outage",
        "kind_volume_surge",
        "kind_dispatch_delay",
        "kind_traffic_disruption",
        "overlapping",
        "confounded",
        "quiet",
        "chat",
        "olist",
        "replay_smollm2",
    }
    assert suite_paths("quiet") == [SUITES_DIR / "quiet.yaml"]
    path = _write(tmp_path, SUITE)
    assert suite_paths(str(path)) == [path] and suite_paths(str(tmp_path)) == [path]
    with pytest.raises(ValueError, match="no suite 'nope'"):
        suite_paths("nope")
    for p in shipped:  # every shipped suite is valid
        load_suite(p)


def _incident(**kw: object) -> IncidentScore:
    base: dict[str, object] = {
        "incident": "I001",
        "kind": "driver_shortage",
        "true_cause": "driver_no_shows",
        "detected": True,
        "diagnosed": True,
        "top1": True,
        "top3": True,
        "action": "call_backup_drivers",
        "action_ok": True,
        "impact_estimated": 100.0,
        "impact_simulated": 110.0,
    }
    base.update(kw)
    return IncidentScore.model_validate(base)


def _case(case: str, passed: bool, **kw: object) -> CaseResult:
    base: dict[str, object] = {
        "case": case,
        "kind": "triage",
        "status": "waiting_approval",
        "passed": passed,
        "plan_valid": True,
        "groundedness": 1.0,
    }
    base.update(kw)
    return CaseResult.model_validate(base)


def test_metrics_are_shares_with_standard_errors(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, SUITE))
    results = [
        _case(
            "a",
            True,
            incidents=[_incident(forecast="fades"), _incident(persists=True, forecast="fades")],
            alarms=2,
            correct_alarms=2,
        ),
        _case(
            "b",
            False,
            incidents=[
                _incident(incident="I002", top1=False, action_ok=False, impact_simulated=200.0),
                _incident(incident="I003", detected=False, diagnosed=False, action=None),
            ],
            alarms=2,
            correct_alarms=1,
        ),
    ]
    m = aggregate(suite, results)
    assert set(m) <= set(METRICS)
    assert m["detection_recall"].value == 0.75
    assert m["detection_recall"].se == pytest.approx(math.sqrt(0.75 * 0.25 / 4), abs=1e-4)
    assert m["event_precision"].value == 0.75 and m["event_precision"].n == 4
    assert m["root_cause_top1"].value == pytest.approx(2 / 3, abs=1e-4)
    assert m["action_correct"].value == pytest.approx(2 / 3, abs=1e-4)
    # |100-110| <= 33 holds (twice), |100-200| <= 60 does not
    assert m["impact_within_30pct"].value == pytest.approx(2 / 3, abs=1e-4)
    # "fades" was right for the one-day incident, wrong for the one still on tomorrow;
    # the no-forecast baseline ("it persists") is right only for the latter
    assert m["persistence_correct"].value == 0.5
    assert m["baseline_no_forecast_persistence"].value == 0.5
    assert m["groundedness"].value == 1.0 and m["case_errors"].value == 0


def test_pass_k_needs_every_repeat_to_pass() -> None:
    results = [
        _case("a", True, repeat=0),
        _case("a", True, repeat=1),
        _case("b", True, repeat=0),
        _case("b", False, repeat=1),
    ]
    assert pass_k(results).value == 0.5


def test_thresholds_merge_file_defaults_with_suite_overrides(tmp_path: Path) -> None:
    text = SUITE + "thresholds: {event_precision: null, latency_s_max: 30, detection_recall: 0.5}\n"
    suite = load_suite(_write(tmp_path, text))
    bounds = thresholds("offline", suite)
    assert "event_precision" not in bounds
    assert bounds["latency_s"] == {"max": 30}
    assert bounds["detection_recall"] == {"min": 0.5}
    assert bounds["groundedness"] == {"min": 1.0}  # from evals/thresholds.yaml
    # replay gates only what a tiny model can be held to
    assert "detection_recall" not in thresholds("replay", load_suite(SUITES_DIR / "chat.yaml"))


def test_check_reports_each_metric_out_of_bounds() -> None:
    metrics = {
        "detection_recall": Metric(value=0.9, n=10),
        "latency_s": Metric(value=3.0, n=2),
        "root_cause_top1": Metric(value=None, n=0),  # not measured: not judged
    }
    bounds = {
        "detection_recall": {"min": 0.95},
        "latency_s": {"max": 2.0},
        "root_cause_top1": {"min": 0.9},
    }
    assert check(metrics, bounds) == ["detection_recall = 0.9 < 0.95", "latency_s = 3 > 2"]
    assert check(metrics, {"detection_recall": {"min": 0.9}}) == []
