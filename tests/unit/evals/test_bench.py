"""The benchmark suite's pure parts: growth fit, target judgement, Markdown (no world, no run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.benchmarks.measure import Options, SizeRun
from evals.benchmarks.report import (
    SCALING,
    TARGETS,
    Measurement,
    Target,
    TargetResult,
    fmt,
    growth_exponent,
    judge,
    judge_all,
    render_markdown,
    target_json,
)
from evals.benchmarks.runner import StepRun, World, _failure
from evals.benchmarks.suite import parse_args

LE = Target("triage time", "medium", "triage_s", "<=", 10.0, "s")
GE = Target("speedup", "medium", "naive_speedup", ">=", 10.0, "x")


def _m(metric: str, value: float, size: str = "medium", unit: str = "s") -> Measurement:
    return Measurement(size, "triage", metric, value, unit)


# -- growth exponent --------------------------------------------------------------------------


@pytest.mark.parametrize("power", [0.5, 1.0, 1.7])
def test_growth_exponent_recovers_a_power_law(power: float) -> None:
    points = [(n, 0.01 * n**power) for n in (50, 200, 500, 2000)]
    assert growth_exponent(points) == pytest.approx(power)


def test_growth_exponent_fits_only_the_range_asked() -> None:
    # linear up to 500 stores, then quadratic
    points = [(50, 1.0), (200, 4.0), (500, 10.0), (2000, 10.0 * 16)]
    assert growth_exponent(points, 500, 2000) == pytest.approx(2.0)
    assert growth_exponent(points, hi=500) == pytest.approx(1.0)
    assert 1.0 < growth_exponent(points) < 2.0  # type: ignore[operator]


def test_growth_exponent_is_least_squares_over_noisy_points() -> None:
    points = [(100, 1.0), (200, 2.2), (400, 3.9)]
    slope = growth_exponent(points)
    assert slope is not None and 0.9 < slope < 1.05


@pytest.mark.parametrize(
    "points",
    [[], [(500, 3.0)], [(500, 3.0), (500, 4.0)], [(0, 1.0), (500, 2.0)], [(50, 0.0), (500, 2.0)]],
)
def test_growth_exponent_needs_two_distinct_positive_sizes(
    points: list[tuple[float, float]],
) -> None:
    assert growth_exponent(points) is None


# -- targets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "value", "passed"),
    [(LE, 9.9, True), (LE, 10.0, True), (LE, 10.1, False), (GE, 10.0, True), (GE, 9.99, False)],
)
def test_target_pass_and_fail(target: Target, value: float, passed: bool) -> None:
    result = judge(target, [_m(target.metric, value)])
    assert result.passed is passed
    assert result.value == value
    assert target_json(result)["status"] == ("pass" if passed else "fail")


def test_target_reads_its_own_size_and_the_last_measurement() -> None:
    measurements = [_m("triage_s", 50.0, size="small"), _m("triage_s", 20.0), _m("triage_s", 5.0)]
    assert judge(LE, measurements).value == 5.0


def test_a_missing_measurement_is_skipped_with_a_reason_never_passed() -> None:
    result = judge(LE, [_m("triage_s", 1.0, size="small")])
    assert result.passed is None and result.value is None
    assert result.reason == "medium: not measured in this run"
    record = target_json(result)
    assert record["passed"] is None and record["status"] == "skipped"


def test_a_skipped_or_failed_measurement_gives_its_reason() -> None:
    skipped = Measurement.missing("medium", "triage", "triage_s", "s", "left out with --skip")
    failed = Measurement.missing("medium", "triage", "triage_s", "s", "boom", failed=True)
    assert judge(LE, [skipped]).reason == "left out with --skip"
    assert judge(LE, [failed]).reason == "failed: boom"
    assert judge(LE, [failed]).passed is None


def test_every_target_is_judged() -> None:
    results = judge_all([_m("triage_s", 8.0), _m("llm_calls", 7.0, unit="calls")])
    assert len(results) == len(TARGETS)
    by_metric = {(r.target.size, r.target.metric): r.passed for r in results}
    assert by_metric[("medium", "triage_s")] is True
    assert by_metric[("medium", "llm_calls")] is False  # at most 6
    assert by_metric[("national", "triage_s")] is None
    assert by_metric[(SCALING, "exponent_500_2000")] is None


# -- Markdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0.00956, "0.00956"), (3.4567, "3.46"), (29.54, "29.5"), (9219.0, "9,219")],
)
def test_fmt(value: float | None, text: str) -> None:
    assert fmt(value) == text


def test_markdown_tables() -> None:
    measurements = [
        _m("triage_s", 8.25, size="small"),
        _m("triage_s", 12.5),
        Measurement("small", "naive", "naive_prophet_s", 40.0, "s", note="extrapolated"),
        Measurement.missing("medium", "naive", "naive_prophet_s", "s", "timed out", failed=True),
        Measurement(SCALING, "scaling", "exponent_all", 0.93, ""),
    ]
    targets = [TargetResult(LE, 12.5, False), TargetResult(GE, None, None, "no naive time")]
    scaling = [
        {"stores": 50, "days": 90, "deliveries": 1_350_000, "status": "ok", "triage_s": 2.0},
        {"stores": 2000, "days": 90, "status": "failed", "reason": "killed"},
    ]
    meta = {"commit": "abc1234", "when": "now", "machine": {"cpus": 2}, "notes": ["method"]}
    text = render_markdown(meta, measurements, targets, scaling)
    lines = text.splitlines()
    assert lines[0] == "# Benchmarks, commit abc1234 (now)"
    assert "| Step | Metric | Unit | small | medium |" in lines
    assert "| triage | triage_s | s | 8.25 | 12.5 |" in lines
    assert "| naive | naive_prophet_s | s | 40 [1] | failed [2] |" in lines
    assert "| triage time | <= 10 s | 12.5 | **FAIL** |" in lines
    assert "| speedup | <= 10 x | - | skipped [3] |" not in lines  # it is >=
    assert "| speedup | >= 10 x | - | skipped [3] |" in lines
    assert "| 50 | 90 | 1,350,000 | 2 |" in lines
    assert "| 2,000 | 90 | - | failed [4] |" in lines
    assert "Growth exponent, all points: 0.93  " in lines
    assert "Growth exponent, 500 -> 2000 stores: not measured  " in lines
    assert [line for line in lines if line.startswith("[")] == [
        "[1] extrapolated  ",
        "[2] timed out  ",
        "[3] no naive time  ",
        "[4] killed  ",
    ]
    assert not any(SCALING in line for line in lines if line.startswith("| Step"))


def test_markdown_without_scaling_has_no_scaling_section() -> None:
    text = render_markdown({}, [_m("triage_s", 1.0)], [], None)
    assert "## Scaling" not in text and "## Notes" not in text


# -- recording steps, worlds, command line ----------------------------------------------------


def test_a_step_result_becomes_measurements_and_a_failure_a_reason_for_each() -> None:
    run = SizeRun("small", Options(out=Path("unused")))
    result = {"bare_scan_s": 0.5, "build_s": 0.75, "read_s": 0.1, "rows": 10, "rows_read": 10}
    run.record("kpi", StepRun({**result, "peak_rss_mb": 300.0}, None, 2.0))
    ratio = next(m for m in run.measurements if m.metric == "kpi_build_ratio")
    assert ratio.value == pytest.approx(1.5) and ratio.unit == "x"
    run.record("scan", StepRun(None, "ValueError: no data", 1.0))
    scan = [m for m in run.measurements if m.step == "scan"]
    assert {m.metric for m in scan} == {"scan_s", "anomalies", "scan_peak_rss"}
    assert all(m.status == "failed" and m.reason == "ValueError: no data" for m in scan)
    run.record("spark", None, "no java")
    assert {m.status for m in run.measurements if m.step == "spark"} == {"skipped"}


def test_a_killed_step_says_so() -> None:
    assert "SIGKILL (out of memory?)" in _failure(-9, "")
    assert _failure(1, "Traceback\n  ...\nValueError: bad day\n\n") == "ValueError: bad day"


def test_world_keys_and_the_smaller_national_world() -> None:
    assert World(50, 90).key == "50x90_seed1"
    smaller = World(5000, 90).smaller()
    assert smaller.key == "5000x90_seed1_orders112"
    assert smaller.stores * smaller.days * smaller.mean_orders >= 50_000_000


def test_quick_and_hidden_tiny_sizes() -> None:
    quick = parse_args(["--quick"])
    assert quick.sizes == ["small", "medium"] and quick.scaling == []
    full = parse_args([])
    assert full.sizes == ["small", "medium", "national"] and full.scaling == [50, 200, 500, 2000]
    tiny = parse_args(["--sizes", "tiny", "--scaling", "6,12", "--skip", "spark,naive"])
    assert tiny.sizes == ["tiny"] and tiny.scaling == [6, 12]
    assert tiny.skip == frozenset({"spark", "naive"})
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "huge"])
    with pytest.raises(SystemExit):
        parse_args(["--skip", "coffee"])
