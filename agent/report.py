"""Render a run for people: the plan as Markdown, and charts as PNG."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from agent.results import ToolResult
from agent.service import RunView  # noqa: E402
from agent.storage.runs import RunRecord  # noqa: E402
from agent.templates import CAUSE_LABELS, avoided_text  # noqa: E402
from agent.wording import target_name  # noqa: E402
from tools.analytics.cells import aggregate, load_store_days  # noqa: E402
from tools.analytics.scope import load_catalog as load_catalog_scope  # noqa: E402
from tools.catalog import load_catalog  # noqa: E402
from tools.core.errors import InsufficientDataError  # noqa: E402
from tools.data.backend import DuckDBBackend  # noqa: E402


def _delivery(sent: dict[str, Any]) -> str:
    """Say where a dispatched action's delivery stands."""
    status = sent.get("delivery_status")
    if status == "delivered":
        return ", delivered"
    if status == "retrying":
        return f", delivery failing ({sent.get('last_error')}), retried"
    return ", awaiting delivery" if status == "pending" else ""


def render_markdown(view: RunView, record: RunRecord) -> str:
    """Render the plan, its approval state and its provenance as Markdown."""
    lines = [f"# Action plan - run {view.run_id}", ""]
    status = {
        "waiting_approval": "waiting for approval",
        "done": "done",
        "failed": "failed",
        "running": "running",
    }[view.status]
    lines += [f"**Status:** {status}" + (f" ({view.error})" if view.error else ""), ""]
    plan = view.plan
    if plan is None:
        return "\n".join(lines + ["No plan was produced.", ""])

    def cite(ids: list[str]) -> str:
        return " [" + ", ".join(ids) + "]" if ids else ""

    lines += ["## Summary", "", plan.summary + cite(plan.summary_evidence_ids), ""]
    if plan.fallback:
        lines += [
            "_The model's plan failed verification twice; this is the verified template plan._",
            "",
        ]
    if plan.findings:
        lines += (
            ["## What happened", ""]
            + [f"- {f.text}{cite(f.evidence_ids)}" for f in plan.findings]
            + [""]
        )
    if plan.hypotheses:
        lines += ["## Why (causes, most likely first)", ""]
        lines += [
            f"- **{target_name(h.target)} - {CAUSE_LABELS.get(h.cause, h.cause)}** "
            f"({h.confidence} confidence): "
            f"{h.text}{cite(h.evidence_ids)}"
            for h in plan.hypotheses
        ]
        lines.append("")
    if plan.outlook:
        lines += (
            ["## What happens next", ""]
            + [f"- {o.text}{cite(o.evidence_ids)}" for o in plan.outlook]
            + [""]
        )
    if plan.actions:
        decided = {d["index"]: d for d in view.decisions}
        done = {a["idx"]: a for a in view.dispatched}
        catalog = load_catalog()
        lines += [
            "## What to do",
            "",
            "| # | action | where | setting | late deliveries avoided (80% interval) | cost "
            "| decision |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, a in enumerate(plan.actions):
            spec = catalog.get(a.action_id)
            ((param, value),) = a.lever.items()
            d = decided.get(i)
            decision = "pending" if d is None else f"{d['decision']} by {d['by']}"
            if d is not None and d.get("at"):
                decision += f" at {str(d['at'])[:16].replace('T', ' ')} UTC"
            if i in done:
                sent = done[i]
                decision += " - dispatched" + _delivery(sent)
                if d is not None and d["decision"] == "edit":
                    ((p, v),) = sent["parameters"].items()
                    decision += (
                        f" with {p} = {v:g} (~{sent['expected_avoided']:,.0f} avoided, "
                        f"${sent['cost']:,.0f})"
                    )
            point, lo, hi = avoided_text(a.expected_avoided, *a.avoided_ci)
            lines.append(
                f"| {i} | {spec.title} (`{a.action_id}`) | "
                f"{target_name(a.target)} | {param} = {value:g} | "
                f"{point} ({f'{lo} to {hi}' if lo != hi else 'capped at the excess'}) | "
                f"${a.cost:,.0f} | {decision} |"
            )
        lines += (
            [""]
            + [f"{i}. {a.rationale}{cite(a.evidence_ids)}" for i, a in enumerate(plan.actions)]
            + [""]
        )
    if plan.caveats:
        lines += ["## Caveats", ""] + [f"- {c}" for c in plan.caveats] + [""]
    lines += ["## Evidence", ""]
    lines += [f"- `{e['id']}` {e['summary']}" for e in record.evidence]
    prompts = ", ".join(f"{k} ({v[:10]})" for k, v in view.prompts.items()) or "none"
    lines += [
        "",
        f"_Model: {view.model or 'none'}; prompts: {prompts}; "
        f"tokens in/out: {view.input_tokens}/{view.output_tokens}._",
        "",
    ]
    return "\n".join(lines)


# Anything but letters, digits, "_", "." and "-" could be a path separator, or be refused by
# some file system (":" on Windows and macOS' Finder); ids are free text in real data.
_UNSAFE = re.compile(r"[^\w.-]")
_MAX_STEM = 80  # file names stay well under every file system's limit


def chart_names(targets: Iterable[str]) -> dict[str, str]:
    """Give each target a stem that is safe in file names: ``FR/PAR/003`` -> ``FR_PAR_003``.

    Unsafe characters become ``_``. When different targets would get the same stem (ignoring
    case, as macOS and Windows do), each of them gets a short hash of its id appended, so no
    chart overwrites another; the same targets always get the same names.

    Args:
        targets: the store or region ids to draw.

    Returns:
        Each target's stem.
    """
    stems = {t: _UNSAFE.sub("_", t)[:_MAX_STEM] or "_" for t in dict.fromkeys(targets)}
    shared = Counter(stem.casefold() for stem in stems.values())
    return {
        t: stem if shared[stem.casefold()] == 1 else f"{stem}_{_short_hash(t)}"
        for t, stem in stems.items()
    }


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def render_charts(results: Sequence[ToolResult], db: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw three charts for every diagnosed target; return the PNG paths.

    Its late rate with the anomaly marked, the forecast with its interval, and the cause
    contributions.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backend = DuckDBBackend(db)
    written: list[Path] = []
    diagnoses = [r.result for r in results if r.tool == "diagnose"]
    # A forecast's scope reads "store <id>" or "region <id>"; ids may hold spaces.
    forecasts = {
        _scope_target(r.result["scope"]): r.result for r in results if r.tool == "forecast"
    }
    names = chart_names(d["target"] for d in diagnoses)
    for d in diagnoses:
        target, day = d["target"], date.fromisoformat(d["day"])
        grain = int(d.get("grain_days", 1))
        series = _late_series(backend, d["level"], target, day, grain)

        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.plot(
            series.period, 100 * series.late_rate, marker=".", color="#4878a8", label="late rate"
        )
        ax.axhline(100 * d["expected"], color="#888", ls="--", lw=1, label="normal day")
        ax.plot(
            pd.DatetimeIndex([pd.Timestamp(day)]),
            [100 * d["value"]],
            "o",
            ms=9,
            color="#d1495b",
            zorder=5,
            label="anomaly",
        )
        ax.set_ylabel("late rate (%)")
        ax.set_title(
            f"{target_name(target)}: late rate"
            + (
                f" over {grain}-day windows, anomaly {d['window_start']}..{day}"
                if grain > 1
                else f", anomaly on {day}"
            )
        )
        ax.legend(loc="upper left", fontsize=8)
        fig.autofmt_xdate()
        written.append(_save(fig, out / f"kpi_{names[target]}.png"))

        fc = forecasts.get(target)
        if fc:
            pts = pd.DataFrame(fc["points"])
            pts["date"] = pd.to_datetime(pts["date"])
            recent = series.tail(21)
            fig, ax = plt.subplots(figsize=(8, 3.2))
            ax.plot(recent.period, 100 * recent.late_rate, color="#4878a8", label="history")
            ax.plot(pts.date, 100 * pts.yhat, color="#e07b39", label="forecast")
            ax.fill_between(
                pts.date,
                100 * pts.lower,
                100 * pts.upper,
                color="#e07b39",
                alpha=0.2,
                label="80% interval",
            )
            # the diagnosis's normal: one normal per scope in a plan and its charts
            ax.axhline(100 * d["expected"], color="#888", ls="--", lw=1, label="normal")
            ax.set_ylabel("late rate (%)")
            ax.set_title(f"{target}: forecast after {fc['as_of']} ({fc['persistence']})")
            ax.legend(loc="upper left", fontsize=8)
            fig.autofmt_xdate()
            written.append(_save(fig, out / f"forecast_{names[target]}.png"))

        # the same parts as the plan's text: the causes it names, and the rest, summing to
        # the excess (a factor that carries no real share is not drawn as a cause)
        named = {h["cause"]: h["contribution"] for h in d.get("hypotheses", [])}
        excess = d.get("excess", d["value"] - d["expected"])
        parts = [(CAUSE_LABELS.get(c, c), v) for c, v in named.items()]
        parts.append(("other factors and chance", excess - sum(named.values())))
        fig, ax = plt.subplots(figsize=(8, 0.6 * len(parts) + 1.4))
        ax.barh(
            [label for label, _ in reversed(parts)],
            [100 * v for _, v in reversed(parts)],
            color=["#d1495b" if v > 0 else "#8aa" for _, v in reversed(parts)],
        )
        ax.axvline(0, color="#444", lw=0.8)
        ax.set_xlabel("points of the late-rate excess")
        ax.set_title(f"{target} on {day}: why, {100 * excess:+.1f} pts (DoWhy attribution)")
        written.append(_save(fig, out / f"causes_{names[target]}.png"))
    return written


def _scope_target(scope: str) -> str:
    """Return the target a forecast scope names: 'store S1' -> 'S1', 'all stores' -> 'all'."""
    return "all" if scope == "all stores" else scope.split(" ", 1)[-1]


def _late_series(
    backend: DuckDBBackend, level: str, target: str, day: date, grain: int
) -> pd.DataFrame:
    """Return the target's late rate over five weeks to ``day``, in cells of ``grain`` days.

    As known at the end of ``day``, like the diagnosis it illustrates: ``period`` and
    ``late_rate`` columns.
    """
    stores: list[str] | None = None
    if level == "store":
        stores = [target]
    elif level == "region":
        stores = load_catalog_scope(backend).stores_in([target])
    start = day - timedelta(days=35 + grain)
    store_days = load_store_days(backend, as_of=day, start=start, stores=stores, medians=False)
    try:
        cells = aggregate(store_days, "chain", grain, last=day)
    except InsufficientDataError:
        # Nothing delivered yet as of that day: the chart shows the diagnosed point alone.
        return pd.DataFrame({"period": pd.DatetimeIndex([]), "late_rate": pd.Series(dtype=float)})
    cells = cells[cells.date >= pd.Timestamp(day - timedelta(days=35))]
    return pd.DataFrame({"period": cells.date, "late_rate": cells.late_rate})


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
