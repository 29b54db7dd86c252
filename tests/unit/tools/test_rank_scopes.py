"""rank_scopes: stores and regions ranked against their own normal, noise-aware (issue 10)."""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_WORLD
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.rank_scopes import RankScopesInput, rank_scopes

day = SMALL_WORLD.day


def test_the_shortage_store_tops_its_day_and_stands_out(ctx: ToolContext) -> None:
    r = rank_scopes(ctx, RankScopesInput(start=day(40), end=day(40)))
    top = r.ranked[0]
    assert (top.id, top.significant) == ("S003", True)
    assert top.excess_late > 30 and top.late_rate > top.normal_rate
    # only what stands out is named: the injected shortage, nothing else that day
    assert [s.id for s in r.ranked if s.significant] == ["S003"]
    assert r.evidence_id in ctx.evidence
    assert ctx.evidence.get(r.evidence_id).facts["ranked"] == "S003"  # type: ignore[union-attr]


def test_a_quiet_week_names_no_store(ctx: ToolContext) -> None:
    r = rank_scopes(ctx, RankScopesInput(start=day(20), end=day(26)))
    assert r.judged == 20 and r.significant == 0
    assert all(not s.significant for s in r.ranked)
    assert r.dispersion >= 1.0


def test_regions_compared_side_by_side_over_the_storm(ctx: ToolContext) -> None:
    r = rank_scopes(
        ctx, RankScopesInput(level="region", ids=["R1", "R2"], start=day(45), end=day(46))
    )
    assert [s.id for s in r.ranked] == ["R2", "R1"]
    assert r.ranked[0].significant and r.ranked[0].excess_late > r.ranked[1].excess_late


def test_a_period_outside_the_data_or_unknown_ids_are_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="outside the data"):
        rank_scopes(
            ctx, RankScopesInput(start=day(0).replace(year=2024), end=day(0).replace(year=2024))
        )
    with pytest.raises(ToolError, match="unknown region"):
        rank_scopes(ctx, RankScopesInput(level="region", ids=["R9"], start=day(40), end=day(40)))
    with pytest.raises(ToolError, match="no history before"):
        rank_scopes(ctx, RankScopesInput(start=day(0), end=day(3)))
