"""What every tool call gets besides its arguments: the data backend and the run's evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools.catalog.calibration import ActionCalibration
from tools.core.evidence import EvidenceStore
from tools.core.models import ModelRegistry, shared_registry
from tools.data.backend import Backend, DuckDBBackend


@dataclass
class ToolContext:
    """Per-run context of the tools (model-invisible: never part of a tool's arguments)."""

    backend: Backend
    evidence: EvidenceStore = field(default_factory=EvidenceStore)
    random_state: int = 0
    max_rows: int = 500
    in_effect: dict[str, dict[str, str]] = field(default_factory=dict)
    """Actions already approved and in effect, by target then action id, with the reason:
    ``recommend_actions`` does not propose them again (the caller's approvals, not data)."""
    feed_max_age_days: dict[str, int] = field(default_factory=dict)
    """Days an optional feed (by table) may end before the checked day before
    ``check_data_health`` calls it severe (the operator's setting, not the model's)."""
    calibration: dict[str, ActionCalibration] = field(default_factory=dict)
    """Track record of each catalog action's impact estimates, from the outcomes of the
    caller's dispatched actions: ``recommend_actions`` corrects an uncalibrated action's
    estimate and says so (:mod:`tools.catalog.calibration`)."""

    models: ModelRegistry = field(default_factory=shared_registry)
    """Fitted detectors, causal models and forecasters by data and code version (default:
    this process's memory; the agent's keeps them in its model directory and records them)."""

    @classmethod
    def for_duckdb(cls, path: str | Path, **kwargs: object) -> ToolContext:
        """Context over a DuckDB file."""
        return cls(backend=DuckDBBackend(path), **kwargs)  # type: ignore[arg-type]
