"""query_kpis: rates recomputed from counts, scopes, caps and errors."""

from __future__ import annotations

from datetime import date

import pytest

from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.query_kpis import QueryKpisInput, query_kpis


def test_region_totals_match_a_direct_count(ctx: ToolContext) -> None:
    result = query_kpis(
        ctx,
        QueryKpisInput(
            scope="region", ids=["R2"], start=date(2026, 2, 1), end=date(2026, 2, 14), grain="week"
        ),
    )
    direct = ctx.backend.query(
        "SELECT count(*) FILTER (WHERE is_late)::DOUBLE "
        "/ count(*) FILTER (WHERE is_resolved) AS lr "
        "FROM delivery_outcomes WHERE region = 'R2' "
        "AND service_date BETWEEN '2026-02-01' AND '2026-02-14'"
    )
    assert result.totals["late_rate"] == pytest.approx(float(direct.lr.iloc[0]), abs=1e-4)
    # 2026-02-01 is a Sunday: the first week is labelled by its first day in the period
    assert [r["period"] for r in result.rows] == ["2026-02-01", "2026-02-02", "2026-02-09"]
    assert (
        ctx.evidence.get(result.evidence_id).numbers["total.late_rate"]
        == result.totals["late_rate"]
    )  # type: ignore[union-attr]


def test_daily_rows_show_the_incident(ctx: ToolContext) -> None:
    result = query_kpis(
        ctx,
        QueryKpisInput(scope="store", ids=["S003"], start=date(2026, 2, 8), end=date(2026, 2, 12)),
    )
    by_day = {r["period"]: r for r in result.rows}
    assert by_day["2026-02-10"]["no_show_rate"] > 0.3
    assert by_day["2026-02-10"]["late_rate"] > by_day["2026-02-08"]["late_rate"] + 0.05


def test_carrier_scope_and_row_cap(ctx: ToolContext) -> None:
    result = query_kpis(
        ctx,
        QueryKpisInput(
            scope="carrier", ids=["dsp"], start=date(2026, 2, 18), end=date(2026, 2, 22)
        ),
    )
    outage = next(r for r in result.rows if r["period"] == "2026-02-20")
    normal = next(r for r in result.rows if r["period"] == "2026-02-18")
    assert outage["late_rate"] > normal["late_rate"] + 0.2
    capped = query_kpis(
        ctx, QueryKpisInput(start=date(2026, 1, 1), end=date(2026, 3, 1), max_rows=10)
    )
    assert len(capped.rows) == 10 and capped.truncated


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"scope": "store", "ids": ["S03"]}, "did you mean"),
        ({"scope": "carrier", "ids": ["drone"]}, "unknown carrier drone"),
        ({"start": "2025-01-01", "end": "2025-01-31"}, "has no data"),
        ({"scope": "carrier", "kpis": ["no_show_rate"]}, "per carrier only"),
    ],
)
def test_recoverable_errors(ctx: ToolContext, args: dict[str, object], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        query_kpis(ctx, QueryKpisInput.model_validate(args))


def test_start_after_end_is_rejected_at_validation() -> None:
    with pytest.raises(ValueError, match="after end"):
        QueryKpisInput(start=date(2026, 2, 2), end=date(2026, 2, 1))
