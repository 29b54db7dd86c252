"""The benchmark suite's pure parts: measurements, the targets, growth fits and the Markdown.

Nothing here runs a benchmark: :mod:`evals.benchmarks.suite` measures, this module judges and
renders, so the unit tests can check the arithmetic without a world.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "skipped", "failed"]
SCALING = "scaling"
"""The pseudo-size of the scaling series' measurements (its exponents)."""


@dataclass(frozen=True)
class Measurement:
    """One measured number of one world (or a record of why it was not measured).

    Attributes:
        size: the world (``small``, ``medium``, ``national``) or ``scaling``.
        step: what ran (``generate``, ``triage``, ...).
        metric: what was measured (``triage_s``, ``triage_peak_rss``, ...).
        value: the number; None when skipped or failed.
        unit: its unit (``s``, ``MB``, ``x``, ``tokens``, ...).
        status: ``ok``, ``skipped`` (not attempted) or ``failed`` (attempted, raised).
        reason: why it was skipped or failed.
        note: how it was measured, when that needs saying (an extrapolation, an estimate).
    """

    size: str
    step: str
    metric: str
    value: float | None
    unit: str
    status: Status = "ok"
    reason: str | None = None
    note: str | None = None

    @classmethod
    def missing(
        cls, size: str, step: str, metric: str, unit: str, reason: str, *, failed: bool = False
    ) -> Measurement:
        """Return a measurement that was not taken, saying why."""
        status: Status = "failed" if failed else "skipped"
        return cls(size, step, metric, None, unit, status=status, reason=reason)


@dataclass(frozen=True)
class Target:
    """A goal for one measurement: ``metric`` of ``size`` ``op`` ``threshold``."""

    name: str
    size: str
    metric: str
    op: Literal["<=", ">="]
    threshold: float
    unit: str


@dataclass(frozen=True)
class TargetResult:
    """A target judged: passed is None when its measurement is missing (reason says why)."""

    target: Target
    value: float | None
    passed: bool | None
    reason: str | None = None


TARGETS: tuple[Target, ...] = (
    Target("medium triage time", "medium", "triage_s", "<=", 10.0, "s"),
    Target(
        "medium triage speedup over the naive pipeline", "medium", "naive_speedup", ">=", 10.0, "x"
    ),
    Target("medium triage peak RSS", "medium", "triage_peak_rss", "<=", 2048.0, "MB"),
    Target("national triage time", "national", "triage_s", "<=", 30.0, "s"),
    Target("national triage peak RSS", "national", "triage_peak_rss", "<=", 2048.0, "MB"),
    Target("medium KPI build / bare scan", "medium", "kpi_build_ratio", "<=", 2.0, "x"),
    Target("national KPI build / bare scan", "national", "kpi_build_ratio", "<=", 2.0, "x"),
    Target(
        "triage growth exponent, 500 -> 2000 stores", SCALING, "exponent_500_2000", "<=", 1.0, ""
    ),
    Target("LLM calls per triage (medium)", "medium", "llm_calls", "<=", 6.0, "calls"),
    Target(
        "prompt tokens per triage (medium)", "medium", "prompt_tokens", "<=", 12_000.0, "tokens"
    ),
    Target(
        "prompt tokens: naive agent / ours (medium)", "medium", "token_reduction", ">=", 5.0, "x"
    ),
)
"""What the suite is judged against (see ``make bench``)."""


def growth_exponent(
    points: Iterable[tuple[float, float]], lo: float | None = None, hi: float | None = None
) -> float | None:
    """Least-squares slope of log(time) against log(size): 1.0 is linear growth.

    Args:
        points: (size, seconds) pairs, e.g. (stores, triage seconds).
        lo: ignore points below this size.
        hi: ignore points above this size.

    Returns:
        The slope, or None with fewer than two distinct positive sizes in the range.
    """
    kept = [
        (math.log(x), math.log(y))
        for x, y in points
        if x > 0 and y > 0 and (lo is None or x >= lo) and (hi is None or x <= hi)
    ]
    if len({x for x, _ in kept}) < 2:
        return None
    mx = sum(x for x, _ in kept) / len(kept)
    my = sum(y for _, y in kept) / len(kept)
    var = sum((x - mx) ** 2 for x, _ in kept)
    cov = sum((x - mx) * (y - my) for x, y in kept)
    return cov / var


def find(measurements: Sequence[Measurement], size: str, metric: str) -> Measurement | None:
    """Return the last measurement of ``metric`` on ``size`` (None when there is none)."""
    for m in reversed(measurements):
        if m.size == size and m.metric == metric:
            return m
    return None


def judge(target: Target, measurements: Sequence[Measurement]) -> TargetResult:
    """Judge one target against the measurements (missing ones are skipped, with a reason)."""
    m = find(measurements, target.size, target.metric)
    if m is None:
        return TargetResult(target, None, None, f"{target.size}: not measured in this run")
    if m.status != "ok" or m.value is None:
        why = m.reason or "no value"
        return TargetResult(target, None, None, why if m.status == "skipped" else f"failed: {why}")
    if target.op == "<=":
        passed = m.value <= target.threshold
    else:
        passed = m.value >= target.threshold
    return TargetResult(target, m.value, passed)


def judge_all(
    measurements: Sequence[Measurement], targets: Sequence[Target] = TARGETS
) -> list[TargetResult]:
    """Judge every target."""
    return [judge(t, measurements) for t in targets]


def target_json(result: TargetResult) -> dict[str, Any]:
    """Return a judged target as JSON (``passed`` null and a reason when not measured)."""
    t = result.target
    return {
        "name": t.name,
        "size": t.size,
        "metric": t.metric,
        "target": f"{t.op} {fmt(t.threshold)} {t.unit}".strip(),
        "value": result.value,
        "unit": t.unit,
        "passed": result.passed,
        "status": "skipped" if result.passed is None else ("pass" if result.passed else "fail"),
        "reason": result.reason,
    }


def fmt(value: float | None) -> str:
    """Format a number for the table: thousands separated, three significant digits below 100."""
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


class _Notes:
    """Numbered footnotes of a table, one number per distinct text."""

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}

    def ref(self, text: str | None) -> str:
        """Return `` [n]`` for the text (numbering it on first use); empty without text."""
        if not text:
            return ""
        number = self.texts.setdefault(text, len(self.texts) + 1)
        return f" [{number}]"

    def lines(self) -> list[str]:
        """Return the footnotes as Markdown lines."""
        return [f"[{n}] {text}  " for text, n in self.texts.items()]


def _cell(m: Measurement | None, notes: _Notes) -> str:
    if m is None:
        return ""
    if m.status != "ok":
        return m.status + notes.ref(m.reason)
    return fmt(m.value) + notes.ref(m.note)


def measurements_table(measurements: Sequence[Measurement], notes: _Notes) -> list[str]:
    """Return the measurements as a Markdown table: a row per metric, a column per world."""
    sizes = list(dict.fromkeys(m.size for m in measurements if m.size != SCALING))
    rows = list(
        dict.fromkeys((m.step, m.metric, m.unit) for m in measurements if m.size != SCALING)
    )
    lines = [
        "| Step | Metric | Unit | " + " | ".join(sizes) + " |",
        "|---|---|---|" + "---:|" * len(sizes),
    ]
    for step, metric, unit in rows:
        cells = [_cell(find(measurements, size, metric), notes) for size in sizes]
        lines.append(f"| {step} | {metric} | {unit} | " + " | ".join(cells) + " |")
    return lines


def targets_table(results: Sequence[TargetResult], notes: _Notes) -> list[str]:
    """Return the judged targets as a Markdown table."""
    lines = ["| Target | Goal | Measured | Result |", "|---|---|---:|---|"]
    for r in results:
        t = r.target
        goal = f"{t.op} {fmt(t.threshold)} {t.unit}".strip()
        verdict = "skipped" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        lines.append(f"| {t.name} | {goal} | {fmt(r.value)} | {verdict}{notes.ref(r.reason)} |")
    return lines


def scaling_table(
    points: Sequence[dict[str, Any]], measurements: Sequence[Measurement], notes: _Notes
) -> list[str]:
    """Return the scaling series (triage time against stores) and its growth exponents."""
    lines = ["| Stores | Days | Deliveries | Triage s |", "|---:|---:|---:|---:|"]
    for p in points:
        seconds = fmt(p.get("triage_s")) if p.get("status") == "ok" else str(p.get("status"))
        lines.append(
            f"| {p['stores']:,} | {p['days']} | {fmt(p.get('deliveries'))} | "
            f"{seconds}{notes.ref(p.get('reason'))} |"
        )
    lines.append("")
    for metric, label in (
        ("exponent_500_2000", "Growth exponent, 500 -> 2000 stores"),
        ("exponent_all", "Growth exponent, all points"),
    ):
        m = find(measurements, SCALING, metric)
        lines.append(f"{label}: {_cell(m, notes) or 'not measured'}  ")
    return lines


def render_markdown(
    meta: dict[str, Any],
    measurements: Sequence[Measurement],
    targets: Sequence[TargetResult],
    scaling: Sequence[dict[str, Any]] | None,
) -> str:
    """Render the whole report: header, measurements, targets, scaling series, footnotes.

    Args:
        meta: ``commit``, ``when``, ``machine`` (``cpus``, ``python``, ``platform``) and
            ``notes`` (lines about method, shown under the header).
        measurements: every measurement, skipped and failed ones too.
        targets: the judged targets.
        scaling: the scaling series' points (None: not run).
    """
    notes = _Notes()
    machine = meta.get("machine", {})
    out = [
        f"# Benchmarks, commit {meta.get('commit', '?')} ({meta.get('when', '?')})",
        "",
        f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}, "
        f"{machine.get('platform', '?')}.  ",
        *[f"{line}  " for line in meta.get("notes", [])],
        "",
        *measurements_table(measurements, notes),
        "",
        "## Targets",
        "",
        *targets_table(targets, notes),
    ]
    if scaling is not None:
        out += ["", "## Scaling (triage)", "", *scaling_table(scaling, measurements, notes)]
    if notes.texts:
        out += ["", "## Notes", "", *notes.lines()]
    return "\n".join(out) + "\n"
