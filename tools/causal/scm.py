"""Fit the reviewed causal graph as a structural causal model and attribute anomalies with it.

Mechanisms are linear additive-noise models on deviations from each store's normal day:
linear tails extrapolate sensibly to incident-sized deviations, which lie outside anything
the history has seen (flexible regressors flatten there and push the excess into
"unexplained"). Fitting takes milliseconds.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from tools.causal.graph import CausalGraph

logger = logging.getLogger(__name__)


@dataclass
class FittedScm:
    """The graph with fitted linear mechanisms, as a DoWhy gcm model and as coefficients."""

    graph: CausalGraph
    gcm_model: object  # dowhy.gcm.InvertibleStructuralCausalModel
    coefficients: dict[str, dict[str, float]]  # node -> parent -> coefficient
    std_errors: dict[str, dict[str, float]]  # node -> parent -> OLS standard error
    intercepts: dict[str, float]
    noise_scale: dict[str, float]  # robust SD of each node's noise (its exogenous part)
    n_rows: int

    def total_effect(
        self,
        node: str,
        target: str | None = None,
        coefficients: dict[str, dict[str, float]] | None = None,
    ) -> float:
        """Total effect of a unit change of ``node`` on ``target`` along every directed path."""
        target = target or self.graph.target
        coefficients = coefficients or self.coefficients
        g = self.graph.digraph()
        total = 0.0
        for path in nx.all_simple_paths(g, node, target):
            product = 1.0
            for a, b in zip(path[:-1], path[1:], strict=True):
                product *= coefficients[b][a]
            total += product
        return total

    def draw_coefficients(self, n: int, random_state: int = 0) -> list[dict[str, dict[str, float]]]:
        """``n`` draws of all coefficients from their sampling distributions (for intervals)."""
        rng = np.random.default_rng(random_state)
        draws = []
        for _ in range(n):
            draws.append(
                {
                    node: {
                        p: c + rng.normal(0.0, self.std_errors[node].get(p, 0.0))
                        for p, c in parents.items()
                    }
                    for node, parents in self.coefficients.items()
                }
            )
        return draws

    def noise(self, row: pd.Series) -> dict[str, float]:
        """Each node's exogenous part for one row: its value minus what its parents explain."""
        out = {}
        for node in self.graph.nodes:
            parents = self.coefficients.get(node, {})
            fitted = self.intercepts.get(node, 0.0) + sum(
                c * float(row[p]) for p, c in parents.items()
            )
            out[node] = float(row[node]) - fitted
        return out


def _quiet() -> None:
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="dowhy")
    warnings.filterwarnings("ignore", module="sklearn")


def fit_scm(
    data: pd.DataFrame,
    graph: CausalGraph,
    *,
    fixed: dict[tuple[str, str], float] | None = None,
    random_state: int = 0,
) -> FittedScm:
    """Fit linear additive-noise mechanisms for every node of ``graph`` on ``data``.

    Coefficients come from ordinary least squares, except the edges in ``fixed`` (known by
    definition, e.g. an accounting identity): those are set, and the node's other parents
    are fitted to what remains. DoWhy's mechanisms use exactly these coefficients.

    Args:
        data: one column per graph node (deviations), rows with NaN are dropped.
        graph: the causal graph.
        fixed: (parent, node) -> coefficient of edges that are not fitted.
        random_state: seed for DoWhy's sampling.

    Raises:
        ValueError: missing columns or too few complete rows.
    """
    from dowhy import gcm  # imported lazily: DoWhy is slow to import

    _quiet()
    gcm.config.disable_progress_bars()
    nodes = list(graph.nodes)
    missing = [n for n in nodes if n not in data.columns]
    if missing:
        raise ValueError(f"data lacks graph node(s) {', '.join(missing)}")
    data = data[nodes].astype(float).dropna()
    if len(data) < 10 * len(nodes):
        raise ValueError(f"too few complete rows ({len(data)}) to fit the causal model")
    gcm.util.general.set_random_seed(random_state)
    g = graph.digraph()
    model = gcm.InvertibleStructuralCausalModel(g)
    coefficients: dict[str, dict[str, float]] = {}
    std_errors: dict[str, dict[str, float]] = {}
    intercepts: dict[str, float] = {}
    noise_scale: dict[str, float] = {}
    for node in nodes:
        parents = sorted(g.predecessors(node))  # DoWhy's order (get_ordered_predecessors)
        if parents:
            known = {p: (fixed or {})[(p, node)] for p in parents if (p, node) in (fixed or {})}
            free = [p for p in parents if p not in known]
            y = data[node].to_numpy() - sum(
                (c * data[p].to_numpy() for p, c in known.items()), start=np.zeros(len(data))
            )
            x = np.column_stack([np.ones(len(data)), data[free].to_numpy()])
            beta, *_ = np.linalg.lstsq(x, y, rcond=None)
            intercepts[node] = float(beta[0])
            fitted = dict(zip(free, (float(b) for b in beta[1:]), strict=True))
            coefficients[node] = {p: known.get(p, fitted.get(p, 0.0)) or 0.0 for p in parents}
            resid = y - x @ beta
            dof = max(1, len(data) - x.shape[1])
            cov = float(resid @ resid) / dof * np.linalg.pinv(x.T @ x)
            errors = {p: float(np.sqrt(cov[i + 1, i + 1])) for i, p in enumerate(free)}
            std_errors[node] = {p: errors.get(p, 0.0) for p in parents}
            model.set_causal_mechanism(
                node,
                gcm.AdditiveNoiseModel(
                    gcm.ml.create_linear_regressor_with_given_parameters(
                        np.array([coefficients[node][p] for p in parents]), intercepts[node]
                    )
                ),
            )
        else:
            model.set_causal_mechanism(node, gcm.EmpiricalDistribution())
            intercepts[node] = 0.0
            coefficients[node] = {}
            std_errors[node] = {}
            resid = data[node].to_numpy() - 0.0
        noise_scale[node] = float(1.4826 * np.median(np.abs(resid - np.median(resid)))) or float(
            np.std(resid)
        )
    gcm.fit(model, data)
    return FittedScm(
        graph=graph,
        gcm_model=model,
        coefficients=coefficients,
        std_errors=std_errors,
        intercepts=intercepts,
        noise_scale=noise_scale,
        n_rows=len(data),
    )


def _value_scorer_class() -> type:
    from dowhy.gcm.anomaly_scorer import AnomalyScorer

    class ValueScorer(AnomalyScorer):  # type: ignore[misc]
        """Score = the value itself, so attributions are in the target's unit (points)."""

        def fit(self, X: np.ndarray) -> None:  # noqa: N803 - DoWhy's signature
            return None

        def score(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
            return np.asarray(X, dtype=float).reshape(-1)

    return ValueScorer


def _ValueScorer() -> object:  # noqa: N802 - reads like the class it builds
    return _value_scorer_class()()


def attribute(
    fitted: FittedScm, row: pd.Series, *, num_samples: int = 300, random_state: int = 0
) -> dict[str, float]:
    """Shapley attribution of the target's deviation to every node's noise (DoWhy gcm).

    Uses ``attribute_anomalies`` with ``attribute_mean_deviation=True`` and a scorer that
    returns the value itself, so contributions are in the target's unit (late-rate points)
    and add up to its deviation from the mean.
    """
    from dowhy import gcm
    from dowhy.gcm.shapley import ShapleyConfig

    _quiet()
    gcm.util.general.set_random_seed(random_state)
    sample = pd.DataFrame([row[list(fitted.graph.nodes)].astype(float)])
    contributions = gcm.attribute_anomalies(
        fitted.gcm_model,  # type: ignore[arg-type]
        fitted.graph.target,
        anomaly_samples=sample,
        anomaly_scorer=_ValueScorer(),
        attribute_mean_deviation=True,
        num_distribution_samples=num_samples,
        # in process: DoWhy's default (-1) starts a loky pool per call, which costs more CPU
        # than it saves on one row and competes with the server's or the eval's own workers
        # (measured: same wall time, 45 % more CPU on a 2-core machine)
        shapley_config=ShapleyConfig(n_jobs=1),
    )
    return {node: float(np.asarray(v).reshape(-1)[0]) for node, v in contributions.items()}


def linear_attribution(fitted: FittedScm, row: pd.Series) -> dict[str, float]:
    """Each node's noise times its total effect on the target (the linear-SCM closed form)."""
    noise = fitted.noise(row)
    return {
        node: fitted.total_effect(node) * noise[node]
        for node in fitted.graph.nodes
        if node != fitted.graph.target
    }
