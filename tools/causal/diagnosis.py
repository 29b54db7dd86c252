"""Why was a cell late? Fit the reviewed graph on the data that exists, then attribute.

For the anomalous cell (a store, region or the chain over a day or a window), every variable
of the reviewed causal graph is compared with its normal (its seasonal baseline, learned from
the cells before the window). A linear structural causal model of the graph, fitted on the
deviations of comparable cells (DoWhy ``gcm``), attributes the late-rate excess to each
node's own, unexplained part (``attribute_anomalies``): rain that caused no-shows is credited
to the rain, not to the no-shows. Each candidate cause also gets a backdoor-adjusted effect
estimate (DoWhy ``CausalModel``) with a confidence interval; the causes a diagnosis names
(those carrying at least :data:`MIN_CAUSE_SHARE` of the excess, top three) are refuted too,
once per fitted model: refuting every factor of a 12-factor graph doubled a diagnosis.

The graph is fitted on what the data carries: a factor whose data is absent, constant or a
duplicate of another is dropped (its parents act on its children directly) and its cause is
listed as not assessed, so a world without a weather feed says "weather: not assessed"
instead of failing or blaming something else.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tools.analytics.baselines import KPIS, kpi_residuals, region_residuals
from tools.analytics.cells import Level
from tools.analytics.panel import finite
from tools.analytics.thresholds import (
    ADVERSE_MIN_Z,
    CONFIDENCE_HIGH_SHARE,
    CONFIDENCE_MEDIUM_SHARE,
    DUPLICATE_CORRELATION,
    MIN_CAUSE_SHARE,
    MIN_FIT_ROWS_PER_NODE,
    MIN_LATE_EXCESS,
    WITHIN_NORMAL_Z,
)
from tools.causal.effects import EffectEstimate, Refutation, estimate_effect
from tools.causal.findings import (
    CauseFinding,
    Confidence,
    Diagnosis,
    Hypothesis,
    NotAssessed,
)
from tools.causal.graph import CausalGraph
from tools.causal.scm import FittedScm, attribute, fit_scm, linear_attribution
from tools.core.errors import InsufficientDataError


@dataclass
class FittedModel:
    """The graph as fitted on one set of cells, with per-cause effect estimates."""

    graph: CausalGraph
    scm: FittedScm
    effects: dict[str, EffectEstimate]
    dropped: dict[str, str]  # node -> why it is not assessed
    fit_level: Level
    rows: int
    data: pd.DataFrame = field(default_factory=pd.DataFrame)  # the deviations fitted on
    refuted: dict[tuple[str, int], list[Refutation]] = field(default_factory=dict)

    def refutations(self, node: str, random_state: int) -> list[Refutation]:
        """Refute the effect of ``node`` on the target (DoWhy refuters), once per model and seed."""
        with _REFUTED_LOCK:
            done = self.refuted.get((node, random_state))
        if done is None:
            done = estimate_effect(
                self.data,
                node,
                self.graph.target,
                self.graph.parents(node),
                num_simulations=REFUTATION_SIMULATIONS,
                random_state=random_state,
            ).refutations
            with _REFUTED_LOCK:
                self.refuted[(node, random_state)] = done
        return done

    def validation(self) -> dict[str, float]:
        """Return the validation figures of the fit, for the model registry.

        ``r2``: in-sample share of the target's deviations its fitted mechanism explains;
        ``nodes`` and ``dropped``: factors fitted and left out; ``effect.<node>`` and
        ``effect_halfwidth.<node>``: each cause's adjusted effect and its CI half-width, so
        versions of a model can be compared.
        """
        target = self.graph.target
        coefs = self.scm.coefficients.get(target, {})
        y = self.data[target].to_numpy(dtype=float)
        fitted = self.scm.intercepts.get(target, 0.0) + sum(
            (c * self.data[p].to_numpy(dtype=float) for p, c in coefs.items()),
            start=np.zeros_like(y),
        )
        spread = float(np.var(y))
        out = {
            "r2": 1.0 - float(np.var(y - fitted)) / spread if spread > 0 else 0.0,
            "nodes": float(len(self.graph.nodes)),
            "dropped": float(len(self.dropped)),
        }
        for node, est in self.effects.items():
            out[f"effect.{node}"] = est.effect
            out[f"effect_halfwidth.{node}"] = (est.ci[1] - est.ci[0]) / 2
        return out


REFUTATION_SIMULATIONS = 10
"""Simulations per refuter: DoWhy's default is 100; ten keep a verdict (does the estimate
survive a placebo, a random confounder, 80 % subsets) at a tenth of the time."""

_REFUTED_LOCK = threading.Lock()


def deviations(
    cells: pd.DataFrame, nodes: list[str], reference: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Values minus normal-cell baselines for every node; also (expected, z).

    Nodes without a value in any reference cell (an absent feed) get no baseline: NaN.
    Counts that grow with the cell (volume) deviate as log-ratios, so a model learned on
    stores applies to a region: +30 % is +30 % at any size.
    """
    level = str(cells["level"].iloc[0])
    values = cells[nodes].astype(float).where(cells["orders"] > 0)
    present = [n for n in nodes if values.loc[reference, n].notna().any()]
    expected = pd.DataFrame(np.nan, index=cells.index, columns=nodes)
    z = pd.DataFrame(np.nan, index=cells.index, columns=nodes)
    if present:
        if level == "store":
            exp_p, z_p = kpi_residuals(cells, "entity", present, reference)
        else:
            exp_p, z_p = region_residuals(cells, present, "entity", reference)
        expected[present] = exp_p[present]
        z[present] = z_p[present]
    devs = values - expected
    for node in nodes:
        if KPIS[node].relative:
            devs[node] = np.log(values[node].clip(lower=1e-9) / expected[node].clip(lower=1e-9))
    return devs, expected, z


def _missing(graph: CausalGraph, node: str) -> str:
    return graph.nodes[node].feed or "no data"


def prune(
    graph: CausalGraph, cells: pd.DataFrame, devs: pd.DataFrame, reference: pd.Series
) -> tuple[CausalGraph, dict[str, str]]:
    """Drop the nodes the data cannot support; return the fitted graph and why each went.

    A node is dropped when fewer than half the reference cells carry it (no data), when its
    values never vary (a feed that carries no information, e.g. rain always 0), or when its
    deviations duplicate an earlier node's (:data:`DUPLICATE_CORRELATION`).
    """
    dropped: dict[str, str] = {}
    kept: list[str] = []
    ref = cells[reference]
    for node in graph.nodes:
        if node == graph.target:
            continue
        values = ref[node].astype(float)
        if values.notna().sum() < max(2, 0.5 * len(ref)):
            dropped[node] = _missing(graph, node)
            continue
        if float(np.nanstd(values)) < 1e-9:
            label = graph.nodes[node].label
            moved = float(np.nanstd(cells[node].astype(float))) >= 1e-9
            # A factor that moved only in the analysed cells has no past to learn its effect
            # from: said so, since the manager can see it moved.
            dropped[node] = (
                f"{label} never varied before, so its effect cannot be learned from the data"
                if moved
                else f"{label} never varies in the data"
            )
            continue
        twin = next(
            (
                k
                for k in kept
                if abs(float(devs.loc[reference, node].corr(devs.loc[reference, k])))
                > DUPLICATE_CORRELATION
            ),
            None,
        )
        if twin is not None:
            dropped[node] = f"same data as {graph.nodes[twin].label}"
            continue
        kept.append(node)
    return graph.without(set(dropped)), dropped


def fit_model(
    cells: pd.DataFrame,
    graph: CausalGraph,
    reference: pd.Series,
    *,
    random_state: int = 0,
) -> FittedModel:
    """Prune the graph to the data, then fit it on every cell's deviation from normal.

    Normal (the baselines) comes from the reference cells; the mechanisms are fitted on all
    cells up to the analysed day, the anomalous ones included. A shock that never happens
    on an ordinary day (a carrier outage, a dispatch backlog) leaves no trace in ordinary
    variation: its effect is learned from the cells where it happened, all known by the
    end of the day.

    Pure: the caller keeps fitted models in the model registry (:mod:`tools.core.models`).

    Raises:
        ValueError: too few complete cells to fit (saying how many are needed).
    """
    cells = cells.reset_index(drop=True)
    reference = reference.reset_index(drop=True)
    devs, _, _ = deviations(cells, list(graph.nodes), reference)
    fitted_graph, dropped = prune(graph, cells, devs, reference)
    nodes = list(fitted_graph.nodes)
    data = devs[nodes].dropna()
    need = MIN_FIT_ROWS_PER_NODE * len(nodes)
    if len(data) < need:
        raise InsufficientDataError(
            f"too little history to fit the causal model: {len(data)} complete cells of "
            f"{cells['level'].iloc[0]} data, need {need} ({MIN_FIT_ROWS_PER_NODE} per factor "
            f"for {len(nodes)} factors)"
        )
    fixed = {
        (i.source, i.target): float(cells[i.coefficient].mean())
        for i in fitted_graph.identities
        if i.coefficient in cells and cells[i.coefficient].notna().any()
    }
    scm = fit_scm(data, fitted_graph, fixed=fixed, random_state=random_state)
    effects = {
        node: estimate_effect(
            data,
            node,
            fitted_graph.target,
            fitted_graph.parents(node),
            refute=False,  # only the causes a diagnosis names are refuted, when named
            random_state=random_state,
        )
        for node in fitted_graph.causes
    }
    return FittedModel(
        graph=fitted_graph,
        scm=scm,
        effects=effects,
        dropped=dropped,
        fit_level=str(cells["level"].iloc[0]),  # type: ignore[arg-type]
        rows=len(data),
        data=data,
    )


def not_assessed(graph: CausalGraph, model: FittedModel, gaps: dict[str, str]) -> list[NotAssessed]:
    """Causes none of whose nodes could be assessed (dropped, or no value in the cell)."""
    out = []
    for cause in graph.cause_names:
        nodes = graph.nodes_for(cause)
        reasons = {n: model.dropped.get(n) or gaps.get(n) for n in nodes}
        if all(reasons.values()):
            out.append(
                NotAssessed(
                    cause=cause,
                    variables=nodes,
                    reason="; ".join(dict.fromkeys(r for r in reasons.values() if r)),
                )
            )
    return out


def diagnose_cell(
    model: FittedModel,
    history: pd.DataFrame,
    row_index: int,
    *,
    full_graph: CausalGraph,
    random_state: int = 0,
) -> Diagnosis:
    """Attribute one cell's late-rate excess with a fitted model (pure: no I/O).

    Args:
        model: the fitted model (see :func:`fit_model`).
        history: cells of the target's level (its own history and the cell itself, beside
            its peers' when they share baselines), ``reference`` marking the cells that
            define normal.
        row_index: index of the diagnosed cell in ``history``.
        full_graph: the reviewed graph before pruning (for what is not assessed).
        random_state: seed.
    """
    graph = model.graph
    history = history.reset_index(drop=True)
    reference = history["reference"].astype(bool)
    devs, expected, z = deviations(history, list(graph.nodes), reference)
    row: pd.Series = devs.iloc[row_index]
    # A node with no value in this cell (no roster row that day) cannot be attributed: it
    # is assessed as normal and said so.
    gaps = {n: "no data for this cell" for n in graph.nodes if pd.isna(row[n])}
    if graph.target in gaps:
        raise ValueError("the cell has no resolved deliveries to explain")
    row = row.fillna(0.0)
    gcm_contrib = attribute(model.scm, row, random_state=random_state)
    lin_contrib = linear_attribution(model.scm, row)
    target = graph.target
    cell: pd.Series = history.iloc[row_index]
    exp_row: pd.Series = expected.iloc[row_index]
    z_row: pd.Series = z.iloc[row_index]
    value = float(cell[target])
    exp_value = float(exp_row[target])
    findings = _findings(model, cell, exp_row, z_row, gcm_contrib)
    # Shares are of the positive part of the excess, counted per cause (two nodes of one
    # cause that pull apart, such as volume against normal and against the roster on a
    # promotion day, cancel out before they count), mediators and noise included.
    mediators = [n for n in graph.nodes if n not in graph.causes]
    positive = sum(max(f.contribution, 0.0) for f in findings) + sum(
        max(gcm_contrib.get(n, 0.0), 0.0) for n in mediators
    )
    for f in findings:
        f.share = round(max(f.contribution, 0.0) / positive, 3) if positive > 0 else 0.0
        f.linear_contribution = round(
            sum(lin_contrib.get(n, 0.0) for n in graph.nodes_for(f.cause)), 4
        )
    findings.sort(key=lambda c: -c.contribution)
    late_z = finite(z_row[target])
    within = _within_normal(late_z, value - exp_value, findings)
    judged = _judged_shares(findings, positive, graph.regional_causes, str(cell["level"]))
    for f in findings[:3]:
        if not within and f.contribution > 0 and judged[f.cause] >= MIN_CAUSE_SHARE:
            verdicts = model.refutations(f.variable, random_state)
            f.refutations_passed = sum(r.passed for r in verdicts)
            f.refutations_run = len(verdicts)
    unexplained = gcm_contrib.get(target, 0.0)
    unexplained_share = max(unexplained, 0.0) / positive if positive > 0 else 1.0
    past = history[reference & (history.entity == cell["entity"])]
    correlation = {
        cause: max(
            (_abs_corr(past[n], past[target]) for n in nodes),
            default=0.0,
        )
        for cause in graph.cause_names
        if (nodes := graph.nodes_for(cause))
    }
    moved = {f.cause: f.z if f.z is not None else 0.0 for f in findings}
    grain = int(cell["grain"])
    day = pd.Timestamp(cell["date"]).date()
    return Diagnosis(
        target=str(cell["entity"]),
        level=str(cell["level"]),  # type: ignore[arg-type]
        region=str(cell["region"]),
        day=day,
        grain_days=grain,
        window_start=day - dt.timedelta(days=grain - 1),
        kpi=target,
        value=round(value, 4),
        expected=round(exp_value, 4),
        excess=round(value - exp_value, 4),
        late_excess=round((value - exp_value) * float(cell["resolved"]), 1),
        resolved=int(cell["resolved"]),
        causes=findings,
        hypotheses=[] if within else _hypotheses(findings, judged),
        confidence="low" if within else _confidence(findings, unexplained_share),
        unexplained=round(unexplained, 4),
        late_z=None if late_z is None else round(late_z, 2),
        within_normal=within,
        not_assessed=not_assessed(full_graph, model, gaps),
        fit_level=model.fit_level,
        fit_rows=model.rows,
        correlation_ranking=sorted(correlation, key=lambda c: -np.nan_to_num(correlation[c])),
        deviation_ranking=sorted(moved, key=lambda c: -moved[c]),
        method="DoWhy gcm.attribute_anomalies (mean deviation, linear additive-noise SCM) "
        "over the reviewed graph, pruned to the factors the data carries; effects by backdoor "
        "linear regression with refutations",
        graph_version=graph.version,
    )


def _findings(
    model: FittedModel,
    cell: pd.Series,
    expected: pd.Series,
    z: pd.Series,
    contributions: dict[str, float],
) -> list[CauseFinding]:
    """One finding per assessed cause, its nodes' contributions summed."""
    graph = model.graph
    out = []
    for cause in graph.cause_names:
        nodes = graph.nodes_for(cause)
        main = max(nodes, key=lambda n: abs(contributions.get(n, 0.0)))
        est = model.effects[main]
        out.append(
            CauseFinding(
                cause=cause,
                variable=main,
                value=finite(cell[main]),
                expected=finite(expected[main]),
                z=finite(z[main]),
                contribution=round(sum(contributions.get(n, 0.0) for n in nodes), 4),
                share=0.0,
                linear_contribution=0.0,
                effect=round(est.effect, 6),
                effect_ci=(round(est.ci[0], 6), round(est.ci[1], 6)),
                refutations_passed=0,  # refuted when named (diagnose_cell)
                refutations_run=0,
            )
        )
    return out


def _within_normal(late_z: float | None, excess: float, findings: list[CauseFinding]) -> bool:
    """Tell whether a cell's late rate is within its normal range: nothing to explain or treat.

    Within chance (``late_z`` below :data:`WITHIN_NORMAL_Z`; without a spread, at or below
    normal), unless a cause moved far beyond its own normal (:data:`ADVERSE_MIN_Z`), carries a
    real share of the excess, and the excess reaches the scan's bar for a problem
    (:data:`MIN_LATE_EXCESS`): a dispatch 40 minutes late at a small store is a problem even
    when its few deliveries cannot show it beyond chance.
    """
    chance = late_z < WITHIN_NORMAL_Z if late_z is not None else excess <= 0
    if not chance or excess < MIN_LATE_EXCESS:
        return chance
    return not any(
        f.z is not None
        and f.z >= ADVERSE_MIN_Z
        and f.contribution > 0
        and f.share >= MIN_CAUSE_SHARE
        for f in findings
    )


def _judged_shares(
    findings: list[CauseFinding], positive: float, regional: set[str], level: str
) -> dict[str, float]:
    """Return the share each cause is judged by (hypothesis or not, and its confidence).

    A cause's share of the whole excess; but at a store inside a regional event (a cause
    measured per region carrying :data:`MIN_CAUSE_SHARE` or more), the store's own causes
    are judged by their share of what the regional causes leave: a driver shortage under a
    storm is the store's own problem even when the storm carries most of the excess.
    """
    shares = {f.cause: f.share for f in findings}
    shared = sum(
        max(f.contribution, 0.0)
        for f in findings
        if f.cause in regional and f.share >= MIN_CAUSE_SHARE
    )
    rest = positive - shared
    if level != "store" or shared <= 0 or rest <= 0:
        return shares
    return {
        f.cause: f.share if f.cause in regional else round(max(f.contribution, 0.0) / rest, 3)
        for f in findings
    }


def _hypotheses(findings: list[CauseFinding], judged: dict[str, float]) -> list[Hypothesis]:
    """Causes that carry at least :data:`MIN_CAUSE_SHARE` of the excess, top three.

    Shares are as :func:`_judged_shares` gives them (a store's own causes under a regional
    event: of the excess the event leaves).
    """
    out: list[Hypothesis] = []
    for f in findings[:3]:
        share = judged.get(f.cause, f.share)
        if f.contribution <= 0 or share < MIN_CAUSE_SHARE:
            continue
        robust = 0 < f.refutations_run == f.refutations_passed
        conf: Confidence = (
            "high"
            if share >= CONFIDENCE_HIGH_SHARE and robust
            else "medium"
            if share >= CONFIDENCE_MEDIUM_SHARE
            else "low"
        )
        out.append(
            Hypothesis(
                cause=f.cause,
                variable=f.variable,
                contribution=f.contribution,
                share=f.share,
                confidence=conf,
            )
        )
    return out


def _confidence(findings: list[CauseFinding], unexplained_share: float) -> Confidence:
    """Rate how sure the diagnosis is.

    High when the top cause carries most of the excess, the linear cross-check agrees and
    its effect survived every refutation; low when nothing stands out, or when more of the
    excess is left unexplained than the top cause carries.
    """
    if not findings:
        return "low"
    top = findings[0]
    if top.contribution <= 0 or unexplained_share >= top.share:
        return "low"
    agree = max(findings, key=lambda f: f.linear_contribution).cause == top.cause
    robust = 0 < top.refutations_run == top.refutations_passed
    if top.share >= CONFIDENCE_HIGH_SHARE and agree and robust:
        return "high"
    if top.share >= CONFIDENCE_MEDIUM_SHARE and agree:
        return "medium"
    return "low"


def _abs_corr(a: pd.Series, b: pd.Series) -> float:
    """Return |Pearson r| of two columns; 0 when either is constant or has < 3 shared rows.

    A factor that never varied (no weather feed, a store's first days) has no correlation to
    report, and numpy would warn dividing by its zero standard deviation.
    """
    pair = pd.concat([a, b], axis=1).astype(float).dropna()
    if len(pair) < 3 or bool((pair.std(ddof=0) == 0).any()):
        return 0.0
    return abs(float(pair.iloc[:, 0].corr(pair.iloc[:, 1])))
