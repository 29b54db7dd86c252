"""The service's model registry: where fitted models are kept, recorded and compared.

The tools fit through the registry of their context (:mod:`tools.core.models`); the service
gives every run one kept in its model directory (``LASTMILE_MODEL_DIR``, default ``models``
beside the state database), so a model is fitted once per data and code version across
processes. Each fitted model's record goes to the ``model_registry`` table and, with
``LASTMILE_MLFLOW_TRACKING_URI`` set, to MLflow (:class:`MlflowSink`). The monitor compares
each model's latest version with the one before (:func:`compare_versions`).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agent.errors import RunInputError
from agent.storage.models import list_models, record_model
from agent.storage.monitoring import alerts
from tools.causal.graph import load_graph
from tools.core.models import ModelRecord, ModelRegistry

if TYPE_CHECKING:
    from agent.settings import Settings
    from agent.storage.runs import RunStore

logger = logging.getLogger(__name__)

EXPERIMENT = "lastmile-models"


class MlflowSink:
    """Log every fitted model to MLflow as a run: params, validation metrics, the artefact.

    MLflow's usage telemetry (on by default since MLflow 3.2) is switched off before the
    client is imported: nothing leaves the machine but what goes to the tracking URI.

    Raises:
        RunInputError: MLflow is not installed, or the tracking URI cannot be used.
    """

    def __init__(self, uri: str, experiment: str = EXPERIMENT) -> None:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "true"
        # a tracking server that is down must not hold a triage for minutes (MLflow's
        # defaults: 7 retries with backoff, 120 s per request); the operator's own win
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        if uri.startswith("file:"):
            # MLflow 3.7+ refuses its file store (maintenance mode) unless told: a file: URI
            # is the operator's explicit choice, so it is honoured; sqlite:/// is preferred
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise RunInputError(
                "LASTMILE_MLFLOW_TRACKING_URI is set but MLflow is not installed: "
                "pip install 'lastmile-agent[mlflow]' (mlflow-skinny), or unset it"
            ) from None
        try:
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (
                found.experiment_id
                if found
                else self.client.create_experiment(experiment, artifact_location=_artefacts(uri))
            )
        except Exception as exc:
            raise RunInputError(
                f"LASTMILE_MLFLOW_TRACKING_URI {uri!r} cannot be used: {exc}; give a "
                "database URI (sqlite:///path/mlflow.db), a file: URI (file:///path/mlruns) "
                "or a tracking server's http(s) URL"
            ) from None

    def __call__(self, record: ModelRecord) -> None:
        """Log one fitted model (a new MLflow run, finished at once)."""
        from mlflow.entities import Metric, Param

        tags = {
            "lastmile.artefact_id": record.artefact_id,
            "lastmile.kind": record.kind,
            "lastmile.data_version": record.data_version,
            "lastmile.code_version": record.code_version,
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"{record.kind}: {record.scope}", tags=tags
        )
        run_id = run.info.run_id
        stamp = int(record.fitted_at.timestamp() * 1000)
        values: dict[str, Any] = {"scope": record.scope, **record.params}
        figures = {"rows": float(record.rows), "fit_seconds": record.fit_seconds}
        figures |= record.validation
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in figures.items()],
            params=[Param(k, str(v)[:6000]) for k, v in values.items()],
        )
        if record.path and Path(record.path).exists():
            self.client.log_artifact(run_id, record.path)
        self.client.set_terminated(run_id)


def _artefacts(uri: str) -> str | None:
    """Return where a database store keeps artefacts: beside the database file.

    MLflow's default for a database store is ``./mlruns`` of the working directory, so the
    pickles would land wherever a command happened to run. A file store keeps them inside
    itself and a tracking server decides for itself (None).
    """
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not database.is_absolute():
            database = Path.cwd() / database
        return (database.parent / "mlartifacts").as_uri()
    return None


class VersionChange(BaseModel):
    """A model's latest version against the one before it (same kind and scope)."""

    kind: str
    scope: str
    latest: ModelRecord
    previous: ModelRecord | None
    changed: list[str] = Field(description="What changed: 'data', 'code' (or 'new').")
    figures: dict[str, tuple[float | None, float | None]] = Field(
        description="Validation figure -> (previous, latest)."
    )


def compare_versions(records: list[ModelRecord]) -> list[VersionChange]:
    """Return, per kind and scope, the latest version against the one before it.

    Versions of one scope differ in data version, code version or both (parameters such
    as the analysed day make more artefacts of one version, not more versions).
    """
    groups: dict[tuple[str, str], list[ModelRecord]] = {}
    for r in sorted(records, key=lambda r: r.fitted_at):
        groups.setdefault((r.kind, r.scope), []).append(r)
    out = []
    for (kind, scope), rows in sorted(groups.items()):
        latest = rows[-1]
        version = (latest.data_version, latest.code_version)
        before = [r for r in rows if (r.data_version, r.code_version) != version]
        previous = before[-1] if before else None
        if previous is None:
            changed = ["new"]
        else:
            changed = [
                name
                for name, a, b in (
                    ("data", previous.data_version, latest.data_version),
                    ("code", previous.code_version, latest.code_version),
                )
                if a != b
            ]
        names = sorted(set(latest.validation) | set(previous.validation if previous else {}))
        figures = {
            n: (previous.validation.get(n) if previous else None, latest.validation.get(n))
            for n in names
        }
        out.append(
            VersionChange(
                kind=kind,
                scope=scope,
                latest=latest,
                previous=previous,
                changed=changed,
                figures=figures,
            )
        )
    return out


class ModelVersions:
    """Mixin of :class:`agent.service.AgentService`: its model registry and records."""

    settings: Settings
    state_db: Path
    store: RunStore

    @cached_property
    def models(self) -> ModelRegistry:
        """The registry every run of this service fits through (built on first use).

        Raises:
            RunInputError: the MLflow tracking URI is set but cannot be used.
        """
        directory = self.settings.model_dir or self.state_db.parent / "models"
        engine = self.store.engine
        listeners: list[Any] = [lambda record: record_model(engine, record)]
        if self.settings.mlflow_tracking_uri:
            listeners.append(MlflowSink(self.settings.mlflow_tracking_uri))
        return ModelRegistry(directory, listeners=listeners)

    def moved_effects(self) -> dict[str, str]:
        """Return variable -> label of the causes with an open ``effects`` alert."""
        graph = load_graph()
        return {
            a.name: graph.nodes[a.name].label
            for a in alerts(self.store.engine, open_only=True)
            if a.kind == "effects" and a.name in graph.nodes
        }

    def model_records(
        self, kind: str | None = None, since: datetime | None = None
    ) -> list[ModelRecord]:
        """Fitted models recorded by this service's runs, oldest first."""
        return list_models(self.store.engine, kind, since)
