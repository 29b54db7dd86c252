"""An action corrected by its track record: the model reads the fields only when set, and
every plan proposing it says so in words."""

from __future__ import annotations

from typing import Any

from agent.prompting import bounded_result, compact_result
from agent.results import ToolResult
from agent.schemas import ActionPlan
from agent.track_record import CAVEAT_START, with_track_record
from agent.verify import extract_numbers


def _rec(calibration: str | None) -> dict[str, Any]:
    action = {
        "action_id": "call_backup_drivers",
        "expected_avoided": 6.0,
        "avoided_ci": [4.0, 8.0],
        "calibration": calibration,
        "model_avoided": None if calibration is None else [12.0, 11.0, 13.0],
    }
    return {"evidence_id": "recommend_actions#1", "actions": [action]}


def test_untracked_actions_show_the_model_no_calibration_fields() -> None:
    for view in (
        compact_result("recommend_actions", _rec(None)),
        bounded_result("recommend_actions", _rec(None), 10_000),
    ):
        assert set(view["actions"][0]) == {"action_id", "expected_avoided", "avoided_ci"}
    shown = compact_result("recommend_actions", _rec("over-promising: ..."))["actions"][0]
    assert shown["calibration"] == "over-promising: ..." and shown["model_avoided"]


def _plan(action_ids: list[str]) -> ActionPlan:
    return ActionPlan.model_validate(
        {
            "summary": "s",
            "hypotheses": [],
            "actions": [
                {
                    "action_id": a,
                    "target": "S003",
                    "parameters": [{"name": "drivers", "value": 3}],
                    "expected_avoided": 6.0,
                    "avoided_low": 4.0,
                    "avoided_high": 8.0,
                    "cost": 540.0,
                    "rationale": "r",
                    "evidence_ids": ["recommend_actions#1"],
                }
                for a in action_ids
            ],
        }
    )


def test_a_plan_proposing_a_corrected_action_gets_one_caveat_without_numbers() -> None:
    results = [
        ToolResult(
            id="recommend_actions#1",
            tool="recommend_actions",
            result=_rec("over-promising: 2 of 12 tracked outcomes ..."),
        )
    ]
    plan = with_track_record(_plan(["call_backup_drivers"]), results)
    (caveat,) = [c for c in plan.caveats if c.startswith(CAVEAT_START)]
    assert "call_backup_drivers" in caveat and "over-promising" in caveat
    assert extract_numbers(caveat, set()) == []  # caveats carry no numbers
    assert with_track_record(plan, results).caveats == plan.caveats  # idempotent
    # a plan that does not propose it, or a recommendation without a correction: no caveat
    assert with_track_record(_plan([]), results).caveats == []
    untracked = [ToolResult(id="r#1", tool="recommend_actions", result=_rec(None))]
    assert with_track_record(_plan(["call_backup_drivers"]), untracked).caveats == []


def test_an_answer_that_quotes_a_corrected_action_without_proposing_it_gets_the_caveat() -> None:
    results = [ToolResult(id="r#1", tool="recommend_actions", result=_rec("over-promising: x"))]
    plan = _plan([]).model_copy(
        update={"summary": "Call in backup drivers: it would have avoided about 6 late deliveries."}
    )
    (caveat,) = with_track_record(plan, results).caveats
    assert caveat.startswith(f"{CAVEAT_START}call_backup_drivers: ")
