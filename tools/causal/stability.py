"""Do the causes act on lateness as they did? Each cause's effect, window by window.

A cause's effect can change while its data looks normal: a new routing tool makes each
extra order per driver cost more lateness, a depot move makes traffic matter more. Neither
the drift check (the inputs did not move) nor the detector (each day looks like the model
says it should) sees it; the diagnosis would still credit causes with last quarter's effect.

For every cause node of the reviewed graph the backdoor-adjusted effect on the late rate
is estimated on each consecutive window of :data:`EFFECT_WINDOW_DAYS` days of store cells
(regions when no store can be judged daily): ordinary least squares of the late rate's
deviation from normal on the cause's and its graph parents' deviations, the estimand of
DoWhy's linear backdoor estimator that ``diagnose`` uses (statsmodels here: one regression
per cause and window, hundreds per check). The latest window is compared with the windows
before it: the spread of their estimates is the empirical null (it holds the window-to-
window variation of a linear model fitted on a nonlinear world, which each estimate's own
confidence interval leaves out: a test on those flagged 2 of 3 stable worlds). The latest
estimate is flagged when it falls outside the t prediction interval of the reference
windows' estimates at the Bonferroni level :data:`EFFECT_ALPHA` / (2 x causes tested).

Example:
    >>> result = effect_stability(DuckDBBackend("data/lastmile.duckdb"), date(2026, 7, 19))
    >>> [(e.label, e.reference_mean, e.latest, e.flagged) for e in result.effects]
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import statsmodels.api as sm
from pydantic import BaseModel, Field
from scipy import stats

from tools.analytics.cells import load_store_days, with_medians
from tools.analytics.scope import load_catalog
from tools.analytics.thresholds import (
    EFFECT_ALPHA,
    EFFECT_MIN_WINDOWS,
    EFFECT_WINDOW_DAYS,
    MIN_FIT_ROWS_PER_NODE,
)
from tools.causal.case import cells_for, judgeable
from tools.causal.diagnosis import deviations, prune
from tools.causal.graph import CausalGraph, load_graph
from tools.data.backend import Backend

__all__ = ["EffectStability", "StabilityResult", "effect_stability"]


class EffectStability(BaseModel):
    """One cause's effect in the latest window against the windows before it."""

    node: str
    label: str
    windows: int = Field(description="Reference windows with an estimate.")
    reference_mean: float = Field(description="Mean effect over the reference windows.")
    reference_sd: float = Field(description="Their standard deviation (the empirical null).")
    interval: tuple[float, float] = Field(
        description="Prediction interval of the latest window's effect at the test's level."
    )
    latest: float = Field(description="Effect in the latest window (late rate per unit).")
    t: float = Field(description="(latest - mean) / (sd x sqrt(1 + 1/windows)).")
    flagged: bool


class StabilityResult(BaseModel):
    """The stability check of one day: the latest window ends on it."""

    day: date
    level: str | None = Field(description="Cells the effects are estimated on.")
    window_days: int
    critical_t: float | None = Field(description="The Bonferroni t bar (None: not run).")
    alpha: float
    effects: list[EffectStability]
    not_assessed: list[str] = Field(default_factory=list)


def effect_stability(
    backend: Backend,
    day: date,
    *,
    window_days: int = EFFECT_WINDOW_DAYS,
    lookback_days: int = 365,
    alpha: float = EFFECT_ALPHA,
) -> StabilityResult:
    """Compare each cause's effect in the window ending on ``day`` with the windows before.

    Args:
        backend: the data.
        day: last day of the latest window.
        window_days: days per window.
        lookback_days: history read (windows before it are not used).
        alpha: family-wise level per check, split over the causes tested.

    Returns:
        Per cause: the reference windows' mean and spread, the latest effect, its t and
        whether it left the prediction interval; what could not be assessed, and why.
    """
    catalog = load_catalog(backend)
    start = max(catalog.first_day, day - timedelta(days=lookback_days - 1))
    store_days = load_store_days(backend, as_of=day, start=start)
    result = StabilityResult(
        day=day, level=None, window_days=window_days, critical_t=None, alpha=alpha, effects=[]
    )
    cells = _cells(backend, store_days, day)
    if cells is None:
        result.not_assessed.append("no store or region has the volume to be judged daily")
        return result
    span = (pd.Timestamp(day) - cells.date.min()).days + 1
    full = span // window_days  # whole windows only: a partial first one is left out
    window = (pd.Timestamp(day) - cells.date).dt.days // window_days  # 0: the latest
    cells, window = cells[window < full].reset_index(drop=True), window[window < full]
    window = window.reset_index(drop=True)
    reference = window >= 1
    if full - 1 < EFFECT_MIN_WINDOWS:
        result.not_assessed.append(
            f"{max(full - 1, 0)} earlier window(s) of {window_days} days, need "
            f"{EFFECT_MIN_WINDOWS}: the check starts {(EFFECT_MIN_WINDOWS + 1) * window_days} "
            "days after the data does"
        )
        return result
    graph = load_graph()
    devs, _, _ = deviations(cells, list(graph.nodes), reference)
    fitted, dropped = prune(graph, cells, devs, reference)
    result.level = str(cells["level"].iloc[0])
    estimates = {
        node: _estimates(devs, window, fitted, node, window_days) for node in fitted.causes
    }
    tested = {n: e for n, e in estimates.items() if 0 in e and len(e) - 1 >= EFFECT_MIN_WINDOWS}
    result.not_assessed += [f"{graph.nodes[n].label}: {why}" for n, why in dropped.items()]
    result.not_assessed += [
        f"{graph.nodes[n].label}: {max(len(e) - (0 in e), 0)} earlier window(s) with enough "
        f"complete cells, need {EFFECT_MIN_WINDOWS}" + ("" if 0 in e else " and the latest")
        for n, e in estimates.items()
        if n not in tested
    ]
    if not tested:
        return result
    for node, by_window in tested.items():
        ref = np.array([v for k, v in by_window.items() if k >= 1])
        k = len(ref)
        bar = float(stats.t.ppf(1 - alpha / (2 * len(tested)), k - 1))
        spread = float(ref.std(ddof=1)) * np.sqrt(1 + 1 / k)
        mean, latest = float(ref.mean()), by_window[0]
        t = (latest - mean) / spread if spread > 0 else 0.0
        result.critical_t = round(bar, 3)
        result.effects.append(
            EffectStability(
                node=node,
                label=graph.nodes[node].label,
                windows=k,
                reference_mean=round(mean, 6),
                reference_sd=round(float(ref.std(ddof=1)), 6),
                interval=(round(mean - bar * spread, 6), round(mean + bar * spread, 6)),
                latest=round(latest, 6),
                t=round(t, 3),
                flagged=abs(t) > bar,
            )
        )
    return result


def _cells(backend: Backend, store_days: pd.DataFrame, day: date) -> pd.DataFrame | None:
    """Return daily store cells (region cells when fewer than 2 stores can be judged)."""
    for level in ("store", "region"):
        keep = judgeable(store_days, level, 1, day)
        if len(keep) >= 2:
            cells = cells_for(store_days, level, 1, keep)
            if not cells.empty:
                return with_medians(cells, backend, as_of=day).reset_index(drop=True)
    return None


def _estimates(
    devs: pd.DataFrame, window: pd.Series, graph: CausalGraph, node: str, window_days: int
) -> dict[int, float]:
    """Return the node's adjusted effect on the target per window (windows with the data)."""
    adjust = [node, *graph.parents(node)]
    need = MIN_FIT_ROWS_PER_NODE * (len(adjust) + 1)
    out: dict[int, float] = {}
    frame = devs[[graph.target, *adjust]].assign(window=window.to_numpy())
    for k in sorted(frame.window.unique()):
        rows = frame[frame.window == k].dropna()
        if len(rows) < need or float(rows[node].std()) < 1e-12:
            continue
        x = sm.add_constant(rows[adjust].to_numpy(dtype=float), has_constant="add")
        fit = sm.OLS(rows[graph.target].to_numpy(dtype=float), x).fit()
        out[int(k)] = float(fit.params[1])
    return out
