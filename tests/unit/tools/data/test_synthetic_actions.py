"""What approved actions do in a synthetic world: exact, in dispatch order, efficacy applied."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import ALL_KINDS, SMALL_WORLD
from tools.data.synthetic import build_world
from tools.data.synthetic.actions import AppliedAction, realised_outcomes

SHORTAGE_DAY = date(2026, 2, 10)  # S003's driver shortage (day 40)


def _drivers(n: float, day: date = SHORTAGE_DAY) -> AppliedAction:
    return AppliedAction(action_id="call_backup_drivers", day=day, stores=["S003"], value=n)


def test_backup_drivers_avoid_part_of_the_shortage_and_never_more_than_its_excess() -> None:
    world = build_world(SMALL_WORLD, ALL_KINDS)
    (r,) = realised_outcomes(world, [_drivers(4)])
    assert 0 < r.avoided <= r.excess
    assert r.raw_avoided >= r.avoided  # past normal it may improve more: not counted
    # on a quiet day there is no excess to avoid, whatever the lever does
    (quiet,) = realised_outcomes(world, [_drivers(4, date(2026, 1, 20))])
    assert quiet.excess == pytest.approx(0.0, abs=0.5) and quiet.avoided <= quiet.excess + 1e-9


def test_a_world_delivering_half_an_action_realises_half_of_it() -> None:
    full = realised_outcomes(build_world(SMALL_WORLD, ALL_KINDS), [_drivers(4)])[0]
    halved = SMALL_WORLD.model_copy(update={"action_efficacy": {"call_backup_drivers": 0.5}})
    half = realised_outcomes(build_world(halved, ALL_KINDS), [_drivers(4)])[0]
    assert half.raw_avoided == pytest.approx(0.5 * full.raw_avoided, rel=1e-9)


def test_actions_on_one_store_day_are_credited_in_dispatch_order() -> None:
    world = build_world(SMALL_WORLD, ALL_KINDS)
    first, second = realised_outcomes(world, [_drivers(2), _drivers(2)])
    (both,) = realised_outcomes(world, [_drivers(4)])
    assert first.raw_avoided + second.raw_avoided == pytest.approx(both.raw_avoided, rel=1e-9)
    assert second.excess == pytest.approx(first.excess - first.avoided, abs=1e-6)


def test_an_action_the_simulator_cannot_apply_is_refused_by_name() -> None:
    world = build_world(SMALL_WORLD, ALL_KINDS)
    bad = AppliedAction(action_id="extend_promises", day=SHORTAGE_DAY, stores=["S003"], value=1)
    with pytest.raises(ValueError, match="cannot apply 'extend_promises'"):
        realised_outcomes(world, [bad])
    with pytest.raises(ValueError, match="S999"):
        realised_outcomes(world, [_drivers(2).model_copy(update={"stores": ["S999"]})])
