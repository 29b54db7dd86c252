"""The monitor's report: Markdown, and charts with the series each one draws beside it.

Every chart ``<name>.png`` has ``<name>.csv`` next to it holding exactly the points drawn,
so a reader (or a test) can check a chart's numbers without reading pixels.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure as Figure_  # noqa: E402

from agent.agent_health import METRICS  # noqa: E402
from agent.monitoring import MonitorResult  # noqa: E402
from agent.storage.monitoring import Figure  # noqa: E402
from tools.analytics.thresholds import ACTION_INTERVAL


def _frame(figures: list[Figure], kind: str) -> pd.DataFrame:
    rows = [f.model_dump() for f in figures if f.kind == kind]
    cols = ["day", "name", "subject", "value", "threshold", "flagged", "message"]
    return pd.DataFrame(rows, columns=cols)


def _save(fig: Figure_, series: pd.DataFrame, out: Path, name: str) -> Path:
    png = out / f"{name}.png"
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    series.to_csv(out / f"{name}.csv", index=False)
    return png


def drift_chart(result: MonitorResult, out: Path) -> Path | None:
    """Draw each feature's robust drift z per day with the day's alert bar."""
    frame = _frame(result.figures, "drift")
    if frame.empty:
        return None
    series = frame.rename(columns={"name": "feature", "value": "z", "threshold": "bar"})[
        ["day", "feature", "z", "bar", "flagged"]
    ]
    fig, ax = plt.subplots(figsize=(9, 4))
    for feature, rows in series.groupby("feature"):
        ax.plot(pd.to_datetime(rows.day), rows.z.clip(-50, 50), label=str(feature), lw=1)
    hit = series[series.flagged.astype(bool)]
    ax.scatter(
        pd.to_datetime(hit.day),
        hit.z.clip(-50, 50),
        marker="x",
        color="red",
        s=40,
        label="drift (beyond the bar and a 25 % shift)",
        zorder=3,
    )
    bars = series.groupby("day").bar.first()
    ax.plot(pd.to_datetime(bars.index), bars.to_numpy(), "k--", lw=1, label="alert bar")
    ax.plot(pd.to_datetime(bars.index), -bars.to_numpy(), "k--", lw=1)
    ax.set_title("Drift of operational features (robust z, clipped at 50)")
    ax.set_ylabel("robust z")
    ax.legend(fontsize=7, ncol=3)
    return _save(fig, series, out, "drift")


def forecast_chart(result: MonitorResult, out: Path) -> Path | None:
    """Draw each tracked KPI's scaled forecast error per day and its trailing-week MASE."""
    frame = _frame(result.figures, "forecast")
    if frame.empty:
        return None
    series = frame.rename(columns={"name": "kpi", "value": "scaled_error"})[
        ["day", "kpi", "scaled_error"]
    ].sort_values(["kpi", "day"])
    series["mase_7d"] = series.groupby("kpi").scaled_error.transform(
        lambda s: s.rolling(7, min_periods=4).mean()
    )
    fig, ax = plt.subplots(figsize=(9, 4))
    for kpi, rows in series.groupby("kpi"):
        days = pd.to_datetime(rows.day)
        line = ax.plot(days, rows.mase_7d, lw=2, label=f"{kpi}: MASE over 7 days")[0]
        ax.scatter(days, rows.scaled_error, s=8, color=line.get_color(), alpha=0.5)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="seasonal naive")
    ax.set_title("Forecast error as actuals arrive (scaled by the seasonal-naive MAE)")
    ax.set_ylabel("scaled error")
    ax.legend(fontsize=8)
    return _save(fig, series, out, "forecast_error")


def alarm_chart(result: MonitorResult, out: Path) -> Path | None:
    """Draw the detector's anomalies per day against the ceiling's daily expectation."""
    frame = _frame(result.figures, "alarms")
    if frame.empty:
        return None
    series = frame.rename(columns={"value": "anomalies", "threshold": "ceiling_per_day"})[
        ["day", "anomalies", "ceiling_per_day", "flagged"]
    ]
    fig, ax = plt.subplots(figsize=(9, 3))
    days = pd.to_datetime(series.day)
    ax.bar(days, series.anomalies, color="tab:blue", label="anomalies")
    ax.plot(days, series.ceiling_per_day, "k--", lw=1, label="ceiling / 7 (the test is weekly)")
    ax.set_title("Anomaly detector: alarms per day")
    ax.legend(fontsize=8)
    return _save(fig, series, out, "alarm_rate")


def outcome_chart(result: MonitorResult, out: Path) -> Path | None:
    """Draw each dispatched action's realised effect against its promise and interval."""
    if not result.outcomes:
        return None
    series = pd.DataFrame(
        [
            {
                "action_id": o.action_id,
                "applied_on": o.applied_on,
                "promised": o.promised,
                "promised_low": o.promised_low,
                "promised_high": o.promised_high,
                "realised": o.realised,
                "inside_as_promised": o.inside,
                "sized_for": o.sized_for,
                "judged": o.judged,
                "method": o.method,
            }
            for o in result.outcomes
        ]
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for action_id, group in series.groupby("action_id"):
        promised = group.promised.to_numpy(dtype=float)
        left.errorbar(
            promised,
            group.realised.to_numpy(dtype=float),
            xerr=[
                promised - group.promised_low.to_numpy(dtype=float),
                group.promised_high.to_numpy(dtype=float) - promised,
            ],
            fmt="o",
            ms=4,
            lw=0.8,
            label=str(action_id),
        )
    top = float(max(series.promised_high.max(), series.realised.max(), 1.0))
    left.plot([0, top], [0, top], "k--", lw=1, label="realised = promised")
    left.set_xlabel("promised late deliveries avoided (80 % interval)")
    left.set_ylabel("realised")
    left.legend(fontsize=7)
    coverage = series.groupby("action_id").inside_as_promised.mean()
    right.barh([str(i) for i in coverage.index], coverage.to_numpy(dtype=float), color="tab:blue")
    right.axvline(ACTION_INTERVAL, color="k", ls="--", lw=1, label="nominal 80 %")
    right.set_xlim(0, 1)
    right.set_xlabel("share realised inside the interval as promised")
    right.legend(fontsize=7)
    fig.suptitle("Outcomes of approved actions: realised against promised")
    return _save(fig, series, out, "outcome_calibration")


def write_report(result: MonitorResult, out_dir: str | Path) -> Path:
    """Write ``monitor.md`` and its charts (PNG + CSV) into ``out_dir``; return the Markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = [
        c
        for c in (
            drift_chart(result, out),
            forecast_chart(result, out),
            alarm_chart(result, out),
            outcome_chart(result, out),
        )
        if c is not None
    ]
    if result.models:
        version_table(result).to_csv(out / "model_versions.csv", index=False)
    path = out / "monitor.md"
    path.write_text("\n".join(_markdown(result, charts)) + "\n", encoding="utf-8")
    return path


def _markdown(result: MonitorResult, charts: list[Path]) -> list[str]:
    untrusted = [h for h in result.health if not h.trusted]
    lines = [
        f"# Monitor: {result.start} to {result.day}",
        "",
        f"- Days checked: {len(result.health)}; data in doubt on {len(untrusted)}.",
        f"- Alerts opened by this run: {len(result.opened)}; open now: {len(result.open_alerts)}.",
        "",
        "## Open alerts",
        "",
    ]
    lines += [
        f"- since {a.opened_on} (last {a.last_seen}), {a.kind} `{a.name}` {a.subject}: {a.message}"
        for a in result.open_alerts
    ] or ["None."]
    lines += ["", "## Data health by day", ""]
    for h in untrusted:
        lines += [f"- {h.day}: " + "; ".join(f.message for f in h.findings)]
    partial = [h for h in result.health if h.not_assessed]
    if not untrusted:
        lines += ["Every day's data passed the checks it could run."]
    if partial:
        reasons = sorted({n.split(":")[0] for h in partial for n in h.not_assessed})
        last = partial[-1]
        lines += [
            "",
            f"Not every check could run on {len(partial)} of the {len(result.health)} days "
            f"({', '.join(reasons)}): e.g. {last.day}: {'; '.join(last.not_assessed)}.",
        ]
    if result.not_assessed:
        lines += ["", "## Not assessed", ""] + [f"- {n}" for n in result.not_assessed]
    lines += _forecast_lines(result) + _effect_lines(result) + _outcome_lines(result)
    lines += _model_lines(result)
    lines += _agent_lines(result)
    lines += ["", "## Charts", ""]
    lines += [f"![{c.stem}]({c.name}) (series: `{c.stem}.csv`)" for c in charts]
    return lines


def _outcome_lines(result: MonitorResult) -> list[str]:
    lines = ["", "## Outcomes of approved actions (realised against promised)", ""]
    if not result.outcomes:
        waiting = f" ({result.pending_outcomes} approved)" if result.pending_outcomes else ""
        return lines + [f"No approved action's day is in the data yet{waiting}."]
    lines += [
        "| action | outcomes judged | inside the model's 80 % interval | below | above "
        "| inside as promised | median realised / estimated | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for action_id, c in sorted(result.calibration.items()):
        verdict = c.verdict()
        ratio = "-" if c.median_ratio is None else f"{c.median_ratio:.2f}"
        lines.append(
            f"| {action_id} | {c.outcomes} | {c.inside} ({c.coverage:.0%}) | {c.below} | "
            f"{c.above} | {c.promised_coverage:.0%} | {ratio} | {verdict} |"
        )
    if result.pending_outcomes:
        lines += [
            "",
            f"{result.pending_outcomes} approved action(s) have no outcome yet: their day is "
            "after the monitored one or not in the data, or they promised no figure.",
        ]
    unjudged = sum(not o.judged for o in result.outcomes)
    if unjudged:
        lines += ["", f"{unjudged} outcome(s) recorded but not judged (see their caveat)."]
    caveats = sorted({o.caveat for o in result.outcomes if o.caveat})
    return lines + [""] + [f"Caveat: {c}." for c in caveats]


def _forecast_lines(result: MonitorResult) -> list[str]:
    decay = _frame(result.figures, "decay")
    lines = ["", "## Forecast error (MASE, last week against the four weeks before)", ""]
    if decay.empty:
        return lines + ["Not enough tracked days for the decay test yet."]
    last = decay.sort_values("day").groupby("name").tail(1)
    lines += [
        "| KPI | day | MASE last 7 days | MASE reference | decayed |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.name} | {r.day} | {r.value:.2f} | {r.threshold:.2f} | "
        f"{'yes' if r.flagged else 'no'} |"
        for r in last.itertuples()
    ]
    return lines


def _agent_lines(result: MonitorResult) -> list[str]:
    agent = _frame(result.figures, "agent")
    lines = ["", "## Agent health (by the day runs started)", ""]
    if agent.empty:
        return lines + ["No runs in the window."]
    table = agent.pivot_table(index="day", columns="name", values="value", aggfunc="first")
    cols = [c for c in METRICS if c in table.columns]
    lines += ["| day | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for day, row in table.iterrows():
        lines.append(f"| {day} | " + " | ".join(f"{row[c]:.3g}" for c in cols) + " |")
    if (table[cols] == -1).any().any():
        lines += ["", "-1: nothing to measure (no decision yet)."]
    return lines


KEY_FIGURES: dict[str, tuple[str, ...]] = {
    "detector": ("reference_alarm_rate", "window_alarm_rate", "window_score_p90", "score_ks"),
    "causal": ("r2", "nodes", "dropped"),
    "forecaster": ("mase", "mae"),
}
"""The validation figures the report's version table shows per kind (the CSV has all)."""

MAX_VERSION_ROWS = 30


def version_table(result: MonitorResult) -> pd.DataFrame:
    """Return one row per model version compared and validation figure (before and now)."""
    rows = []
    for v in result.models:
        head: dict[str, object] = {
            "kind": v.kind,
            "scope": v.scope,
            "changed": "+".join(v.changed),
            "fitted_at": v.latest.fitted_at.isoformat(),
            "data_version": v.latest.data_version,
            "code_version": v.latest.code_version,
            "previous_data_version": v.previous.data_version if v.previous else None,
            "previous_code_version": v.previous.code_version if v.previous else None,
            "rows": v.latest.rows,
        }
        for name, (before, now) in v.figures.items():
            rows.append({**head, "figure": name, "previous": before, "latest": now})
    return pd.DataFrame(rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _model_lines(result: MonitorResult) -> list[str]:
    lines = ["", "## Model versions (latest against the version before)", ""]
    if not result.models:
        return lines + ["No model fitted through this service yet."]
    lines += [
        "| model | scope | fitted | changed | rows | figures (before -> now) |",
        "|---|---|---|---|---|---|",
    ]
    shown = sorted(result.models, key=lambda v: v.latest.fitted_at, reverse=True)
    for v in shown[:MAX_VERSION_ROWS]:
        figures = "; ".join(
            f"{n} {_fmt(v.figures[n][1])}"
            if v.previous is None
            else f"{n} {_fmt(v.figures[n][0])} -> {_fmt(v.figures[n][1])}"
            for n in KEY_FIGURES[v.kind]
            if n in v.figures
        )
        lines.append(
            f"| {v.kind} | {v.scope} | {v.latest.fitted_at:%Y-%m-%d %H:%M} UTC | "
            f"{', '.join(v.changed)} | {v.latest.rows} | {figures} |"
        )
    if len(shown) > MAX_VERSION_ROWS:
        lines += ["", f"{len(shown) - MAX_VERSION_ROWS} more in `model_versions.csv`."]
    detectors = [v for v in shown if v.kind == "detector"]
    if detectors:
        f = detectors[0].latest.validation
        lines += [
            "",
            "Detector scores of the latest scan (robust distance, p50 / p90 / p99): reference "
            + " / ".join(_fmt(f.get(f"reference_score_p{q}")) for q in (50, 90, 99))
            + ", scanned window "
            + " / ".join(_fmt(f.get(f"window_score_p{q}")) for q in (50, 90, 99))
            + f"; two-sample KS D = {_fmt(f.get('score_ks'))} (p = {_fmt(f.get('score_ks_p'))}). "
            "The reference cells are the ones the detector was fitted on, so their distances "
            "run smaller than out-of-sample ones: read it with the alarm rate, which is tested.",
        ]
    return lines


def _effect_lines(result: MonitorResult) -> list[str]:
    stability = result.stability
    lines = ["", "## Causal effects (the latest window against the windows before)", ""]
    if stability is None or stability.critical_t is None:
        why = "; ".join(stability.not_assessed) if stability else "not run"
        return lines + [f"Not assessed: {why}."]
    bar = stability.critical_t
    lines += [
        f"How much each cause adds to the late rate per unit of its deviation from normal "
        f"(adjusted for its own causes), over {stability.level} cells, per "
        f"{stability.window_days}-day window. Moved: outside the range the earlier windows "
        f"predict (|t| above {bar:.1f}: family-wise {stability.alpha:g}, Bonferroni over the "
        "causes). Windows: earlier windows with enough complete cells for that cause.",
    ]
    if bar > LOW_POWER_T:
        lines += [
            "",
            f"Few earlier windows yet: the bar is |t| > {bar:.1f}, so only a very large change "
            "can show; it falls as history grows (about 6 with a year of windows).",
        ]
    lines += [
        "",
        "| cause | windows | before: mean (SD) | expected range | latest | t | moved |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {e.label} | {e.windows} | {_eff(e.reference_mean)} ({_eff(e.reference_sd)}) | "
        f"{_eff(e.interval[0])} to {_eff(e.interval[1])} | {_eff(e.latest)} | "
        f"{0.0 if abs(e.t) < 0.05 else e.t:.1f} | {'**yes**' if e.flagged else 'no'} |"
        for e in stability.effects
    ]
    return lines


LOW_POWER_T = 8.0
"""A stability bar above this many t units is said to be weak in the report (about 6 earlier
windows at 12 causes: three months of history)."""


def _eff(value: float) -> str:
    """Format an effect with four decimals (never scientific notation), no negative zero."""
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text
