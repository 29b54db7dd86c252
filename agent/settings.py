"""Settings: the only module that reads the environment (``LASTMILE_*`` variables and ``.env``)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration shared by every surface (CLI, server, Slack, scheduler)."""

    model_config = SettingsConfigDict(
        env_prefix="LASTMILE_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    # data
    db: Path = Field(
        default=Path("data/lastmile.duckdb"),
        description="DuckDB database file: the embedded default analytics store.",
    )
    duckdb_memory_limit: str = Field(
        default="2GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory cap for DuckDB during loads; it spills to disk beyond it.",
    )

    # operational state: checkpoints, runs, approvals, dispatched actions
    state_db: Path = Field(
        default=Path("data/lastmile_state.sqlite"),
        description="SQLite file for checkpoints, run traces, approvals and actions.",
    )
    postgres_url: SecretStr | None = Field(
        default=None,
        description="postgresql:// URL: keep checkpoints and runs in Postgres instead of SQLite.",
    )

    # LLM: any OpenAI-compatible endpoint; without one, the offline planner runs
    llm_base_url: str | None = Field(default=None, description="e.g. http://localhost:8080/v1")
    llm_model: str = Field(default="gpt-4o-mini", description="Model name at the endpoint.")
    llm_api_key: SecretStr | None = Field(default=None, description="API key (secret).")
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_tokens: int = Field(default=2048, ge=64, le=32_000)
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    llm_structured_output: Literal["function_calling", "json_schema", "json_mode"] = Field(
        default="function_calling",
        description="How plans are requested; function_calling works with most local servers.",
    )
    llm_offline: bool = Field(
        default=False, description="Force the offline planner even when an endpoint is set."
    )

    # agent
    max_tool_calls: int = Field(default=12, ge=1, le=100, description="Tool budget of a chat run.")
    max_diagnoses: int = Field(
        default=3, ge=1, le=20, description="Anomalies diagnosed per triage."
    )
    today: date | None = Field(
        default=None,
        description="The day questions are asked ('yesterday', 'last week' count from it); "
        "default: the day after the data's last service date. Pin it for reproducible evals.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # the one definition of a late delivery (tools.data.views.LateRule)
    late_grace_min: float = Field(
        default=0.0, ge=0, le=1440, description="Minutes past the promise still on time."
    )
    late_failed_is_late: bool = Field(default=True, description="A failed delivery is late.")

    @model_validator(mode="after")
    def _check_llm(self) -> Settings:
        if self.llm_base_url is not None and not self.llm_base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                f"LASTMILE_LLM_BASE_URL must be an http(s) URL, got {self.llm_base_url!r}"
            )
        if self.postgres_url is not None and not self.postgres_url.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("LASTMILE_POSTGRES_URL must start with postgresql://")
        return self

    @property
    def uses_llm_endpoint(self) -> bool:
        """True when a real model endpoint is configured and not overridden."""
        return not self.llm_offline and (
            self.llm_base_url is not None or self.llm_api_key is not None
        )


@lru_cache
def get_settings() -> Settings:
    """Return the process's settings (cached; tests clear the cache to override)."""
    return Settings()
