"""The tool registry: every tool is reachable by name and validates its arguments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import tools
from tools.core.context import ToolContext


def test_every_tool_is_registered_under_its_module_name() -> None:
    assert set(tools.TOOLS) == {
        "query_kpis",
        "run_sql",
        "scan_anomalies",
        "diagnose",
        "forecast",
        "recommend_actions",
        "rank_scopes",
        "check_data_health",
    }
    for name, spec in tools.TOOLS.items():
        assert spec.fn.__module__ == f"tools.{name}"
        assert spec.description
        assert "evidence_id" in spec.result_model.model_fields


def test_tools_take_plain_dicts_and_validate_them(ctx: ToolContext) -> None:
    result = tools.TOOLS["query_kpis"](ctx, {"scope": "region", "ids": ["R1"], "grain": "total"})
    assert result.evidence_id in ctx.evidence  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        tools.TOOLS["scan_anomalies"](ctx, {"days": 0})


def test_tools_never_import_the_agent() -> None:
    import pathlib

    root = pathlib.Path(tools.__file__).parent
    offenders = [
        p
        for p in root.rglob("*.py")
        if "import agent" in p.read_text() or "from agent" in p.read_text()
    ]
    assert offenders == []


def test_tool_schemas_stay_small_for_grammar_constrained_servers() -> None:
    """Servers that turn a schema into a grammar unroll length bounds (a 20,000-character
    maxLength crashed llama-cpp-python): the schemas the model sees carry no large bounds."""
    import json
    import re

    for name, spec in tools.TOOLS.items():
        schema = json.dumps(spec.input_model.model_json_schema())
        for key, value in re.findall(r'"(maxLength|maxItems|minLength|minItems)": (\d+)', schema):
            assert int(value) <= 64, f"{name}: {key} {value}"
