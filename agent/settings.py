"""Settings: the only module that reads the environment (``LASTMILE_*`` variables and ``.env``)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.data.backends import DataSource
from tools.data.spark import SparkConfig


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

    backend: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Query engine: duckdb (the db file) or spark (the Parquet lake at data). "
        "Unset with data set means spark.",
    )
    data: str | None = Field(
        default=None,
        description="Parquet data lake the Spark backend reads: a folder written by "
        "`lastmile export --parquet`, or an object-store URL (s3a://, abfss://, gs://).",
    )
    spark_master: str = Field(
        default="local[*]", description="Spark master URL: local[N], spark://host:7077, yarn."
    )
    spark_driver_memory: str = Field(
        default="4g",
        pattern=r"^\d+[kmgt]?$",
        description="Spark driver heap (read when the JVM starts).",
    )
    spark_shuffle_partitions: int = Field(
        default=8,
        ge=1,
        description="Spark partitions after a shuffle (store-day tables are small).",
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

    # approvals and dispatch
    approval_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="Hours a plan's actions can be decided; later, the run expires and "
        "nothing is dispatched (a morning plan is stale by the next morning).",
    )
    approvers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Who may decide which actions, as JSON: user -> scopes, each '*', "
        "'region:R1' or 'store:S003'. Empty: every signed-in user may decide.",
    )
    dispatch_url: str | None = Field(
        default=None,
        description="Where approved actions are delivered: an http(s) webhook (POST, with an "
        "Idempotency-Key header), or a file path for a local JSON Lines sink. Default: "
        "dispatched_actions.jsonl beside the state file.",
    )
    dispatch_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to the dispatch webhook (secret)."
    )

    # web app (lastmile serve)
    web_users: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Basic-auth users of the web app, as JSON: user -> password (secret).",
    )
    web_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Bearer tokens of API clients, as JSON: user -> token (secret). Decisions "
        "record the user the password or token belongs to.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /metrics; without it, /metrics answers loopback only.",
    )
    delivery_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often the server retries deliveries."
    )
    # Slack bot (HTTP mode at /slack/events; Socket Mode when an app-level token is set)
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot token (xoxb-...) of the Slack app (secret)."
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Signing secret of the Slack app: requests are verified."
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        description="App-level token (xapp-...): serve connects over Socket Mode instead of "
        "receiving HTTP requests (for workspaces that cannot reach the server).",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (tests: a fake)."
    )
    slack_channel: str | None = Field(
        default=None, description="Channel id the morning digest is posted to."
    )
    slack_approver_group: str | None = Field(
        default=None,
        description="Slack user group id (S...) whose members may decide actions from Slack.",
    )
    slack_approver_channel: str | None = Field(
        default=None,
        description="Channel id (C...) whose members may decide actions from Slack. With "
        "neither this nor the group set, nobody may decide from Slack.",
    )
    digest_max_data_age_days: int = Field(
        default=2,
        ge=0,
        le=365,
        description="A digest without a date whose newest data is older than this many days "
        "(before today) alerts that the feed may have stopped instead of triaging old data.",
    )
    feed_max_age_days: dict[Literal["staffing", "conditions"], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Days an optional feed (staffing, conditions) may end before the day a "
        'run checks before the run stops, as JSON: {"conditions": 2}. A feed not named only '
        "adds a caveat when it stops (its factors are then not assessed).",
    )
    slack_post_all_normal: bool = Field(
        default=True, description="Post a one-line 'all normal' digest on a quiet day."
    )
    # the in-process morning triage of `serve`
    triage_schedule: str | None = Field(
        default=None,
        description="Cron expression of serve's own morning triage, e.g. '0 7 * * *' "
        "(None: no schedule; use cron or a Kubernetes CronJob with `lastmile triage`).",
    )
    triage_timezone: str = Field(
        default="UTC", description="IANA time zone the schedule's hours are in."
    )
    test_kill_at: str | None = Field(
        default=None,
        description="Tests only: the process kills itself (SIGKILL) once this graph node has "
        "finished, to prove a run survives a crash at that boundary.",
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
    llm_context_tokens: int = Field(
        default=8192,
        ge=2048,
        le=2_000_000,
        description="The model's context window in tokens: prompts are built to fit it.",
    )
    llm_strict_tools: bool = Field(
        default=False,
        description="Send tool schemas in OpenAI strict mode (OpenAI and Azure OpenAI; "
        "most local servers ignore or reject it).",
    )
    llm_stream_tokens: bool = Field(
        default=False,
        description="Stream the model's tokens to chat surfaces as it writes (the endpoint "
        "must stream, with usage in the stream); off: one request, one whole answer.",
    )
    llm_redact: bool | None = Field(
        default=None,
        description="Redact driver ids, customer zones and free-text notes before a request "
        "leaves the machine; query rows keep only numbers, dates and known ids; default: on "
        "unless the endpoint is on this machine or a private network.",
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
    sql_max_rows: int = Field(
        default=200, ge=1, le=5_000, description="Rows a run_sql query may return."
    )
    sql_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Seconds a run_sql query may take."
    )
    trace_retention_days: int | None = Field(
        default=90,
        ge=0,
        description="Days run records (traces, transcripts) are kept; older ones are purged "
        "when a service starts. 0 keeps them forever.",
    )

    # the model registry (tools.core.models): fitted artefacts reused across processes
    model_dir: Path | None = Field(
        default=None,
        description="Directory of fitted models (detector, causal model, forecaster), reused "
        "until the data or the code changes; default: 'models' beside the state database.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI (e.g. file:///srv/mlruns or http://mlflow:5000): every "
        "fitted model is logged there too (needs the [mlflow] extra; its telemetry is off).",
    )

    # the one definition of a late delivery (tools.data.views.LateRule)
    late_grace_min: float = Field(
        default=0.0, ge=0, le=1440, description="Minutes past the promise still on time."
    )
    late_failed_is_late: bool = Field(default=True, description="A failed delivery is late.")

    @model_validator(mode="after")
    def _lake_means_spark(self) -> Settings:
        # a lake named without an engine is read with the only engine that reads lakes
        if self.data and "backend" not in self.model_fields_set:
            self.backend = "spark"
        return self

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
        for name, secrets in (("WEB_USERS", self.web_users), ("WEB_TOKENS", self.web_tokens)):
            weak = [u for u, v in secrets.items() if len(v.get_secret_value()) < 8]
            if weak:
                raise ValueError(
                    f"LASTMILE_{name}: the secrets of {weak} are shorter than 8 characters"
                )
        if self.triage_schedule is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(self.triage_schedule, datetime.now(UTC))
            except CronSimError as exc:
                raise ValueError(
                    f"LASTMILE_TRIAGE_SCHEDULE {self.triage_schedule!r} is not a cron "
                    f"expression ({exc}): five fields, e.g. '0 7 * * *' for 07:00 every day"
                ) from None
        try:
            ZoneInfo(self.triage_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"LASTMILE_TRIAGE_TIMEZONE {self.triage_timezone!r} is not an IANA time zone "
                "(e.g. 'Europe/Paris', 'America/Chicago', 'UTC')"
            ) from None
        for user, scopes in self.approvers.items():
            bad = [x for x in scopes if x != "*" and not x.startswith(("region:", "store:"))]
            if bad:
                raise ValueError(
                    f"LASTMILE_APPROVERS: {user}'s scopes must be '*', 'region:<id>' or "
                    f"'store:<id>', got {bad}"
                )
        return self

    def data_source(self, db: str | Path | None = None) -> DataSource:
        """Return the data the runs read: ``db`` (else the setting) or, with Spark, the lake.

        Raises:
            ValueError: the Spark backend without a lake (``LASTMILE_DATA`` / ``--data``).
        """
        if self.backend == "spark":
            if not self.data:
                raise ValueError(
                    "the Spark backend reads a Parquet data lake: set LASTMILE_DATA (or "
                    "--data DIR) to one written by `lastmile export --parquet DIR`"
                )
            config = SparkConfig(
                master=self.spark_master,
                driver_memory=self.spark_driver_memory,
                shuffle_partitions=self.spark_shuffle_partitions,
            )
            return DataSource(kind="spark", location=self.data, spark=config)
        return DataSource(kind="duckdb", location=str(db if db is not None else self.db))

    @property
    def uses_llm_endpoint(self) -> bool:
        """True when a real model endpoint is configured and not overridden."""
        return not self.llm_offline and (
            self.llm_base_url is not None or self.llm_api_key is not None
        )

    @property
    def recovery_quiet_s(self) -> float:
        """Seconds a run may go without finishing a step before recovery takes it as crashed.

        Its longest step is a model call with its retries: twice that, plus a minute, leaves
        a live run alone (420 s with the default 60 s timeout and 2 retries).
        """
        return 2 * self.llm_timeout_s * (self.llm_max_retries + 1) + 60

    @property
    def redacts(self) -> bool:
        """Whether requests to the model are redacted (``llm_redact``, else by endpoint)."""
        if self.llm_redact is not None:
            return self.llm_redact
        return self.uses_llm_endpoint and not is_local_endpoint(self.llm_base_url)


def is_local_endpoint(url: str | None) -> bool:
    """Tell whether a model endpoint is on this machine or a private network.

    Local: a loopback or private IP address, ``localhost``, or a ``.local`` / ``.internal``
    name. A bare host name (``ollama``, ``litellm``) is not assumed local: it may be a gateway
    that forwards to a hosted model; set ``LASTMILE_LLM_REDACT=false`` for one that is not.
    ``None`` (OpenAI's public API, the client's default) is not local.
    """
    if url is None:
        return False
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith((".local", ".internal"))
    return address.is_loopback or address.is_private or address.is_link_local


@lru_cache
def get_settings() -> Settings:
    """Return the process's settings (cached; tests clear the cache to override)."""
    return Settings()
