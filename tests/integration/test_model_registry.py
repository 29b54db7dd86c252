"""Model versions end to end: fitted once across processes, recorded, logged, compared.

A triage of the small world's storm (region R2) fits a detector, a causal model and a
forecaster through the service's registry; a second service (a new process: empty memory)
over the same state directory loads them instead, and plans the same.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from agent.errors import RunInputError
from agent.monitor_report import write_report
from agent.service import AgentService
from agent.settings import Settings
from tests.servers import missing
from tools.causal import case
from tools.core import models
from tools.data.synthetic.faults import DataFault, inject

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORM = date(2026, 2, 15)
KINDS = {"detector", "causal", "forecaster"}


def _forget() -> None:
    """Empty what a new process would not have: fitted models and explained cells."""
    models._MEMORY.clear()
    case._EXPLAINED.clear()


@pytest.fixture(autouse=True)
def _new_process() -> Iterator[None]:
    _forget()
    yield
    _forget()


def _service(db: Path, state: Path, **settings: object) -> AgentService:
    return AgentService(
        Settings(llm_offline=True, **settings),  # type: ignore[arg-type]
        db=db,
        state_db=state / "s.sqlite",
    )


def _plan(service: AgentService, region: str = "R2") -> dict[str, object]:
    view = service.triage(STORM, "region", [region])
    return service.record(view.run_id).plan or {}


def test_a_second_process_reuses_every_fitted_model_and_plans_the_same(
    world_copy: Path, tmp_path: Path
) -> None:
    first = _service(world_copy, tmp_path)
    try:
        plan = _plan(first)
        records = first.model_records()
    finally:
        first.close()
    assert {r.kind for r in records} == KINDS
    assert first.models.fits == len(records) and all(Path(r.path or "").exists() for r in records)
    for r in records:
        assert r.data_version and r.code_version == models.code_version(r.kind)
        assert r.rows > 0 and r.validation, f"{r.kind} carries its validation figures"
    causal = next(r for r in records if r.kind == "causal")
    assert 0 < causal.validation["r2"] <= 1
    forecaster = next(r for r in records if r.kind == "forecaster")
    assert forecaster.validation["mase"] > 0
    detector = next(r for r in records if r.kind == "detector")
    assert 0 <= detector.validation["reference_alarm_rate"] < 0.2
    _forget()  # the next morning's process
    second = _service(world_copy, tmp_path)
    try:
        again = _plan(second)
        assert second.models.fits == 0 and second.models.loads == len(records)
        assert len(second.model_records()) == len(records), "recorded once"
    finally:
        second.close()
    assert again["actions"] == plan["actions"] and again["summary"] == plan["summary"]


def test_a_new_data_version_is_a_new_model_version_the_monitor_compares(
    world_copy: Path, tmp_path: Path
) -> None:
    service = _service(world_copy, tmp_path)
    try:
        _plan(service)
        # a load that changes only days after the storm: a new data version, same history
        inject(world_copy, [DataFault(kind="demand", start=date(2026, 2, 25), factor=1.5)])
        _plan(service)
        result = service.monitor(STORM, days=14)
    finally:
        service.close()
    changes = {(v.kind, v.scope): v for v in result.models}
    causal = [v for v in changes.values() if v.kind == "causal"]
    assert causal and all(v.changed == ["data"] for v in causal)
    for v in causal:
        assert v.previous is not None and v.previous.data_version != v.latest.data_version
        # the history up to the storm did not change: neither did the model's figures
        assert v.figures["r2"][0] == pytest.approx(v.figures["r2"][1])
    out = write_report(result, tmp_path / "report")
    table = pd.read_csv(out.parent / "model_versions.csv")
    assert len(table) == sum(len(v.figures) for v in result.models)
    assert set(zip(table.kind, table.scope, strict=True)) == set(changes)
    row = table[(table.scope == causal[0].scope) & (table.figure == "r2")].iloc[0]
    assert row.changed == "data" and row.latest == pytest.approx(causal[0].latest.validation["r2"])
    assert row.previous == pytest.approx(causal[0].previous.validation["r2"])  # type: ignore[union-attr]
    text = out.read_text()
    assert "## Model versions" in text and "Detector scores of the latest scan" in text


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_fitted_models_are_logged_to_mlflow_with_telemetry_off(
    world_copy: Path, tmp_path: Path, store: str
) -> None:
    if importlib.util.find_spec("mlflow") is None:
        missing("MLflow is missing: pip install -e '.[mlflow]' (mlflow-skinny)")
    from mlflow import MlflowClient

    uri = (tmp_path / "mlruns").as_uri() if store == "file" else f"sqlite:///{tmp_path}/ml.db"
    service = _service(world_copy, tmp_path, mlflow_tracking_uri=uri)
    try:
        _plan(service)
        records = {r.artefact_id: r for r in service.model_records()}
    finally:
        service.close()
    from mlflow.telemetry.utils import is_telemetry_disabled

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true" and is_telemetry_disabled()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lastmile-models")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(records) and {r.data.tags["lastmile.kind"] for r in runs} == KINDS
    for run in runs:
        record = records[run.data.tags["lastmile.artefact_id"]]
        assert run.data.tags["lastmile.code_version"] == record.code_version
        for name, value in record.validation.items():
            assert run.data.metrics[name] == pytest.approx(value)
        assert run.data.params["scope"] == record.scope
        files = [f.path for f in client.list_artifacts(run.info.run_id)]
        assert files == [Path(record.path or "").name]
        # beside the store, never in the working directory
        assert run.info.artifact_uri.startswith(tmp_path.as_uri())
    assert not (Path.cwd() / "mlruns").exists()


def test_an_unusable_tracking_uri_is_a_clear_error(world_copy: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("mlflow") is None:
        missing("MLflow is missing: pip install -e '.[mlflow]' (mlflow-skinny)")
    # the service builds its registry when it starts (the retention purge prunes models)
    with pytest.raises(RunInputError, match="LASTMILE_MLFLOW_TRACKING_URI 'nosuchscheme://x'"):
        _service(world_copy, tmp_path, mlflow_tracking_uri="nosuchscheme://x")
