"""Prometheus metrics of the web app: runs, their latency, tool errors, pending work."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agent.storage.monitoring import Snapshot


class Metrics:
    """One registry per app (so tests can build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "lastmile_runs_total",
            "Runs finished, by kind and status.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lastmile_run_seconds",
            "Wall time of a run until it stops (done, waiting, failed).",
            ["kind"],
            buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160),
            registry=self.registry,
        )
        self.tool_errors = Counter(
            "lastmile_tool_errors_total",
            "Tool calls that failed, by tool.",
            ["tool"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "lastmile_decisions_total",
            "Decisions recorded, by decision.",
            ["decision"],
            registry=self.registry,
        )
        self.pending_approvals = Gauge(
            "lastmile_pending_approvals", "Runs waiting for decisions.", registry=self.registry
        )
        self.outbox_pending = Gauge(
            "lastmile_outbox_pending",
            "Approved actions not yet delivered.",
            registry=self.registry,
        )

        self.data_trusted = Gauge(
            "lastmile_data_trusted",
            "1 when the latest monitored day's data passed every health check, 0 when not.",
            registry=self.registry,
        )
        self.drift_z = Gauge(
            "lastmile_data_drift_max_abs_z",
            "Largest absolute drift z of the operational features on the latest monitored day.",
            registry=self.registry,
        )
        self.mase = Gauge(
            "lastmile_forecast_mase",
            "Forecast MASE over the last week of the latest monitored day, by KPI.",
            ["kpi"],
            registry=self.registry,
        )
        self.alarms = Gauge(
            "lastmile_detector_alarms",
            "Anomalies the detector raised on the latest monitored day.",
            registry=self.registry,
        )
        self.open_alerts = Gauge(
            "lastmile_monitor_open_alerts",
            "Open monitor alerts, by kind (health, decay, alarms, agent, outcomes).",
            ["kind"],
            registry=self.registry,
        )
        self.outcome_coverage = Gauge(
            "lastmile_action_outcome_coverage",
            "Share of an action's tracked outcomes inside its impact model's 80 % interval.",
            ["action"],
            registry=self.registry,
        )
        self.monitor_day = Gauge(
            "lastmile_monitor_last_day_timestamp_seconds",
            "The latest monitored service date (Unix time of its midnight UTC).",
            registry=self.registry,
        )

    def render(self, counts: dict[str, int], monitor: Snapshot | None = None) -> bytes:
        """Return the exposition text, with the gauges read just now.

        Monitor gauges are set only once the monitor has run (absent before: no false 0).
        """
        self.pending_approvals.set(counts["pending_approvals"])
        self.outbox_pending.set(counts["outbox_pending"])
        if monitor is not None:
            self._monitor(monitor)
        return generate_latest(self.registry)

    def _monitor(self, snap: Snapshot) -> None:
        if snap.day is not None:
            stamp = datetime.combine(snap.day, datetime.min.time(), tzinfo=UTC).timestamp()
            self.monitor_day.set(stamp)
        if snap.trusted is not None:
            self.data_trusted.set(snap.trusted)
        if snap.max_drift_z is not None:
            self.drift_z.set(snap.max_drift_z)
        for kpi, value in snap.mase.items():
            self.mase.labels(kpi=kpi).set(value)
        if snap.alarms is not None:
            self.alarms.set(snap.alarms)
        for kind in ("health", "decay", "alarms", "agent", "outcomes"):
            self.open_alerts.labels(kind=kind).set(snap.open_alerts.get(kind, 0))
        for action, value in snap.outcome_coverage.items():
            self.outcome_coverage.labels(action=action).set(value)
