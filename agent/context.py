"""Per-run knobs of the graph (LangGraph ``context_schema``).

The service resolves :class:`~agent.settings.Settings` once and builds each run's context
from them (:meth:`Context.from_settings`), so nodes never read the environment. The field
defaults (read from the process's settings) only serve a graph started without the service,
such as ``langgraph dev`` on ``langgraph.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import SecretStr

from agent.settings import Settings, get_settings
from tools.catalog.calibration import ActionCalibration
from tools.core.models import ModelRegistry
from tools.data.backend import Backend
from tools.data.backends import DataSource
from tools.data.views import LateRule

StructuredOutput = Literal["function_calling", "json_schema", "json_mode"]


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The model endpoint a run talks to, resolved once from the settings.

    ``base_url`` None and ``api_key`` None mean no endpoint: the offline planner answers.
    """

    base_url: str | None = None
    name: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    temperature: float = 0.0
    max_tokens: int = 2048
    structured_output: StructuredOutput = "function_calling"
    redact: bool = False
    """Redact driver ids, customer zones and free text before a request leaves the machine."""
    context_tokens: int = 8192
    """The model's context window: the compose input and chat history are built to fit it."""
    strict_tools: bool = False
    """Send tool schemas in OpenAI strict mode (every field required, optional ones null)."""
    stream_tokens: bool = False
    """Stream the answer token by token (chat surfaces show it as it is written)."""

    moved_effects: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "description": "Causes whose effect on the late rate the monitor found moved (open "
            "'effects' alerts), variable -> label: plans naming them say so."
        },
    )
    models: ModelRegistry | None = field(
        default=None,
        metadata={
            "description": "Where the tools keep fitted models (None: the process's memory; "
            "the service's keeps them in its model directory and records them)."
        },
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelConfig:
        """Return the endpoint the settings name (``redact`` resolved for a non-local one)."""
        return cls(
            base_url=settings.llm_base_url,
            name=settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            structured_output=settings.llm_structured_output,
            redact=settings.redacts,
            context_tokens=settings.llm_context_tokens,
            strict_tools=settings.llm_strict_tools,
            stream_tokens=settings.llm_stream_tokens,
        )


def _values(settings: Settings) -> dict[str, Any]:
    """Return the context fields the settings decide (the one settings-to-run mapping)."""
    return {
        "db": str(settings.db),
        "state_db": str(settings.state_db),
        "offline": not settings.uses_llm_endpoint,
        "model": ModelConfig.from_settings(settings),
        "max_tool_calls": settings.max_tool_calls,
        "max_diagnoses": settings.max_diagnoses,
        "today": settings.today,
        "late_grace_min": settings.late_grace_min,
        "late_failed_is_late": settings.late_failed_is_late,
        "sql_max_rows": settings.sql_max_rows,
        "sql_timeout_s": settings.sql_timeout_s,
        "feed_max_age_days": dict(settings.feed_max_age_days),
    }


def _default(name: str) -> Callable[[], Any]:
    """Return a field default read from the process's settings (a run without the service)."""
    return lambda: _values(get_settings())[name]


@dataclass(kw_only=True)
class Context:
    """What one run is allowed and asked to do. Immutable for the run."""

    db: str = field(
        default_factory=_default("db"),
        metadata={"description": "DuckDB database the tools read."},
    )
    data: DataSource | None = field(
        default=None,
        metadata={
            "description": "The data the tools read and the engine that reads it (None: the "
            "DuckDB file at db)."
        },
    )
    state_db: str = field(
        default_factory=_default("state_db"),
        metadata={"description": "SQLite file where dispatched actions are recorded."},
    )
    offline: bool = field(
        default_factory=_default("offline"),
        metadata={"description": "Use the deterministic offline planner instead of an endpoint."},
    )
    model: ModelConfig = field(
        default_factory=_default("model"),
        metadata={"description": "The model endpoint, its name and limits."},
    )
    chat_prompt: str = field(
        default="chat_system@v4", metadata={"description": "Prompt id of the tool-choosing model."}
    )
    tools_prompt: str = field(
        default="tools@v2", metadata={"description": "Prompt id of the tool descriptions."}
    )
    compose_prompt: str = field(
        default="compose_plan@v4", metadata={"description": "Prompt id of the plan composer."}
    )
    max_tool_calls: int = field(
        default_factory=_default("max_tool_calls"),
        metadata={"description": "Tool budget of a chat run; then the plan is composed."},
    )
    max_diagnoses: int = field(
        default_factory=_default("max_diagnoses"),
        metadata={"description": "Anomalies diagnosed in a triage, highest score first."},
    )
    max_compose_attempts: int = field(
        default=3, metadata={"description": "Model-written plans tried before the template."}
    )
    horizon_days: int = field(default=7, metadata={"description": "Forecast horizon."})
    today: date | None = field(
        default_factory=_default("today"),
        metadata={"description": "The day questions are asked (None: the day after the data)."},
    )
    random_state: int = field(default=0, metadata={"description": "Seed of the tools."})
    late_grace_min: float = field(
        default_factory=_default("late_grace_min"),
        metadata={"description": "Minutes past the promise a delivery still counts on time."},
    )
    late_failed_is_late: bool = field(
        default_factory=_default("late_failed_is_late"),
        metadata={"description": "Whether a failed delivery counts as late."},
    )
    sql_max_rows: int = field(
        default_factory=_default("sql_max_rows"),
        metadata={"description": "Rows a run_sql query may return (not the model's to set)."},
    )
    sql_timeout_s: float = field(
        default_factory=_default("sql_timeout_s"),
        metadata={"description": "Seconds a run_sql query may take (not the model's to set)."},
    )
    feed_max_age_days: dict[str, int] = field(
        default_factory=_default("feed_max_age_days"),
        metadata={
            "description": "Days an optional feed may end before the checked day before a run "
            "stops (by table); feeds not named only add a caveat."
        },
    )
    in_effect: dict[str, dict[str, str]] = field(
        default_factory=dict,
        metadata={
            "description": "Actions approved for ongoing incidents, by target then action id, "
            "with why: not proposed again (the service reads them from the incident store)."
        },
    )
    calibration: dict[str, ActionCalibration] = field(
        default_factory=dict,
        metadata={
            "description": "Each catalog action's track record from the outcomes of dispatched "
            "actions: an uncalibrated one's estimates are corrected (the service measures them)."
        },
    )

    moved_effects: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "description": "Causes whose effect on the late rate the monitor found moved (open "
            "'effects' alerts), variable -> label: plans naming them say so."
        },
    )
    models: ModelRegistry | None = field(
        default=None,
        metadata={
            "description": "Where the tools keep fitted models (None: the process's memory; "
            "the service's keeps them in its model directory and records them)."
        },
    )

    def __post_init__(self) -> None:
        if self.data is None:
            self.data = DataSource(kind="duckdb", location=self.db)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Context:
        """Return a run's context, every default from ``settings`` (then ``overrides``)."""
        values = {**_values(settings), **overrides}
        if "data" not in overrides:
            values["data"] = settings.data_source(values["db"])
        return cls(**values)

    @property
    def late_rule(self) -> LateRule:
        """The run's definition of a late delivery."""
        return LateRule(grace_min=self.late_grace_min, failed_is_late=self.late_failed_is_late)

    def backend(self, late: LateRule | None = None) -> Backend:
        """Return the backend over the run's data (the run's definition of late by default).

        Raises:
            FileNotFoundError: no data at the location.
            SparkUnavailableError: Spark cannot start here (the message says how to fix it).
        """
        assert self.data is not None  # set by __post_init__
        return self.data.open(late or self.late_rule)
