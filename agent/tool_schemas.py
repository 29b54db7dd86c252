"""The tools as a model sees them: written for a model, closed vocabularies, no limits to set.

* **Descriptions** come from a versioned prompt (``prompts/tools/vN.md``: what a tool
  answers, when to call it, an example), not from developer docstrings; ``run_sql``'s is
  followed by the data dictionary (:func:`tools.data.dictionary.data_dictionary`).
* **Vocabularies** are enums generated from the reviewed files: ``causes`` from the causal
  graph, action ids from the action catalog. A value outside them is still a tool error
  naming the valid ones (a model may ignore an enum; the tool does not).
* **Limits** are not in the schema: :func:`tool_input` sets ``run_sql``'s row cap and
  timeout from the run's context and leaves ``query_kpis``' row cap at the tool's default;
  a value the model sends for one is dropped.
* **Shapes** are what OpenAI strict mode accepts (no free-form dicts, no tuples): a lever
  override is a list of ``{action_id, value}``. ``tests/unit/agent/test_tool_schemas.py``
  checks every schema with the openai package's own strict conversion.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from functools import cache, lru_cache
from typing import Any

from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from agent.context import Context
from prompts import load_prompt
from tools import TOOLS
from tools.data.dictionary import data_dictionary
from tools.data.views import LateRule
from tools.vocabulary import ActionId, CauseId

HIDDEN: dict[str, tuple[str, ...]] = {
    "run_sql": ("max_rows", "timeout_s"),
    "query_kpis": ("max_rows",),
}
"""Arguments that are the operator's limits, not the model's choice."""

COMPACT_BELOW_TOKENS = 16_000
"""Below this context window, run_sql's data dictionary lists column names only."""

_SECTION = re.compile(r"^## (?P<name>\w+)\n(?P<body>.*?)(?=^## |\Z)", re.S | re.M)


class _ActionSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action_id: str = Field(description="Catalog action whose lever to set.")
    value: float = Field(description="The lever's value, in the unit the catalog gives.")


@lru_cache(maxsize=1)
def _vocabulary_types() -> tuple[Any, type[BaseModel]]:
    """(cause type, action-setting model) from the shared vocabulary."""
    setting = create_model(
        "ActionSetting",
        __base__=_ActionSetting,
        action_id=(ActionId, Field(description="Catalog action whose lever to set.")),
    )
    return CauseId, setting


def _override(name: str, field: str, info: FieldInfo) -> tuple[Any, Any]:
    cause, setting = _vocabulary_types()
    if (name, field) == ("recommend_actions", "causes"):
        return list[cause] | None, Field(  # type: ignore[valid-type]
            None, description="Diagnosed root causes, most likely first (default: diagnose now)."
        )
    if (name, field) == ("recommend_actions", "parameters"):
        return list[setting], Field(  # type: ignore[valid-type]
            default_factory=list, description="Lever settings that override the catalog's."
        )
    return info.annotation, copy.copy(info)


@cache
def model_args(name: str, nullable_defaults: bool = False) -> type[BaseModel]:
    """Return the arguments model of tool ``name`` as the model sees it (no limits).

    With ``nullable_defaults`` (strict mode, where every field is required) a field with a
    default becomes nullable, its default named in its description: a model sends null and
    the tool's default applies, rather than the model choosing every analysis setting.

    Raises:
        KeyError: an unknown tool.
    """
    spec = TOOLS[name]
    fields: dict[str, Any] = {}
    for field, info in spec.input_model.model_fields.items():
        if field in HIDDEN.get(name, ()):
            continue
        annotation, field_info = _override(name, field, info)
        if nullable_defaults and not field_info.is_required():
            default = field_info.get_default(call_default_factory=True)
            if default is not None and default != []:
                described = (field_info.description or "").rstrip(".")
                null = f"Null: {json.dumps(default, default=str)}."
                field_info = Field(None, description=f"{described}. {null}" if described else null)
                annotation = annotation | None
        fields[field] = (annotation, field_info)
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        name, __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


@lru_cache(maxsize=8)
def descriptions(name: str = "tools", version: str | None = None) -> dict[str, str]:
    """Tool name -> its description for a model, from ``prompts/tools``.

    The tools a version describes are the tools a model sees with it: an earlier version
    (pinned by a recorded eval) keeps the tools it had, the latest must describe them all.

    Raises:
        ValueError: a section for no tool, or the latest version missing a registered tool.
    """
    prompt = load_prompt(name, version)
    found = {m["name"]: m["body"].strip() for m in _SECTION.finditer(prompt.template)}
    latest = prompt.id == load_prompt(name).id
    if not set(found) <= set(TOOLS) or (latest and set(found) != set(TOOLS)):
        raise ValueError(f"{prompt.id} describes {sorted(found)}, the registry has {sorted(TOOLS)}")
    return found


def tool_definitions(context: Context) -> list[dict[str, Any]]:
    """Return the tools in OpenAI's format, for ``bind_tools`` (a fresh copy each call).

    With ``context.model.strict_tools`` the parameters are OpenAI strict schemas (every
    field required, optional ones nullable) and ``strict`` is set.
    """
    rule = LateRule(grace_min=context.late_grace_min, failed_is_late=context.late_failed_is_late)
    # a small context gets the column names only (the full dictionary is ~1,100 tokens)
    compact = context.model.context_tokens < COMPACT_BELOW_TOKENS
    text = _definitions(context.tools_prompt, context.model.strict_tools, compact, rule)
    return list(json.loads(text))


@lru_cache(maxsize=16)
def _definitions(prompt_id: str, strict: bool, compact: bool, rule: LateRule) -> str:
    """Build the tool definitions as JSON, once per combination (every model turn sends them)."""
    name, _, version = prompt_id.partition("@")
    text = descriptions(name, version or None)
    out = []
    for tool in (t for t in TOOLS if t in text):
        description = text[tool]
        if tool == "run_sql":
            description += "\n\n" + data_dictionary(rule, compact=compact)
        args = model_args(tool, strict)
        schema = to_strict_json_schema(args) if strict else args.model_json_schema()
        function: dict[str, Any] = {
            "name": tool,
            "description": description,
            "parameters": _untitled(schema),
        }
        if strict:
            function["strict"] = True
        out.append({"type": "function", "function": function})
    return json.dumps(out)


def _untitled(schema: Any) -> Any:
    """Drop pydantic's ``title`` keys from a schema (tokens a model does not need)."""
    if isinstance(schema, dict):
        return {
            k: _untitled(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


def tool_definitions_hash(context: Context) -> str:
    """SHA-256 of what the model is sent about the tools (it is part of the prompt)."""
    payload = json.dumps(tool_definitions(context), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def tool_input(name: str, args: dict[str, Any], context: Context) -> dict[str, Any]:
    """Turn a model's arguments into the tool's input: shapes converted, limits set.

    A hidden limit the model sent anyway is overwritten, never obeyed.
    """
    out = {k: v for k, v in args.items() if v is not None}  # null: the tool's default
    if name == "recommend_actions" and isinstance(out.get("parameters"), list):
        out["parameters"] = {
            str(s.get("action_id")): s.get("value")
            for s in out["parameters"]
            if isinstance(s, dict)
        }
    for hidden in HIDDEN.get(name, ()):
        out.pop(hidden, None)
    if name == "run_sql":
        out["max_rows"] = context.sql_max_rows
        out["timeout_s"] = context.sql_timeout_s
    return out
