"""The tools as a model sees them: strict-compatible schemas, written for a model, no limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai.lib._pydantic import to_strict_json_schema

from agent.context import Context
from agent.nodes.common import call_tool, tool_context
from agent.schemas import ActionPlan
from agent.state import State
from agent.tool_schemas import HIDDEN, model_args, tool_definitions, tool_input
from tools import TOOLS
from tools.catalog import load_catalog
from tools.causal.graph import load_graph


def strict_violations(schema: Any, where: str = "$") -> list[str]:
    """Where a JSON schema breaks OpenAI strict mode's rules (objects closed, every property
    required, no tuple or free-form object types)."""
    out: list[str] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            if schema.get("additionalProperties") is not False:
                out.append(f"{where}: additionalProperties must be false")
            if set(schema.get("required", [])) != set(schema.get("properties", {})):
                out.append(f"{where}: every property must be required")
        if "prefixItems" in schema:
            out.append(f"{where}: tuple (prefixItems)")
        for key, value in schema.items():
            out += strict_violations(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            out += strict_violations(value, f"{where}[{i}]")
    return out


def _context(**overrides: Any) -> Context:
    return Context(db="unused.duckdb", **overrides)


def test_every_tool_schema_and_the_plan_pass_openai_strict_conversion() -> None:
    checked = []
    for name in TOOLS:
        strict = to_strict_json_schema(model_args(name))
        assert strict_violations(strict) == [], name
        checked.append(name)
    assert strict_violations(to_strict_json_schema(ActionPlan)) == []
    # what the model is sent in strict mode is exactly that conversion
    for definition in tool_definitions(_context()):
        assert "strict" not in definition["function"]
    sent = {
        d["function"]["name"]: d["function"]
        for d in tool_definitions(Context(db="unused.duckdb", model=_strict_model()))
    }
    assert all(f["strict"] and not strict_violations(f["parameters"]) for f in sent.values())


def _strict_model() -> Any:
    from agent.context import ModelConfig

    return ModelConfig(strict_tools=True)


def test_descriptions_are_written_for_a_model_with_an_example() -> None:
    for definition in tool_definitions(_context()):
        function = definition["function"]
        text = function["description"]
        assert "Raises:" not in text and "Args:" not in text, function["name"]
        assert "Example:" in text and text.startswith("Answers"), function["name"]
    run_sql = next(
        d["function"] for d in tool_definitions(_context()) if d["function"]["name"] == "run_sql"
    )
    for word in ("store_day", "late_rate", "deliveries", "promised_end", "driver_note"):
        assert word in run_sql["description"]


def test_vocabularies_are_enums_from_the_reviewed_files() -> None:
    schema = model_args("recommend_actions").model_json_schema()
    causes = schema["properties"]["causes"]["anyOf"][0]["items"]["enum"]
    assert causes == load_graph().cause_names
    setting = schema["$defs"]["ActionSetting"]["properties"]["action_id"]["enum"]
    assert setting == [a.id for a in load_catalog().actions]


def test_limits_are_set_by_the_operator_not_the_model() -> None:
    for name, hidden in HIDDEN.items():
        assert not set(hidden) & set(model_args(name).model_fields), name
    context = _context(sql_max_rows=7, sql_timeout_s=2.5)
    args = tool_input("run_sql", {"sql": "SELECT 1", "max_rows": 5000, "timeout_s": 120}, context)
    assert args == {"sql": "SELECT 1", "max_rows": 7, "timeout_s": 2.5}
    args = tool_input(
        "recommend_actions",
        {"target": "S003", "parameters": [{"action_id": "call_backup_drivers", "value": 3}]},
        context,
    )
    assert args["parameters"] == {"call_backup_drivers": 3}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"causes": ["driver shortage"]}, "driver_no_shows"),
        ({"parameters": [{"action_id": "send_more_vans", "value": 2}]}, "call_backup_drivers"),
    ],
)
def test_an_unknown_cause_or_action_is_a_tool_error_naming_the_valid_ones(
    small_world_db: Path, args: dict[str, Any], named: str
) -> None:
    context = Context(db=str(small_world_db))
    call = tool_input("recommend_actions", {"target": "S003", "day": "2026-02-10", **args}, context)
    outcome = call_tool(tool_context(State(), context), "recommend_actions", call, "test")
    assert outcome.result is None and outcome.error is not None
    assert named in outcome.error
