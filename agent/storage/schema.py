"""The operational tables: runs, threads, decisions and the dispatch outbox.

One schema for both dialects (SQLite by default, PostgreSQL when configured), written with
SQLAlchemy Core; its history is the Alembic migrations beside it
(:mod:`agent.storage.migrations`), applied when a service opens the store. Timestamps are
ISO 8601 strings in UTC (``2026-03-09T07:00:00+00:00``): they sort as text on both dialects
and survive a copy between them unchanged. JSON columns hold the plan, trace and lever
settings as text, read back through pydantic.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("question", Text),
    Column("day", Text),
    Column("scope", Text),
    Column("db", Text),
    Column("status", Text, nullable=False),
    Column("model", Text),
    Column("prompts", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("plan", Text),
    Column("evidence", Text),
    Column("trace", Text),
    Column("decisions", Text),
    Column("error", Text),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("thread_id", Text),
    Column("started_by", Text),
    Column("approval_expires_at", Text),
)
Index("runs_thread", runs.c.thread_id, runs.c.created_at)

threads = Table(
    "threads",
    metadata,
    Column("thread_id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("created_by", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    # the run answering in this thread now: a second question waits for it (one at a time)
    Column("active_run_id", Text),
)

decisions = Table(
    "decisions",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("action_id", Text, nullable=False),
    Column("target", Text),
    Column("decision", Text, nullable=False),
    Column("parameters", Text),
    Column("note", Text),
    Column("decided_by", Text, nullable=False),
    Column("decided_at", Text, nullable=False),
    # kept when a run is purged (the decision log is an audit); the primary key is what
    # serialises two managers deciding one action: one insert wins
    PrimaryKeyConstraint("run_id", "idx", name="decisions_pk"),
)

actions = Table(
    "actions",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("action_id", Text, nullable=False),
    Column("target", Text),
    Column("parameters", Text),
    Column("expected_avoided", Float),
    Column("avoided_ci", Text),
    Column("cost", Float),
    Column("decision", Text),
    Column("decided_by", Text),
    Column("decided_at", Text),
    Column("dispatched_at", Text, nullable=False),
    Column("evidence_ids", Text),
    # the outbox: delivery to the configured webhook, retried until acknowledged
    Column("idempotency_key", Text),
    Column("delivery_status", Text, nullable=False, server_default="recorded"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Text),
    Column("lease_until", Text),
    Column("lease_token", Text),
    Column("delivered_at", Text),
    Column("last_error", Text),
    PrimaryKeyConstraint("run_id", "idx", name="actions_pk"),
)
Index("actions_due", actions.c.delivery_status, actions.c.next_attempt_at)

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", Text, primary_key=True),
    # one incident per (level, target) at a time: an anomaly seen again on the next triaged
    # day continues it; a triage that covers the target and no longer finds it resolves it
    Column("level", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("region", Text),
    Column("opened_on", Text, nullable=False),
    Column("last_seen", Text, nullable=False),
    Column("days_seen", Integer, nullable=False, server_default="1"),
    Column("status", Text, nullable=False),
    Column("severity", Text),
    Column("drivers", Text),
    Column("late_excess", Float),
    Column("last_run_id", Text),
    Column("resolved_on", Text),
    Column("acknowledged_by", Text),
    Column("acknowledged_at", Text),
    Column("snoozed_until", Text),
    Column("updated_at", Text, nullable=False),
)
Index("incidents_target", incidents.c.target, incidents.c.status)

digests = Table(
    "digests",
    metadata,
    # the morning digest of one (service date, scope): the primary key makes it post once
    Column("day", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("claimed_by", Text, nullable=False),
    Column("claimed_at", Text, nullable=False),
    Column("run_id", Text),
    Column("channel", Text),
    Column("ts", Text),
    Column("error", Text),
    PrimaryKeyConstraint("day", "scope", name="digests_pk"),
)

slack_threads = Table(
    "slack_threads",
    metadata,
    # a Slack thread (channel, thread ts) is one service thread, so follow-ups keep context
    Column("channel", Text, nullable=False),
    Column("thread_ts", Text, nullable=False),
    Column("thread_id", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    PrimaryKeyConstraint("channel", "thread_ts", name="slack_threads_pk"),
)

slack_runs = Table(
    "slack_runs",
    metadata,
    # where a run answers in Slack: a run a crash interrupted is posted once it is recovered
    Column("run_id", Text, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("thread_ts", Text, nullable=False),
    Column("progress_ts", Text, nullable=False),
    Column("posted_at", Text),
)

slack_events = Table(
    "slack_events",
    metadata,
    # event ids already handled: Slack retries an event it did not see acknowledged in time
    Column("event_id", Text, primary_key=True),
    Column("received_at", Text, nullable=False),
)

monitoring = Table(
    "monitoring",
    metadata,
    # one figure of the monitor per (service date, kind, name, subject): a drift z, a
    # data-health finding, a forecast's scaled error, the detector's alarm count, an agent
    # health figure; a re-run of the same day replaces its rows
    Column("day", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("flagged", Integer, nullable=False, server_default="0"),
    Column("severity", Text),
    Column("message", Text),
    Column("data_version", Text),
    Column("recorded_at", Text, nullable=False),
    PrimaryKeyConstraint("day", "kind", "name", "subject", name="monitoring_pk"),
)
Index("monitoring_kind", monitoring.c.kind, monitoring.c.day)

monitoring_alerts = Table(
    "monitoring_alerts",
    metadata,
    # an alert is an episode of one flagged figure: opened on its first flagged day, kept
    # while it stays flagged, closed on the first checked day it is not; posted once
    Column("alert_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("opened_on", Text, nullable=False),
    Column("last_seen", Text, nullable=False),
    Column("closed_on", Text),
    Column("message", Text, nullable=False),
    Column("posted_at", Text),
)
Index(
    "monitoring_alerts_key",
    monitoring_alerts.c.kind,
    monitoring_alerts.c.name,
    monitoring_alerts.c.subject,
    monitoring_alerts.c.closed_on,
)

action_outcomes = Table(
    "action_outcomes",
    metadata,
    # what a dispatched action realised, measured once its day is in the data: in the
    # simulated world on the day its promise was sized for (synthetic data, exact), or on the
    # day it applied against the plan's no-action forecast (real data); judged: it enters
    # the action's track record; model_* are the impact model's own figures, promised_* what
    # the plan showed (the same unless the action's track record corrected them)
    Column("run_id", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("action_id", Text, nullable=False),
    Column("target", Text),
    Column("stores", Text),
    Column("applied_on", Text, nullable=False),
    Column("sized_for", Text, nullable=False),
    Column("judged", Integer, nullable=False, server_default="1"),
    Column("model_avoided", Float, nullable=False),
    Column("model_low", Float, nullable=False),
    Column("model_high", Float, nullable=False),
    Column("promised", Float, nullable=False),
    Column("promised_low", Float, nullable=False),
    Column("promised_high", Float, nullable=False),
    Column("realised", Float, nullable=False),
    Column("method", Text, nullable=False),
    Column("caveat", Text),
    Column("dispatched_at", Text, nullable=False),
    Column("measured_at", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "idx", name="action_outcomes_pk"),
)
Index("action_outcomes_action", action_outcomes.c.action_id, action_outcomes.c.dispatched_at)

model_registry = Table(
    "model_registry",
    metadata,
    # every fitted artefact (detector, causal model, forecaster) with the data and code it
    # came from and its validation figures (JSON); written once per artefact, when fitted
    Column("artefact_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("data_version", Text, nullable=False),
    Column("code_version", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("fitted_at", Text, nullable=False),
    Column("fit_seconds", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("validation", Text, nullable=False),
    Column("path", Text),
)
Index("model_registry_kind", model_registry.c.kind, model_registry.c.fitted_at)
