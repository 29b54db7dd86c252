"""Prometheus metrics of the web app: runs, their latency, tool errors, pending work."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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

    def render(self, counts: dict[str, int]) -> bytes:
        """Return the exposition text, with the gauges read just now."""
        self.pending_approvals.set(counts["pending_approvals"])
        self.outbox_pending.set(counts["outbox_pending"])
        return generate_latest(self.registry)
