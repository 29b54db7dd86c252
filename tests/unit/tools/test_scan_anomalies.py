"""scan_anomalies on the small world (one incident of every kind; see tests/conftest.py)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.scan_anomalies import ScanAnomaliesInput, scan_anomalies


def _find(result, target: str, day: date):  # type: ignore[no-untyped-def]
    return [
        a for a in result.anomalies if a.date == day and (a.target == target or target in a.stores)
    ]


def test_every_injected_incident_is_flagged_with_its_leading_indicator(ctx: ToolContext) -> None:
    result = scan_anomalies(ctx, ScanAnomaliesInput(day=date(2026, 3, 1), days=45, max_results=100))
    expected = {
        ("S003", date(2026, 2, 10)): "no_show_rate",
        ("R2", date(2026, 2, 15)): "precip_mm",
        ("R1", date(2026, 2, 20)): "dsp_gap",
        ("S012", date(2026, 2, 22)): "orders_per_scheduled_driver",
        ("S006", date(2026, 1, 31)): "dispatch_delay_min",
        ("R2", date(2026, 2, 5)): "traffic_index",
    }
    for (target, day), driver in expected.items():
        found = _find(result, target, day)
        assert found, (target, day)
        assert driver in found[0].drivers, (target, day, found[0].drivers)
    assert result.evidence_id == "scan_anomalies#1"
    assert ctx.evidence.get(result.evidence_id).numbers["anomalies"] == len(result.anomalies)  # type: ignore[union-attr]


def test_a_regional_event_is_one_anomaly_not_a_flood(ctx: ToolContext) -> None:
    result = scan_anomalies(ctx, ScanAnomaliesInput(day=date(2026, 2, 20)))
    outage = [a for a in result.anomalies if a.region == "R1"]
    assert len(outage) == 1 and outage[0].level == "region"
    assert len(outage[0].stores) >= 3
    assert outage[0].severity == "high" and outage[0].late_excess and outage[0].late_excess > 100


def test_a_quiet_day_flags_nothing(ctx: ToolContext) -> None:
    result = scan_anomalies(ctx, ScanAnomaliesInput(day=date(2026, 2, 12)))
    assert result.anomalies == []
    assert result.store_days_scanned == 20


def test_the_morning_scan_sees_the_shortage_from_the_roster_alone(ctx: ToolContext) -> None:
    result = scan_anomalies(ctx, ScanAnomaliesInput(day=date(2026, 2, 10), mode="morning"))
    found = _find(result, "S003", date(2026, 2, 10))
    assert found and "no_show_rate" in found[0].drivers
    assert "late_rate" not in found[0].kpis  # not known before the deliveries


def test_store_scope_reports_only_that_store(ctx: ToolContext) -> None:
    result = scan_anomalies(
        ctx, ScanAnomaliesInput(scope="store", ids=["S006"], day=date(2026, 1, 31))
    )
    assert [a.target for a in result.anomalies] == ["S006"]
    assert (
        result.anomalies[0].kpis["dispatch_delay_min"].value
        > result.anomalies[0].kpis["dispatch_delay_min"].expected
    )  # type: ignore[operator]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"scope": "store", "ids": ["S999"]}, "unknown store 'S999'"),
        ({"scope": "region", "ids": ["R7"]}, "unknown region 'R7'"),
        ({"scope": "store", "ids": []}, "needs at least one store id"),
        ({"day": "2027-01-01"}, "has no data; the data covers 2026-01-01..2026-03-01"),
        ({"day": "2026-03-05", "days": 7}, "after the last day with data"),
        ({"day": "2026-01-05"}, "too little history"),
    ],
)
def test_recoverable_errors_say_what_would_work(
    ctx: ToolContext, args: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        scan_anomalies(ctx, ScanAnomaliesInput.model_validate(args))


def test_after_the_day_only_anomalies_that_cost_late_deliveries_are_reported(
    ctx: ToolContext,
) -> None:
    """Half the roster missing but deliveries on time: a morning warning, not a problem."""
    from tools.analytics.cells import load_store_days
    from tools.analytics.scan import scan_cells

    day = date(2026, 2, 12)
    frame = load_store_days(ctx.backend, as_of=day, start=date(2026, 1, 1), medians=False)
    row = (frame.store_id == "S007") & (frame.date == pd.Timestamp(day))
    frame.loc[row, "present_drivers"] = frame.loc[row, "scheduled_drivers"] // 2
    window = (day, day)
    morning = scan_cells(frame, window=window, mode="morning").anomalies
    assert [a.target for a in morning] == ["S007"] and "no_show_rate" in morning[0].drivers
    assert scan_cells(frame, window=window, mode="full").anomalies == []
    frame.loc[row, "late"] += (0.10 * frame.loc[row, "resolved"]).round()  # now it cost deliveries
    assert [a.target for a in scan_cells(frame, window=window, mode="full").anomalies] == ["S007"]
