"""A plan's numbers add up: one normal per scope, attribution parts summing to the excess,
avoided late deliveries within the excess (issue 10, items 2 and 7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.schemas import ActionPlan
from agent.service import AgentService
from agent.verify import verify_plan
from tests.conftest import SMALL_WORLD


@pytest.fixture(scope="module")
def shortage_plan(
    small_world_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ActionPlan, list[dict]]:  # type: ignore[type-arg]
    state = tmp_path_factory.mktemp("state") / "s.sqlite"
    service = AgentService(db=small_world_db, state_db=state, offline=True)
    try:
        view = service.ask(
            f"why was S003 late on {SMALL_WORLD.day(40)} and what should we do?",
            today=SMALL_WORLD.day(41),
        )
        record = service.record(view.run_id)
    finally:
        service.close()
    assert view.plan is not None
    return view.plan, record.evidence


def _pts(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"([+-]\d+\.\d) pts", text)]


def test_attribution_parts_sum_to_the_printed_excess(
    shortage_plan: tuple[ActionPlan, list[dict]],
) -> None:  # type: ignore[type-arg]
    plan, _ = shortage_plan
    (parts,) = [f.text for f in plan.findings if f.text.startswith("Of the ")]
    total, *pieces = _pts(parts)
    assert pieces and abs(sum(pieces) - total) <= 0.05 * len(pieces) + 1e-9


def test_one_normal_per_scope(shortage_plan: tuple[ActionPlan, list[dict]]) -> None:  # type: ignore[type-arg]
    plan, _ = shortage_plan
    texts = [f.text for f in plan.findings] + [o.text for o in plan.outlook]
    normals = {
        m for t in texts if "S003" in t for m in re.findall(r"against (\d+\.\d)% normally", t)
    }
    assert len(normals) == 1, texts


def test_avoided_within_the_excess_and_the_plan_verifies(
    shortage_plan: tuple[ActionPlan, list[dict]],
) -> None:  # type: ignore[type-arg]
    plan, evidence = shortage_plan
    records = {e["id"]: e for e in evidence}
    (diagnosis,) = [e for e in evidence if e["tool"] == "diagnose"]
    assert plan.actions
    assert (
        sum(a.expected_avoided for a in plan.actions) <= diagnosis["numbers"]["late_excess"] + 0.05
    )
    assert all(a.avoided_ci[1] <= diagnosis["numbers"]["late_excess"] + 0.05 for a in plan.actions)
    assert verify_plan(plan, records).ok
