"""The closed loop: an action type that does half of what it promises is caught quickly.

A world of driver shortages (one a day from day 60, at a random store) where backup drivers
deliver half of their modelled effect (half of those called turn up); every proposed action
is approved and simulated, and its outcome enters the track record the next estimate reads.
The 200-action coverage run is ``make closed-loop`` (about ten minutes; README).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from evals.closed_loop import make_world, run_closed_loop
from tools.data.synthetic import WorldConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_action_doing_half_its_promise_is_flagged_within_20_dispatches(
    tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    cfg = WorldConfig(stores=12, days=100, seed=4, action_efficacy={"call_backup_drivers": 0.5})
    db = tmp_path / "half.duckdb"
    make_world(db, cfg, 60, kinds=("driver_shortage",))
    report = run_closed_loop(
        db,
        cfg.start_date + timedelta(days=60),
        cfg.start_date + timedelta(days=95),
        until_over_promising="call_backup_drivers",
        progress=False,
    )
    drivers = [o for o in report.outcomes if o.outcome.action_id == "call_backup_drivers"]
    flagged_at = report.first_over_promising.get("call_backup_drivers")
    figure(
        "half-efficacy backup drivers",
        f"flagged over-promising at dispatch {flagged_at} of {len(drivers)}; "
        f"median realised/estimated {report.calibration['call_backup_drivers'].median_ratio}",
    )
    assert flagged_at is not None and flagged_at <= 20
    judged = report.calibration["call_backup_drivers"]
    assert judged.median_ratio is not None and judged.median_ratio < 0.75
    # the flag reaches the estimates: later promises are cut to the track record
    assert any(o.outcome.promised < o.outcome.model_avoided for o in drivers) or flagged_at == len(
        drivers
    )
