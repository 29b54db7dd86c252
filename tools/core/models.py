"""The model registry: every fitted artefact keyed by the data and the code it came from.

The detector (baselines and robust covariance of a scan), the causal model (the pruned graph
fitted on one set of cells) and the forecaster (Prophet on one scope's KPI) are fitted on
the data of one *data version* (:meth:`tools.data.backend.Backend.data_version`: every load
changes it) by the code of one *code version* (:func:`code_version`: a hash of the modules
that fit and of the versions of the libraries they call). An artefact is reused until either
changes: first from memory (a bounded LRU, shared by the runs of a process), then from the
model directory (pickles written atomically, so a second process or tomorrow's first run
loads instead of fitting). Each fit is recorded (:class:`ModelRecord`) with its validation
figures and handed to the registry's listeners: the agent stores the records in its
``model_registry`` table, which the monitor compares across versions, and logs them to
MLflow when a tracking URI is set.

The model directory is trusted like the code: pickles are loaded only from the directory
the operator configured (``LASTMILE_MODEL_DIR``), never from data or a request.

Example:
    >>> registry = ModelRegistry(Path("out/models"))
    >>> model = registry.fitted("forecaster", "chain late_rate", version, {"as_of": day}, fit)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

from cachetools import LRUCache
from pydantic import BaseModel, Field

__all__ = [
    "CODE",
    "Fit",
    "ModelKind",
    "ModelRecord",
    "ModelRegistry",
    "code_version",
    "shared_registry",
]

logger = logging.getLogger(__name__)

ModelKind = Literal["detector", "causal", "forecaster"]

T = TypeVar("T")

CODE: dict[ModelKind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "detector": (
        (
            "tools.analytics.detect",
            "tools.analytics.scan",
            "tools.analytics.baselines",
            "tools.analytics.panel",
            "tools.analytics.cells",
            "tools.analytics.levels",
            "tools.analytics.anomalies",
            "tools.analytics.thresholds",
        ),
        ("pyod", "scikit-learn", "numpy", "pandas"),
    ),
    "causal": (
        (
            "tools.causal.diagnosis",
            "tools.causal.scm",
            "tools.causal.effects",
            "tools.causal.case",
            "tools.analytics.baselines",
            "tools.analytics.cells",
            "tools.analytics.thresholds",
        ),
        ("dowhy", "scikit-learn", "networkx", "numpy", "pandas"),
    ),
    "forecaster": (
        ("tools.analytics.forecasting", "tools.forecast", "tools.forecast_inputs"),
        ("prophet", "numpy", "pandas"),
    ),
}
"""Per kind: the modules whose source fits it and the libraries whose versions it depends on.
A change to any of them is a new code version, so no artefact of the old code is served."""


@functools.cache
def code_version(kind: ModelKind) -> str:
    """Return a 12-hex id of the code that fits ``kind``: its modules' source and libraries."""
    modules, libraries = CODE[kind]
    digest = hashlib.sha256(kind.encode())
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"model code module {name} not found")
        digest.update(Path(spec.origin).read_bytes())
    for lib in libraries:
        digest.update(f"{lib}=={metadata.version(lib)}".encode())
    return digest.hexdigest()[:12]


class ModelRecord(BaseModel):
    """One fitted artefact: what it was fitted on, by which code, and how well it fits."""

    artefact_id: str = Field(description="Hash of kind, scope, data and code version, params.")
    kind: ModelKind
    scope: str = Field(description="What it models, for people: 'store cells, 1 day' etc.")
    data_version: str
    code_version: str
    params: dict[str, str] = Field(description="The rest of the key, as text.")
    fitted_at: datetime
    fit_seconds: float = Field(ge=0)
    rows: int = Field(ge=0, description="Rows (cells, days) the artefact was fitted on.")
    validation: dict[str, float] = Field(
        description="Its validation figures (per kind: alarm rates and score quantiles, "
        "in-sample R2 and effects, in-sample MAE and MASE)."
    )
    path: str | None = Field(None, description="Where the artefact is kept (None: memory only).")


@dataclass
class Fit(Generic[T]):
    """What a fit function returns: the artefact, its rows and validation figures."""

    model: T
    rows: int
    validation: dict[str, float] = field(default_factory=dict)


Listener = Callable[[ModelRecord], None]


def _text(value: object) -> str:
    """Return a key part as readable text: dates ISO, short sequences joined, long ones hashed."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_text(v) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort()
        if len(items) > 8:
            digest = hashlib.sha256("|".join(items).encode()).hexdigest()[:8]
            return f"{len(items)} items #{digest}"
        return ", ".join(items)
    return str(value)


_MEMORY: LRUCache[str, tuple[Any, ModelRecord]] = LRUCache(maxsize=128)
"""Artefacts in this process's memory, shared by its registries (keys are content hashes)."""
_MEMORY_LOCK = threading.Lock()


class ModelRegistry:
    """Fitted artefacts by data and code version: memory first, then the model directory.

    Memory (a bounded LRU of 128 artefacts) is shared by the process's registries, since
    an artefact's id hashes everything it was fitted from; each registry still hands its
    listeners the record of every artefact it serves for the first time, so each store
    holds the record of every model its runs used.

    Args:
        directory: where artefacts and their records are kept across processes (None:
            this process's memory only).
        listeners: called with the record of every artefact this registry serves for the
            first time (storage, MLflow); a listener that fails is logged, never fails a run.
    """

    def __init__(
        self, directory: Path | str | None = None, *, listeners: Sequence[Listener] = ()
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.listeners: list[Listener] = list(listeners)
        self._announced: set[str] = set()
        self._unsaved = False
        self._lock = threading.Lock()
        self.fits = 0
        self.loads = 0

    def fitted(
        self,
        kind: ModelKind,
        scope: str,
        data_version: str,
        params: Mapping[str, object],
        fit: Callable[[], Fit[T]],
    ) -> T:
        """Return the artefact for this key: reused when known, else fitted and recorded.

        Args:
            kind: detector, causal or forecaster.
            scope: what it models, for people (part of the key).
            data_version: the backend's data version.
            params: every other input that changes the fit (window, level, seed...).
            fit: fits the artefact; called only when no artefact of this key exists.

        Raises:
            Whatever ``fit`` raises (nothing is recorded then).
        """
        text = {k: _text(v) for k, v in sorted(params.items())}
        code = code_version(kind)
        raw = json.dumps([kind, scope, data_version, code, text], sort_keys=True)
        artefact_id = hashlib.sha256(raw.encode()).hexdigest()[:20]
        with _MEMORY_LOCK:
            hit = _MEMORY.get(artefact_id)
        if hit is not None and self.directory is not None:
            if not self._paths(kind, artefact_id)[0].exists():
                # fitted in this process for a registry without this directory: kept here too
                hit = (hit[0], self._save(kind, artefact_id, hit[0], hit[1]))
        if hit is None:
            hit = self._load(kind, artefact_id)
            if hit is not None:
                with self._lock:
                    self.loads += 1
        if hit is None:
            started = time.perf_counter()
            result = fit()
            record = ModelRecord(
                artefact_id=artefact_id,
                kind=kind,
                scope=scope,
                data_version=data_version,
                code_version=code,
                params=text,
                fitted_at=datetime.now(UTC),
                fit_seconds=round(time.perf_counter() - started, 3),
                rows=result.rows,
                # a figure that could not be computed (NaN) is left out, not stored as 0
                validation={
                    k: round(float(v), 6) for k, v in result.validation.items() if math.isfinite(v)
                },
            )
            hit = (result.model, self._save(kind, artefact_id, result.model, record))
            with self._lock:
                self.fits += 1
        with _MEMORY_LOCK:
            _MEMORY[artefact_id] = hit
        self._announce(hit[1])
        return cast(T, hit[0])

    def _announce(self, record: ModelRecord) -> None:
        """Hand a record to the listeners, once per registry."""
        with self._lock:
            if record.artefact_id in self._announced:
                return
            self._announced.add(record.artefact_id)
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:  # a record sink must never fail a triage
                logger.warning(
                    "model registry listener failed on %s", record.artefact_id, exc_info=True
                )

    def records(self) -> list[ModelRecord]:
        """Return the records kept in the model directory, oldest first (empty: no directory)."""
        if self.directory is None or not self.directory.exists():
            return []
        out = []
        for path in self.directory.glob("*/*.json"):
            try:
                out.append(ModelRecord.model_validate_json(path.read_text()))
            except (OSError, ValueError):  # a record edited by hand: skipped, not fatal
                logger.warning("model record %s unreadable: skipped", path)
        return sorted(out, key=lambda r: r.fitted_at)

    def prune(self, older_than: datetime) -> int:
        """Delete the kept artefacts fitted before ``older_than``; return how many went.

        Every load is a new data version, so the directory grows by a few artefacts a day;
        what is older than the run records' retention is no longer reused.
        """
        gone = 0
        for record in self.records():
            if record.fitted_at < older_than:
                pkl, meta = self._paths(record.kind, record.artefact_id)
                meta.unlink(missing_ok=True)  # the record first: never a record without a file
                pkl.unlink(missing_ok=True)
                gone += 1
        return gone

    def _paths(self, kind: str, artefact_id: str) -> tuple[Path, Path]:
        assert self.directory is not None
        folder = self.directory / kind
        return folder / f"{artefact_id}.pkl", folder / f"{artefact_id}.json"

    def _load(self, kind: str, artefact_id: str) -> tuple[object, ModelRecord] | None:
        """Return the artefact and its record from the model directory, or None."""
        if self.directory is None:
            return None
        pkl, meta = self._paths(kind, artefact_id)
        if not (pkl.exists() and meta.exists()):
            return None
        try:
            record = ModelRecord.model_validate_json(meta.read_text())
            with pkl.open("rb") as fh:
                model: object = pickle.load(fh)  # noqa: S301 - the operator's model directory
        except Exception:  # a torn or stale file is refitted, never served
            logger.warning("model artefact %s unreadable: refitting", pkl, exc_info=True)
            return None
        return model, record

    def _save(self, kind: str, artefact_id: str, model: object, record: ModelRecord) -> ModelRecord:
        """Write the artefact, then its record, each atomically; return the record as kept.

        The record is written last, so a reader never finds a record without its artefact.
        """
        if self.directory is None:
            return record
        pkl, meta = self._paths(kind, artefact_id)
        try:
            pkl.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(pkl, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
            kept = record.model_copy(update={"path": str(pkl)})
            _atomic_write(meta, kept.model_dump_json(indent=1).encode())
        except Exception as exc:  # a full disk or an unpicklable artefact: kept in memory
            with self._lock:
                first = not self._unsaved
                self._unsaved = True
            if first:  # once per registry: one line, not a traceback per fit
                logger.warning(
                    "fitted models are not kept in %s (%s: %s): they are refitted in each "
                    "process; point the model directory at a writable folder",
                    self.directory,
                    type(exc).__name__,
                    exc,
                )
            return record
        return kept


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.cache
def shared_registry() -> ModelRegistry:
    """Return a registry without directory or listeners: the default of a context."""
    return ModelRegistry()
