"""A cause whose effect the monitor found moved: every plan naming it says so, in words."""

from __future__ import annotations

from agent.moved_effects import CAVEAT_START, with_moved_effects
from agent.schemas import ActionPlan
from agent.verify import extract_numbers

MOVED = {"no_show_rate": "driver no-show rate"}


def _plan(variables: list[str]) -> ActionPlan:
    return ActionPlan.model_validate(
        {
            "summary": "s",
            "hypotheses": [
                {
                    "target": "S003",
                    "cause": "driver_no_shows" if v == "no_show_rate" else "weather",
                    "confidence": "high",
                    "text": "t",
                    "evidence_ids": ["diagnose#1"],
                    "variable": v,
                }
                for v in variables
            ],
        }
    )


def test_a_plan_naming_a_moved_cause_gets_one_caveat_without_numbers() -> None:
    plan = with_moved_effects(_plan(["no_show_rate", "precip_mm"]), MOVED)
    (caveat,) = [c for c in plan.caveats if c.startswith(CAVEAT_START)]
    assert "driver no-show rate" in caveat and not extract_numbers(caveat)
    assert with_moved_effects(plan, MOVED) == plan, "idempotent"


def test_a_plan_without_the_moved_cause_is_left_alone() -> None:
    plan = _plan(["precip_mm"])
    assert with_moved_effects(plan, MOVED) == plan
    assert with_moved_effects(_plan(["no_show_rate"]), {}) == _plan(["no_show_rate"])
