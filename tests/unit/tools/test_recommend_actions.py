"""recommend_actions: catalog actions that treat the cause, with impacts that hold in simulation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from evals.groundtruth import simulated_avoided, world_of
from tools.catalog import load_catalog
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.recommend_actions import RecommendActionsInput, recommend_actions

CASES = [
    ("S003", date(2026, 2, 10), "driver_no_shows", "call_backup_drivers"),
    ("R2", date(2026, 2, 15), "weather", "weather_protocol"),
    ("R1", date(2026, 2, 20), "carrier_failure", "rebalance_dsp_volume"),
    ("S012", date(2026, 2, 22), "unplanned_volume", None),
    ("S006", date(2026, 1, 31), "dispatch_delay", "escalate_store_picking"),
    ("R2", date(2026, 2, 5), "traffic", None),
]


@pytest.mark.parametrize(("target", "day", "cause", "action"), CASES)
def test_the_top_action_treats_the_cause_and_its_impact_holds(
    ctx: ToolContext, small_world_db: Path, target: str, day: date, cause: str, action: str | None
) -> None:
    result = recommend_actions(ctx, RecommendActionsInput(target=target, day=day))
    top = result.actions[0]
    assert result.causes[0] == cause
    assert cause in top.treats
    if action:
        assert top.action_id == action
    assert top.avoided_ci[0] <= top.expected_avoided <= top.avoided_ci[1]
    assert 0 < top.expected_avoided <= result.late_deliveries
    assert top.cost > 0
    # the same action applied in the simulated world avoids about what was promised
    value = next(iter(top.parameters.values()))
    truth = simulated_avoided(world_of(small_world_db), top.action_id, value, day, top.stores)
    # never more than the cell's excess over normal: the plan promises no more
    assert top.expected_avoided <= top.cap
    assert top.expected_avoided == pytest.approx(min(truth, top.cap), rel=0.3)


def test_actions_come_only_from_the_catalog_and_are_ranked(ctx: ToolContext) -> None:
    catalog = {a.id for a in load_catalog().actions}
    result = recommend_actions(
        ctx, RecommendActionsInput(target="S003", day=date(2026, 2, 10), max_actions=10)
    )
    assert {a.action_id for a in result.actions} <= catalog
    assert [a.rank for a in result.actions] == list(range(1, len(result.actions) + 1))
    assert set(result.skipped) | {a.action_id for a in result.actions} == catalog
    numbers = ctx.evidence.get(result.evidence_id).numbers  # type: ignore[union-attr]
    assert numbers["call_backup_drivers.expected_avoided"] == result.actions[0].expected_avoided


def test_a_manager_can_change_a_parameter(ctx: ToolContext) -> None:
    base = recommend_actions(
        ctx, RecommendActionsInput(target="S003", day=date(2026, 2, 10), causes=["driver_no_shows"])
    )
    drivers = base.actions[0].parameters["drivers"]
    fewer = recommend_actions(
        ctx,
        RecommendActionsInput(
            target="S003",
            day=date(2026, 2, 10),
            causes=["driver_no_shows"],
            parameters={"call_backup_drivers": max(1.0, drivers - 3)},
        ),
    )
    assert fewer.actions[0].expected_avoided < base.actions[0].expected_avoided
    assert fewer.actions[0].cost < base.actions[0].cost


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"parameters": {"call_backup_drivers": 99}}, "drivers must be within 1..15"),
        ({"parameters": {"teleport_parcels": 1}}, "no action 'teleport_parcels' in the catalog"),
        ({"target": "S777"}, "unknown store or region"),
    ],
)
def test_bad_requests_are_recoverable_errors(
    ctx: ToolContext, args: dict[str, object], message: str
) -> None:
    base = {"target": "S003", "day": "2026-02-10", "causes": ["driver_no_shows"]}
    with pytest.raises(ToolError, match=message):
        recommend_actions(ctx, RecommendActionsInput.model_validate({**base, **args}))


def test_a_broken_catalog_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "actions.yaml"
    bad.write_text(
        "version: 1\ncurrency: USD\nactions:\n  - id: a\n    title: t\n    description: d\n"
        "    treats: []\n"
        "    lever: {kind: add_drivers, parameter: n, unit: u, min: 1, max: 2}\n"
        "    cost: {fixed: 0, per_unit: 1}\n    lead_time_hours: 1\n    needs_approval: true\n"
    )
    with pytest.raises(ValueError, match="treats"):
        load_catalog(bad)


def test_actions_for_a_day_to_come_are_sized_by_the_forecast(ctx: ToolContext) -> None:
    """Day 1 of a two-day storm: for day 2 the forecast still expects most of the excess;
    for the day after, none (the weather feed says it is over)."""
    from tests.conftest import SMALL_WORLD

    day = SMALL_WORLD.day(45)
    base = recommend_actions(ctx, RecommendActionsInput(target="R2", day=day))
    ahead = recommend_actions(
        ctx, RecommendActionsInput(target="R2", day=day, apply_on=SMALL_WORLD.day(46))
    )
    assert ahead.apply_on == SMALL_WORLD.day(46) and ahead.expected_excess is not None
    assert 0 < ahead.expected_excess
    top = ahead.actions[0]
    assert top.action_id == base.actions[0].action_id
    # never more than either the cell's excess or what the forecast expects that day
    assert top.expected_avoided <= min(ahead.late_excess, ahead.expected_excess) + 0.05
    assert top.expected_avoided <= base.actions[0].expected_avoided
    over = recommend_actions(
        ctx, RecommendActionsInput(target="R2", day=day, apply_on=SMALL_WORLD.day(47))
    )
    assert over.actions == [] and over.expected_excess == 0
    assert all("expects no problem" in why for why in over.skipped.values() if "forecast" in why)
    with pytest.raises(ToolError, match="days after"):
        recommend_actions(ctx, RecommendActionsInput(target="R2", day=day, apply_on=day))
