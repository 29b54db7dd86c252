"""Per-run knobs of the graph (LangGraph ``context_schema``); defaults come from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from agent.settings import get_settings


@dataclass(kw_only=True)
class Context:
    """What one run is allowed and asked to do. Immutable for the run."""

    db: str = field(
        default_factory=lambda: str(get_settings().db),
        metadata={"description": "DuckDB database the tools read."},
    )
    state_db: str = field(
        default_factory=lambda: str(get_settings().state_db),
        metadata={"description": "SQLite file where dispatched actions are recorded."},
    )
    offline: bool = field(
        default_factory=lambda: not get_settings().uses_llm_endpoint,
        metadata={"description": "Use the deterministic offline planner instead of an endpoint."},
    )
    chat_prompt: str = field(
        default="chat_system@v3", metadata={"description": "Prompt id of the tool-choosing model."}
    )
    compose_prompt: str = field(
        default="compose_plan@v2", metadata={"description": "Prompt id of the plan composer."}
    )
    max_tool_calls: int = field(
        default_factory=lambda: get_settings().max_tool_calls,
        metadata={"description": "Tool budget of a chat run; then the plan is composed."},
    )
    max_diagnoses: int = field(
        default_factory=lambda: get_settings().max_diagnoses,
        metadata={"description": "Anomalies diagnosed in a triage, highest score first."},
    )
    max_compose_attempts: int = field(
        default=3, metadata={"description": "Model-written plans tried before the template."}
    )
    horizon_days: int = field(default=7, metadata={"description": "Forecast horizon."})
    today: date | None = field(
        default_factory=lambda: get_settings().today,
        metadata={"description": "The day questions are asked (None: the day after the data)."},
    )
    random_state: int = field(default=0, metadata={"description": "Seed of the tools."})
    late_grace_min: float = field(
        default_factory=lambda: get_settings().late_grace_min,
        metadata={"description": "Minutes past the promise a delivery still counts on time."},
    )
    late_failed_is_late: bool = field(
        default_factory=lambda: get_settings().late_failed_is_late,
        metadata={"description": "Whether a failed delivery counts as late."},
    )
