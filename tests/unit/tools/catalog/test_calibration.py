"""Calibration of action impacts from tracked outcomes: the tests' levels, the correction."""

from __future__ import annotations

import numpy as np
import pytest

from tools.catalog.calibration import (
    MIN_CONFORMAL,
    TrackedOutcome,
    adjust,
    calibrate,
    calibrate_one,
    credited,
)


def _outcome(point: float, half: float, realised: float, action: str = "a") -> TrackedOutcome:
    lo, hi = point - half, point + half
    return TrackedOutcome(
        action_id=action,
        model_avoided=point,
        model_low=lo,
        model_high=hi,
        promised=point,
        promised_low=lo,
        promised_high=hi,
        realised=realised,
    )


def _calibrated_draws(n: int, seed: int) -> list[TrackedOutcome]:
    """Outcomes of an estimator whose 80 % intervals are right: N(point, sd), +-1.2816 sd."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(10, 200, n)
    sd = 0.1 * points
    realised = rng.normal(points, sd)
    return [_outcome(p, 1.2816 * s, float(r)) for p, s, r in zip(points, sd, realised, strict=True)]


def test_min_conformal_is_the_first_sample_with_both_order_statistics() -> None:
    assert MIN_CONFORMAL == 9


@pytest.mark.parametrize("seed", range(5))
def test_a_calibrated_estimator_is_not_flagged_at_any_look(seed: int) -> None:
    outcomes = _calibrated_draws(200, seed)
    for k in range(1, len(outcomes) + 1):
        judged = calibrate_one("a", outcomes[:k])
        assert not judged.uncalibrated, (k, judged)
    assert 0.7 <= calibrate_one("a", outcomes).coverage <= 0.9


def test_an_action_doing_half_its_promise_is_flagged_over_promising_within_20() -> None:
    rng = np.random.default_rng(3)
    outcomes = []
    flagged_at = None
    for k in range(1, 21):
        point = float(rng.uniform(10, 200))
        truth = point * rng.normal(1.0, 0.1)  # what the action would do as modelled
        outcomes.append(_outcome(point, 0.13 * point, 0.5 * truth))
        if calibrate_one("a", outcomes).over_promising:
            flagged_at = k
            break
    assert flagged_at is not None and flagged_at <= 20
    judged = calibrate_one("a", outcomes)
    assert judged.median_ratio == pytest.approx(0.5, abs=0.1)
    assert "over-promising" in (judged.note() or "")


def test_an_estimator_too_sure_of_itself_gets_a_conformal_interval_that_covers() -> None:
    rng = np.random.default_rng(7)
    # realised scatter 30 % around the point, the model claims +-5 %
    history = []
    for _ in range(50):
        p = float(rng.uniform(20, 100))
        history.append(_outcome(p, 0.05 * p, p * float(rng.lognormal(0, 0.3))))
    judged = calibrate_one("a", history)
    assert judged.uncalibrated and judged.ratio_interval is not None
    inside = 0
    for _ in range(400):
        p = float(rng.uniform(20, 100))
        point, (lo, hi), note = adjust(p, (0.95 * p, 1.05 * p), 10_000.0, judged)
        assert note is not None and lo <= point <= hi
        inside += lo <= p * float(rng.lognormal(0, 0.3)) <= hi
    assert 0.72 <= inside / 400 <= 0.9


def test_a_correction_never_leaves_zero_to_cap() -> None:
    history = [_outcome(10.0, 0.5, 40.0) for _ in range(12)]  # realised 4x the promise
    judged = calibrate_one("a", history)
    assert judged.under_promising
    point, (lo, hi), _ = adjust(10.0, (9.5, 10.5), 25.0, judged)
    assert 0 <= lo <= point <= hi <= 25.0


def test_untracked_or_calibrated_actions_are_left_alone() -> None:
    assert adjust(10.0, (8.0, 12.0), 50.0, None) == (10.0, (8.0, 12.0), None)
    fine = calibrate_one("a", _calibrated_draws(30, 1))
    assert adjust(10.0, (8.0, 12.0), 50.0, fine) == (10.0, (8.0, 12.0), None)


def test_calibrate_groups_by_action_and_judges_the_recent_window() -> None:
    old_bad = [_outcome(10, 1, 3, "x") for _ in range(60)]
    recent_good = [o.model_copy(update={"action_id": "x"}) for o in _calibrated_draws(50, 2)]
    judged = calibrate(old_bad + recent_good + [_outcome(5, 1, 5, "y")])
    assert set(judged) == {"x", "y"}
    assert judged["x"].outcomes == 50 and not judged["x"].uncalibrated
    assert judged["y"].outcomes == 1


def test_actions_are_credited_in_rank_order_up_to_the_measured_excess() -> None:
    assert credited([30.0, 25.0, 10.0], 50.0) == [30.0, 20.0, 0.0]
    assert credited([-3.0, 8.0], 5.0) == [0.0, 5.0]  # an action that added lateness: none
    assert credited([4.0], 0.0) == [0.0]
