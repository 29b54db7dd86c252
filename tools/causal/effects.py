"""Estimate a causal effect on any table with DoWhy, and say how far to trust it.

Example (the LaLonde job-training data: NSW trainees against CPS controls)::

    est = estimate_effect(frame, "treat", "re78",
                          ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"])
    est.effect, est.ci, [r.passed for r in est.refutations]

For a binary treatment the estimate is restricted to the region of common support (units
whose propensity to be treated lies where both groups exist, and within ``overlap``):
regression far outside it extrapolates, which is how observational comparisons go badly
wrong (the naive LaLonde comparison says training *costs* $8.5k).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.linear_model import LogisticRegression

logger = logging.getLogger(__name__)


class Refutation(BaseModel):
    """One robustness check of an estimate (DoWhy refuter) and our verdict on it."""

    name: str
    new_effect: float
    p_value: float | None
    passed: bool
    rule: str


class EffectEstimate(BaseModel):
    """An average causal effect of ``treatment`` on ``outcome``, with its support."""

    treatment: str
    outcome: str
    method: str
    effect: float = Field(
        description="Change in outcome per unit of treatment (or treated vs not)."
    )
    ci: tuple[float, float]
    naive: float = Field(description="Unadjusted difference (binary) or slope (continuous).")
    n: int = Field(description="Rows used.")
    n_dropped_for_overlap: int = 0
    refutations: list[Refutation] = Field(default_factory=list)

    @property
    def robust(self) -> bool:
        """All refutations passed."""
        return all(r.passed for r in self.refutations)


def _quiet() -> None:
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="dowhy")
    warnings.filterwarnings("ignore", module="statsmodels")


def common_support(
    frame: pd.DataFrame, treatment: str, covariates: Sequence[str], overlap: tuple[float, float]
) -> pd.Series:
    """Rows whose estimated propensity lies in both groups' range and within ``overlap``."""
    x = frame[list(covariates)].astype(float)
    x = (x - x.mean()) / x.std(ddof=0).replace(0, 1.0)
    treated = frame[treatment].astype(bool)
    model = LogisticRegression(max_iter=5000, C=1e6)
    ps = model.fit(x, treated).predict_proba(x)[:, 1]
    low = max(ps[treated.to_numpy()].min(), overlap[0])
    high = min(ps[~treated.to_numpy()].max(), overlap[1])
    return pd.Series((ps >= low) & (ps <= high), index=frame.index)


def estimate_effect(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str,
    common_causes: Sequence[str],
    *,
    method: str = "backdoor.linear_regression",
    overlap: tuple[float, float] | None = (0.05, 0.95),
    refute: bool = True,
    num_simulations: int = 20,
    random_state: int = 0,
) -> EffectEstimate:
    """Estimate the effect of ``treatment`` on ``outcome`` adjusting for ``common_causes``.

    Args:
        frame: one row per unit.
        treatment: treatment column (binary or continuous).
        outcome: outcome column.
        common_causes: confounders to adjust for (the backdoor set).
        method: a DoWhy estimation method.
        overlap: for a binary treatment, keep only the common-support rows with propensity
            in this range (``None`` keeps every row).
        refute: run placebo, random-common-cause and data-subset refuters.
        num_simulations: simulations per refuter.
        random_state: seed of the refuters.

    Returns:
        The estimate with its confidence interval and refutation verdicts.

    Raises:
        ValueError: unknown columns, or too few rows.
    """
    from dowhy import CausalModel  # imported lazily: DoWhy is slow to import

    _quiet()
    missing = [c for c in (treatment, outcome, *common_causes) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {', '.join(missing)}")
    data = frame[[treatment, outcome, *common_causes]].dropna().copy()
    binary = set(pd.unique(data[treatment])) <= {0, 1}
    if binary:
        data[treatment] = data[treatment].astype(bool)
        groups = data.groupby(treatment)[outcome].mean()
        naive = float(groups.get(True, np.nan) - groups.get(False, np.nan))
    else:
        naive = float(np.polyfit(data[treatment].astype(float), data[outcome].astype(float), 1)[0])
    dropped = 0
    if binary and overlap is not None and common_causes:
        keep = common_support(data, treatment, common_causes, overlap)
        dropped = int((~keep).sum())
        data = data[keep]
    if len(data) < max(20, 3 * (len(common_causes) + 2)):
        raise ValueError(f"too few rows ({len(data)}) to estimate {treatment} -> {outcome}")
    model = CausalModel(
        data=data, treatment=treatment, outcome=outcome, common_causes=list(common_causes)
    )
    identified = model.identify_effect(proceed_when_unidentifiable=True)
    estimate = model.estimate_effect(identified, method_name=method, confidence_intervals=True)
    value = float(estimate.value)
    ci = np.asarray(estimate.get_confidence_intervals(), dtype=float).reshape(-1)
    result = EffectEstimate(
        treatment=treatment,
        outcome=outcome,
        method=method,
        effect=value,
        ci=(float(ci[0]), float(ci[-1])),
        naive=naive,
        n=len(data),
        n_dropped_for_overlap=dropped,
    )
    if refute:
        result.refutations = _refute(
            model, identified, estimate, value, num_simulations, random_state
        )
    return result


def _refute(
    model: object, identified: object, estimate: object, value: float, sims: int, seed: int
) -> list[Refutation]:
    scale = abs(value) + 1e-12
    checks: tuple[tuple[str, dict[str, object], Callable[[float], bool], str], ...] = (
        (
            "placebo_treatment_refuter",
            {"placebo_type": "permute"},
            lambda new: abs(new) <= 0.3 * scale,
            "a permuted (placebo) treatment has |effect| <= 30% of the estimate",
        ),
        (
            "random_common_cause",
            {},
            lambda new: abs(new - value) <= 0.1 * scale,
            "adding a random confounder moves the estimate <= 10%",
        ),
        (
            "data_subset_refuter",
            {"subset_fraction": 0.8},
            lambda new: abs(new - value) <= 0.25 * scale,
            "80% subsets keep the estimate within 25%",
        ),
    )
    out = []
    for name, kwargs, ok, rule in checks:
        refutation = model.refute_estimate(  # type: ignore[attr-defined, no-untyped-call]
            identified,
            estimate,
            method_name=name,
            num_simulations=sims,
            random_state=seed,
            **kwargs,
        )
        new = float(np.mean(refutation.new_effect))
        p = (refutation.refutation_result or {}).get("p_value")
        out.append(
            Refutation(
                name=name,
                new_effect=new,
                p_value=None if p is None else float(p),
                passed=bool(ok(new)),
                rule=rule,
            )
        )
    return out
