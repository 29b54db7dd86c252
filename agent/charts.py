"""The charts of a run: their numbers, and the same numbers drawn as PNG files.

The web page draws the numbers (with a table as the text alternative); ``--out-dir`` and
reports get the PNG files.

For every diagnosed target: its late rate with the anomaly marked, the forecast with its
80 % interval, and the cause contributions (the parts the plan's text names, and the rest,
summing to the excess). Values are in display units: percent and percentage points.
"""

from __future__ import annotations

import hashlib
import io
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
from pydantic import BaseModel  # noqa: E402

from agent.results import ToolResult  # noqa: E402
from agent.templates import CAUSE_LABELS  # noqa: E402
from agent.wording import target_name  # noqa: E402
from tools.analytics.cells import aggregate, load_store_days  # noqa: E402
from tools.analytics.scope import load_catalog as load_catalog_scope  # noqa: E402
from tools.core.errors import InsufficientDataError  # noqa: E402
from tools.data.backend import Backend  # noqa: E402


class Point(BaseModel):
    """One value of a series (percent)."""

    date: str
    value: float


class KpiChart(BaseModel):
    """The late rate over five weeks with the diagnosed cell marked."""

    title: str
    unit: str = "%"
    normal: float
    points: list[Point]
    anomaly: Point
    within_normal: bool = False
    """The marked day was diagnosed because it was asked about; its excess is within chance."""


class ForecastPoint(BaseModel):
    """A forecast day: expected late rate and its 80 % interval (percent)."""

    date: str
    yhat: float
    lower: float
    upper: float


class ForecastChart(BaseModel):
    """Recent history and the forecast after the diagnosed day."""

    title: str
    unit: str = "%"
    normal: float
    history: list[Point]
    points: list[ForecastPoint]


class Part(BaseModel):
    """One cause's share of the excess (points)."""

    label: str
    value: float


class CauseChart(BaseModel):
    """The excess split into the named causes and the rest."""

    title: str
    unit: str = "pts"
    parts: list[Part]


class ChartSet(BaseModel):
    """The three charts of one diagnosed target."""

    target: str
    kpi: KpiChart
    forecast: ForecastChart | None = None
    causes: CauseChart


def chart_sets(results: Sequence[ToolResult], backend: Backend) -> list[ChartSet]:
    """Return the chart numbers of every diagnosed target of a run, in diagnosis order."""
    forecasts = {
        _scope_target(r.result["scope"]): r.result for r in results if r.tool == "forecast"
    }
    out = []
    for r in results:
        if r.tool != "diagnose":
            continue
        d = r.result
        target, day = d["target"], date.fromisoformat(d["day"])
        grain = int(d.get("grain_days", 1))
        series = _late_series(backend, d["level"], target, day, grain)
        points = [
            Point(date=p.date().isoformat(), value=round(100 * v, 4))
            for p, v in zip(series.period, series.late_rate, strict=True)
        ]
        within = bool(d.get("within_normal", False))
        mark = "diagnosed" if within else "anomaly"
        when = (
            f" over {grain}-day windows, {mark} {d['window_start']}..{day}"
            if grain > 1
            else f", {mark} on {day}" + (" (within normal)" if within else "")
        )
        kpi = KpiChart(
            title=f"{target_name(target)}: late rate{when}",
            normal=round(100 * d["expected"], 4),
            points=points,
            anomaly=Point(date=day.isoformat(), value=round(100 * d["value"], 4)),
            within_normal=within,
        )
        out.append(
            ChartSet(
                target=target,
                kpi=kpi,
                forecast=_forecast(forecasts.get(target), points, d, target),
                causes=_causes(d, target, day),
            )
        )
    return out


def _forecast(
    fc: dict[str, Any] | None, points: list[Point], d: dict[str, Any], target: str
) -> ForecastChart | None:
    if not fc:
        return None
    return ForecastChart(
        title=f"{target}: forecast after {fc['as_of']} ({fc['persistence']})",
        # the diagnosis's normal: one normal per scope in a plan and its charts
        normal=round(100 * d["expected"], 4),
        history=points[-21:],
        points=[
            ForecastPoint(
                date=str(p["date"])[:10],
                yhat=round(100 * p["yhat"], 4),
                lower=round(100 * p["lower"], 4),
                upper=round(100 * p["upper"], 4),
            )
            for p in fc["points"]
        ],
    )


def _causes(d: dict[str, Any], target: str, day: date) -> CauseChart:
    # a factor that carries no real share is not drawn as a cause
    named = {h["cause"]: h["contribution"] for h in d.get("hypotheses", [])}
    excess = d.get("excess", d["value"] - d["expected"])
    parts = [Part(label=CAUSE_LABELS.get(c, c), value=round(100 * v, 4)) for c, v in named.items()]
    parts.append(
        Part(label="other factors and chance", value=round(100 * (excess - sum(named.values())), 4))
    )
    return CauseChart(
        title=f"{target} on {day}: why, {100 * excess:+.1f} pts (DoWhy attribution)", parts=parts
    )


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


def render_charts(
    results: Sequence[ToolResult], backend: Backend, out_dir: str | Path
) -> list[Path]:
    """Draw the three charts of every diagnosed target as PNG files; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sets = chart_sets(results, backend)
    names = chart_names(s.target for s in sets)
    written: list[Path] = []
    for s in sets:
        written.append(_save(_draw_kpi(s.kpi), out / f"kpi_{names[s.target]}.png"))
        if s.forecast is not None:
            written.append(
                _save(_draw_forecast(s.forecast), out / f"forecast_{names[s.target]}.png")
            )
        written.append(_save(_draw_causes(s.causes), out / f"causes_{names[s.target]}.png"))
    return written


def kpi_png(kpi: KpiChart) -> bytes:
    """Draw a chart set's late-rate chart as PNG bytes (for chat uploads)."""
    fig = _draw_kpi(kpi)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def kpi_alt_text(kpi: KpiChart) -> str:
    """Describe a late-rate chart in words, from the numbers it draws (its alt text)."""
    first, last = (kpi.points[0].date, kpi.points[-1].date) if kpi.points else ("", "")
    peak = max(kpi.points, key=lambda p: p.value) if kpi.points else kpi.anomaly
    marked = "diagnosed day, within normal" if kpi.within_normal else "anomaly"
    return (
        f"{kpi.title}. Line chart of the late rate from {first} to {last}, "
        f"{len(kpi.points)} points; normal {kpi.normal:.1f}{kpi.unit} (dashed line); "
        f"highest {peak.value:.1f}{kpi.unit} on {peak.date}; {marked} {kpi.anomaly.value:.1f}"
        f"{kpi.unit} on {kpi.anomaly.date} (red dot)."
    )


def _dates(points: Iterable[Point | ForecastPoint]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(p.date) for p in points])


def _draw_kpi(kpi: KpiChart) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    values = [p.value for p in kpi.points]
    ax.plot(_dates(kpi.points), values, marker=".", color="#4878a8", label="late rate")
    ax.axhline(kpi.normal, color="#888", ls="--", lw=1, label="normal day")
    ax.plot(
        _dates([kpi.anomaly]),
        [kpi.anomaly.value],
        "o",
        ms=9,
        color="#d1495b",
        zorder=5,
        label="diagnosed day (within normal)" if kpi.within_normal else "anomaly",
    )
    ax.set_ylabel("late rate (%)")
    ax.set_title(kpi.title)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def _draw_forecast(fc: ForecastChart) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(_dates(fc.history), [p.value for p in fc.history], color="#4878a8", label="history")
    dates = _dates(fc.points)
    ax.plot(dates, [p.yhat for p in fc.points], color="#e07b39", label="forecast")
    ax.fill_between(
        dates,
        [p.lower for p in fc.points],
        [p.upper for p in fc.points],
        color="#e07b39",
        alpha=0.2,
        label="80% interval",
    )
    ax.axhline(fc.normal, color="#888", ls="--", lw=1, label="normal")
    ax.set_ylabel("late rate (%)")
    ax.set_title(fc.title)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def _draw_causes(causes: CauseChart) -> Any:
    parts = list(reversed(causes.parts))
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(parts) + 1.4))
    ax.barh(
        [p.label for p in parts],
        [p.value for p in parts],
        color=["#d1495b" if p.value > 0 else "#8aa" for p in parts],
    )
    ax.axvline(0, color="#444", lw=0.8)
    ax.set_xlabel("points of the late-rate excess")
    ax.set_title(causes.title)
    return fig


def _scope_target(scope: str) -> str:
    """Return the target a forecast scope names: 'store S1' -> 'S1', 'all stores' -> 'all'."""
    return "all" if scope == "all stores" else scope.split(" ", 1)[-1]


def _late_series(backend: Backend, level: str, target: str, day: date, grain: int) -> pd.DataFrame:
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
