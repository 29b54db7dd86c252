"""The model registry: reuse by data and code version, across processes, never a torn file."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tools.core import models
from tools.core.models import Fit, ModelRecord, ModelRegistry, code_version


@pytest.fixture(autouse=True)
def _empty_memory() -> Iterator[None]:
    """Each test starts as a new process would: nothing in memory."""
    models._MEMORY.clear()
    yield
    models._MEMORY.clear()


class Counter:
    """A fit function that counts its calls and returns a picklable artefact."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Fit[dict[str, int]]:
        self.calls += 1
        return Fit({"coef": self.calls}, rows=10, validation={"r2": 0.5, "bad": float("nan")})


def test_an_artefact_is_fitted_once_then_loaded_by_a_second_process(tmp_path: Path) -> None:
    seen: list[ModelRecord] = []
    fit = Counter()
    first = ModelRegistry(tmp_path, listeners=[seen.append])
    model = first.fitted("causal", "store cells", "data-1", {"day": "2026-03-09"}, fit)
    assert model == {"coef": 1} and fit.calls == 1 and first.fits == 1
    record = seen[0]
    assert record.validation == {"r2": 0.5}, "a figure that could not be computed is left out"
    assert (
        record.path and Path(record.path).exists() and record.code_version == code_version("causal")
    )
    models._MEMORY.clear()  # a new process
    second = ModelRegistry(tmp_path, listeners=[seen.append])
    again = second.fitted("causal", "store cells", "data-1", {"day": "2026-03-09"}, fit)
    assert again == {"coef": 1} and fit.calls == 1 and (second.fits, second.loads) == (0, 1)
    assert [r.artefact_id for r in seen] == [record.artefact_id] * 2, "each registry records it"
    assert [r.artefact_id for r in second.records()] == [record.artefact_id]


def test_a_new_data_version_code_version_or_parameter_refits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit = Counter()
    registry = ModelRegistry(tmp_path)
    registry.fitted("forecaster", "chain late_rate", "data-1", {"as_of": 1}, fit)
    registry.fitted("forecaster", "chain late_rate", "data-1", {"as_of": 1}, fit)
    assert fit.calls == 1
    registry.fitted("forecaster", "chain late_rate", "data-2", {"as_of": 1}, fit)
    registry.fitted("forecaster", "chain late_rate", "data-2", {"as_of": 2}, fit)
    assert fit.calls == 3
    monkeypatch.setattr(models, "code_version", lambda kind: "edited-code")
    registry.fitted("forecaster", "chain late_rate", "data-2", {"as_of": 2}, fit)
    assert fit.calls == 4, "edited model code is never served an artefact of the old code"
    versions = {(r.data_version, r.code_version) for r in registry.records()}
    assert len(versions) == 3


def test_code_version_follows_the_source_and_library_versions() -> None:
    assert code_version("detector") != code_version("causal") != code_version("forecaster")
    assert len(code_version("detector")) == 12


def test_a_torn_artefact_is_refitted_not_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fit = Counter()
    seen: list[ModelRecord] = []
    ModelRegistry(tmp_path, listeners=[seen.append]).fitted("detector", "chain", "d", {}, fit)
    Path(seen[0].path or "").write_bytes(b"\x80\x05 torn")
    models._MEMORY.clear()
    with caplog.at_level(logging.WARNING):
        model = ModelRegistry(tmp_path).fitted("detector", "chain", "d", {}, fit)
    assert model == {"coef": 2} and "unreadable" in caplog.text
    assert not list(tmp_path.glob("*/.*")), "no temporary file is left behind"


def test_an_artefact_that_cannot_be_pickled_stays_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[ModelRecord] = []
    registry = ModelRegistry(tmp_path, listeners=[seen.append])
    with caplog.at_level(logging.WARNING):
        model = registry.fitted("detector", "chain", "d", {}, lambda: Fit(lambda: 1, rows=1))
    assert callable(model) and seen[0].path is None and "are not kept in" in caplog.text
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.json"))
    assert registry.fitted("detector", "chain", "d", {}, Counter()) is model, "memory reuse"


def test_a_failing_fit_records_nothing_and_a_failing_listener_never_fails_the_fit(
    tmp_path: Path,
) -> None:
    def broken() -> Fit[int]:
        raise ValueError("too little history")

    def sink(record: ModelRecord) -> None:
        raise RuntimeError("tracking server down")

    registry = ModelRegistry(tmp_path, listeners=[sink])
    with pytest.raises(ValueError, match="too little history"):
        registry.fitted("causal", "x", "d", {}, broken)
    assert registry.records() == []
    assert registry.fitted("causal", "x", "d", {}, Counter()) == {"coef": 1}


def test_a_memory_only_fit_is_kept_by_a_registry_with_a_directory(tmp_path: Path) -> None:
    fit = Counter()
    ModelRegistry().fitted("causal", "x", "d", {"n": list(range(20))}, fit)
    kept = ModelRegistry(tmp_path)
    kept.fitted("causal", "x", "d", {"n": list(range(20))}, fit)
    assert fit.calls == 1 and len(kept.records()) == 1
    assert kept.records()[0].params["n"].startswith("20 items #"), "long keys are hashed"


def test_an_unwritable_model_directory_warns_once_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    registry = ModelRegistry(blocker)
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            registry.fitted("causal", "x", "d", {"n": n, "day": date(2026, 3, 9)}, Counter())
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].exc_info is None
    assert "not kept in" in warned[0].getMessage() and "writable folder" in warned[0].getMessage()


def test_prune_deletes_artefacts_fitted_before_the_cutoff(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.fitted("causal", "old", "d", {}, Counter())
    cutoff = datetime.now(UTC)
    registry.fitted("causal", "new", "d", {}, Counter())
    assert registry.prune(cutoff) == 1
    assert [r.scope for r in registry.records()] == ["new"]
    (tmp_path / "causal" / "junk.json").write_text("{not json")
    assert [r.scope for r in registry.records()] == ["new"], "an unreadable record is skipped"
    assert len(list(tmp_path.rglob("*.pkl"))) == 1
