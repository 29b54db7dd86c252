"""The generic panel scan: planted anomalies are found, quiet panels stay quiet."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evals.tool_quality import nab_scores
from tools.analytics.detect import detect, scan_panel


def _panel(seed: int, entities: int = 30, days: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(entities):
        level = rng.uniform(50, 150)
        for d in range(days):
            weekly = 1.0 + 0.1 * (d % 7 == 5)
            rows.append(
                (
                    f"E{e}",
                    pd.Timestamp("2026-01-01") + pd.Timedelta(days=d),
                    level * weekly + rng.normal(0, 3),
                    rng.normal(10, 1),
                )
            )
    return pd.DataFrame(rows, columns=["entity", "day", "load", "delay"])


def test_planted_anomalies_are_found_and_nothing_else() -> None:
    frame = _panel(1)
    planted = frame.sample(12, random_state=1).index
    frame.loc[planted[:6], "load"] += 40  # ~13 SD
    frame.loc[planted[6:], "delay"] += 12
    scan = scan_panel(frame, "entity", "day", ["load", "delay"], directions={"load": 1, "delay": 1})
    flagged = set(scan.rows.index[scan.rows.flagged])
    assert set(planted) <= flagged
    assert len(flagged - set(planted)) <= 2
    top = scan.anomalies.iloc[0]
    assert top.drivers and top.score >= scan.threshold


def test_a_quiet_panel_flags_almost_nothing_whatever_its_size() -> None:
    # not a contamination share: the flag count does not scale with the panel
    for seed in (2, 3):
        scan = scan_panel(
            _panel(seed), "entity", "day", ["load", "delay"], directions={"load": 1, "delay": 1}
        )
        assert scan.rows.flagged.sum() <= 2


def test_direction_matters() -> None:
    frame = _panel(4)
    frame.loc[100, "delay"] -= 15  # an unusually *good* day
    down = scan_panel(frame, "entity", "day", ["delay"], directions={"delay": 1})
    both = scan_panel(frame, "entity", "day", ["delay"], directions={"delay": 0})
    assert not down.rows.loc[100, "flagged"]
    assert both.rows.loc[100, "flagged"]


def test_deterministic_given_a_seed() -> None:
    frame = _panel(5)
    a = scan_panel(frame, "entity", "day", ["load", "delay"], random_state=3).rows.score
    b = scan_panel(frame, "entity", "day", ["load", "delay"], random_state=3).rows.score
    pd.testing.assert_series_equal(a, b)


def test_bad_input_is_a_clear_error() -> None:
    frame = _panel(6)
    with pytest.raises(ValueError, match="no column"):
        scan_panel(frame, "entity", "day", ["nope"])
    with pytest.raises(ValueError, match="empty"):
        scan_panel(frame.iloc[:0], "entity", "day", ["load"])
    with pytest.raises(ValueError, match="too little history"):
        detect(pd.DataFrame({"a": np.arange(12.0), "b": np.arange(12.0) ** 2}))
    with pytest.raises(ValueError, match="threshold must be positive"):
        detect(pd.DataFrame({"a": np.arange(30.0)}), threshold=0)


def test_nab_labelled_windows_are_found() -> None:
    scores = nab_scores()
    assert len(scores) == 3
    for name, s in scores.items():  # every labelled window (6 in 3 series) gets a flag
        assert s["windows_detected"] == s["windows"] > 0, name
    flags = sum(s["flags"] for s in scores.values())
    assert sum(s["flags_inside"] for s in scores.values()) / flags >= 0.7


def test_the_lone_kpi_cut_can_differ_per_kpi() -> None:
    """An exact-tail z (no-shows) flags at 4; robust-SD residuals keep the default 5."""
    rng = np.random.default_rng(7)
    z = pd.DataFrame(rng.normal(0, 1, size=(400, 2)), columns=["exact", "robust"])
    z.loc[10] = [4.3, 0.0]
    z.loc[11] = [0.0, 4.3]
    kw = {"directions": {"exact": 1, "robust": 1}, "threshold": 50.0}
    default = detect(z, **kw)  # type: ignore[arg-type]
    per_kpi = detect(z, extreme_z={"exact": 4.0}, **kw)  # type: ignore[arg-type]
    assert not default.loc[[10, 11], "flagged"].any()
    assert per_kpi.loc[10, "flagged"] and not per_kpi.loc[11, "flagged"]


def test_an_outcome_beyond_what_the_leading_kpis_explain_flags_alone() -> None:
    # Lateness follows the load (corr 0.9). 4 SDs of lateness with the load 4.5 SDs up is
    # the usual co-movement; 3 SDs with the load normal is not, and nothing else shows it.
    rng = np.random.default_rng(3)
    load = rng.normal(0, 1, 600)
    late = 0.9 * load + rng.normal(0, np.sqrt(1 - 0.81), 600)
    z = pd.DataFrame({"load": load, "late": late, "other": rng.normal(0, 1, 600)})
    z.loc[600] = [4.5, 4.0, 0.0]  # explained by the load
    z.loc[601] = [0.0, 3.0, 0.0]  # unexplained: 3 SDs is 6.9 conditional SDs
    reference = pd.Series(z.index < 600, index=z.index)
    kw = {"directions": {"load": 1, "late": 1, "other": 1}, "reference": reference}
    plain = detect(z, extreme_kpis=["load", "other"], threshold=50.0, **kw)
    assert not plain.flagged.loc[[600, 601]].any()
    outcome = detect(z, extreme_kpis=["load", "other"], outcome_kpis=["late"], threshold=50.0, **kw)
    assert outcome.flagged.loc[601] and not outcome.flagged.loc[600]
    assert outcome.flagged.loc[:599].mean() < 0.01


def test_an_infinite_residual_keeps_its_kpi_in_the_detector() -> None:
    """A log KPI at zero gives -inf: an extreme value, not a reason to drop the KPI."""
    rng = np.random.default_rng(0)
    z = pd.DataFrame({"late": rng.normal(0, 1, 200), "orders": rng.normal(0, 1, 200)})
    z.loc[17, "orders"] = -np.inf  # a store-day without orders, in the reference
    z.loc[199, "late"] = 9.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = detect(z, directions={"late": 1, "orders": -1})
    assert out.loc[199, "flagged"] and "late" in out.loc[199, "drivers"]
    assert out.loc[17, "flagged"] and "orders" in out.loc[17, "drivers"]
