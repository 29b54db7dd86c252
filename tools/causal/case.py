"""The data behind the diagnosis of one cell, shared by ``diagnose`` and ``recommend_actions``.

Given a target (a store, a region or ``all``), a day and a grain, :func:`build_case` loads the
cells as known at the end of the day, chooses which cells the causal model learns from, and
fits it:

* a store: its region's stores judged at the grain (the chain's when the region is too
  small to fit on, e.g. a region of one store);
* a region: its stores when they can be judged at the grain, else every region of the chain
  that can, else the region itself;
* the chain: its regions that can be judged at the grain, else the chain itself.

Everything is as of the end of the day: cells, baselines and the model never see later data.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from cachetools import LRUCache

from tools.analytics.cells import CHAIN, Level, aggregate, load_store_days, with_medians
from tools.analytics.levels import LevelChoice, choose_grains, required_volume
from tools.analytics.scope import AnomalyWindow, Catalog, resolve_target
from tools.causal.diagnosis import FittedModel, diagnose_cell, fit_model
from tools.causal.findings import Diagnosis
from tools.causal.graph import CausalGraph, load_graph
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.core.models import Fit


@dataclass
class Case:
    """One cell to explain, the model fitted for it, and its own history."""

    window: AnomalyWindow
    grain: int
    store_days: pd.DataFrame  # additive store-days of the fit scope, as of the day
    model: FittedModel
    history: pd.DataFrame  # the target's cells at its level and grain (+ 'reference')
    row: int  # index of the diagnosed cell in history
    graph: CausalGraph  # the reviewed graph, before pruning
    history_days: int  # days of the target's own history with deliveries before the cell


def judgeable(
    store_days: pd.DataFrame, level: Level, grain: int, day: date
) -> dict[str, LevelChoice]:
    """Return the entities of ``level`` whose volume lets them be judged at ``grain`` days."""
    choices = choose_grains(store_days, level, reference_end=day - timedelta(days=1))
    return {e: c for e, c in choices.items() if c.grain_days is not None and c.grain_days <= grain}


def cells_for(
    store_days: pd.DataFrame, level: Level, grain: int, keep: dict[str, LevelChoice] | None
) -> pd.DataFrame:
    """Return the cells of ``level`` and ``grain`` (of the ``keep`` entities, thick enough)."""
    cells = aggregate(store_days, level, grain)
    if keep is not None:
        cells = cells[cells.entity.isin(keep)]
        need = cells.entity.map({e: required_volume(c.normal_late_rate) for e, c in keep.items()})
        cells = cells[cells.resolved >= need]
    return cells.reset_index(drop=True)


def default_grain(ctx: ToolContext, window: AnomalyWindow) -> int:
    """Return the finest grain the target can be judged at (:mod:`tools.analytics.levels`).

    Raises:
        ToolError: the target is too thin to judge alone even over four weeks.
    """
    level: Level = window.level
    store_days = load_store_days(
        ctx.backend, as_of=window.day, start=window.start, stores=window.stores, medians=False
    )
    if store_days.empty:
        raise ToolError(
            f"no deliveries for {window.target} from {window.start} to {window.day}",
            kind="not_enough_data",
        )
    choices = choose_grains(store_days, level, reference_end=window.day - timedelta(days=1))
    entity = CHAIN if level == "chain" else window.target
    choice = choices.get(entity)
    if choice is None or choice.grain_days is None:
        detail = choice.reason() if choice else "no resolved deliveries before the day"
        raise ToolError(
            f"{window.target} cannot be judged alone: {detail}; diagnose its region or 'all'",
            kind="not_enough_data",
        )
    return choice.grain_days


def build_case(
    ctx: ToolContext,
    catalog: Catalog,
    target: str,
    day: date,
    *,
    lookback_days: int,
    grain: int | None = None,
) -> Case:
    """Load, choose the fit cells, fit the model and locate the target's cell.

    Raises:
        ToolError: unknown target, a day outside the data, too little history or volume.
    """
    window = resolve_target(catalog, target, day, lookback_days)
    grain = grain or default_grain(ctx, window)
    graph = load_graph()
    version = ctx.backend.data_version()
    last_error: Exception | None = None
    # Narrowest scope first; a model short of cells gets a longer history (up to a year, or
    # the data's start), then a wider scope.
    lookbacks = [lookback_days]
    while lookbacks[-1] < 365 and day - timedelta(days=lookbacks[-1]) > catalog.first_day:
        lookbacks.append(min(365, 2 * lookbacks[-1]))
    attempts = [
        (stores, levels, days)
        for stores, levels in _fit_scopes(catalog, window)
        for days in lookbacks
    ]
    for stores, levels, days in attempts:
        window = resolve_target(catalog, target, day, days)
        store_days = load_store_days(ctx.backend, as_of=day, start=window.start, stores=stores)
        for fit_level in levels:
            keep = judgeable(store_days, fit_level, grain, day)
            if fit_level != window.level and len(keep) < 2:
                continue  # one entity below is no better than the target itself
            cells = cells_for(store_days, fit_level, grain, keep if fit_level != "chain" else None)
            if cells.empty:
                continue
            cells = with_medians(cells, ctx.backend, as_of=day, stores=stores)
            reference = cells.date <= pd.Timestamp(day - timedelta(days=grain))
            try:
                model = _fitted(
                    ctx, cells, graph, reference, version, sorted(keep), window.start, day
                )
            except ValueError as exc:
                last_error = exc
                continue
            return _locate(ctx, window, grain, store_days, model, graph, cells)
    raise ToolError(
        f"cannot explain {target} on {day}: {last_error or 'no comparable cells'}; "
        f"the data starts {catalog.first_day}: a later day, or a coarser target, has more",
        kind="not_enough_data",
    )


def _fitted(
    ctx: ToolContext,
    cells: pd.DataFrame,
    graph: CausalGraph,
    reference: pd.Series,
    version: str,
    keep: list[str],
    start: date,
    day: date,
) -> FittedModel:
    """Return the causal model of these cells from the model registry (fitted on a miss)."""
    level, grain = str(cells["level"].iloc[0]), int(cells["grain"].iloc[0])

    def fit() -> Fit[FittedModel]:
        model = fit_model(cells, graph, reference, random_state=ctx.random_state)
        return Fit(model, model.rows, model.validation())

    return ctx.models.fitted(
        "causal",
        f"{level} cells of {grain} day(s) over {len(keep)} {level}(s)",
        version,
        {
            "entities": tuple(keep),
            "start": start,
            "day": day,
            "graph": graph.fingerprint,
            "random_state": ctx.random_state,
        },
        fit,
    )


# ``diagnose`` and ``recommend_actions`` explain the same cell in one run (and a chat asks
# again): the attribution is the costly part, so the explained case is kept, per every input
# that changes it. Small: each entry holds a fit scope's store-days.
_EXPLAINED: LRUCache[Hashable, tuple[Case, Diagnosis]] = LRUCache(maxsize=16)
_EXPLAINED_LOCK = threading.Lock()


def explain(
    ctx: ToolContext,
    catalog: Catalog,
    target: str,
    day: date,
    *,
    lookback_days: int,
    grain: int | None = None,
) -> tuple[Case, Diagnosis]:
    """Build the case (:func:`build_case`) and attribute its cell's excess to causes.

    Cached (bounded LRU) per data version, target, day, lookback, grain and seed; the
    diagnosis returned is a copy the caller may change.

    Raises:
        ToolError: as :func:`build_case`; or the cell has nothing to explain.
    """
    key = (ctx.backend.data_version(), target, day, lookback_days, grain, ctx.random_state)
    with _EXPLAINED_LOCK:
        hit = _EXPLAINED.get(key)
    if hit is None:
        case = build_case(ctx, catalog, target, day, lookback_days=lookback_days, grain=grain)
        try:
            found = diagnose_cell(
                case.model,
                case.history,
                case.row,
                full_graph=case.graph,
                random_state=ctx.random_state,
            )
        except ValueError as exc:
            raise ToolError(
                f"cannot explain {target} on {day}: {exc}", kind="not_enough_data"
            ) from exc
        hit = (case, found)
        with _EXPLAINED_LOCK:
            _EXPLAINED[key] = hit
    return hit[0], hit[1].model_copy(deep=True)


def _fit_scopes(
    catalog: Catalog, window: AnomalyWindow
) -> list[tuple[list[str] | None, list[Level]]]:
    """Return (stores to load, fit levels to try in order) for a target, narrowest first."""
    if window.level == "store":
        return [(window.region_stores, ["store"]), (None, ["store"])]
    if window.level == "region":
        return [(window.region_stores, ["store", "region"]), (None, ["region"])]
    return [(None, ["region", "chain"])]


def _locate(
    ctx: ToolContext,
    window: AnomalyWindow,
    grain: int,
    store_days: pd.DataFrame,
    model: FittedModel,
    graph: CausalGraph,
    fit_cells: pd.DataFrame,
) -> Case:
    """Build the target's history: its own cells, beside its peers when the model's are its own.

    A store's normal day borrows the weekday and calendar shape of its region's stores
    (pooled baselines), as the fit does; a region or the chain has only itself.
    """
    level: Level = window.level
    entity = CHAIN if level == "chain" else window.target
    own = aggregate(store_days, level, grain)
    own = own[own.entity == entity]
    own = with_medians(own, ctx.backend, as_of=window.day, stores=window.stores)
    peers = fit_cells[fit_cells.entity != entity] if model.fit_level == level else None
    history = pd.concat([own, peers], ignore_index=True) if peers is not None else own
    history = history.reset_index(drop=True)
    history["reference"] = history.date <= pd.Timestamp(window.day - timedelta(days=grain))
    hit = history.index[(history.entity == entity) & (history.date == pd.Timestamp(window.day))]
    if len(hit) == 0 or history.loc[hit[0], "resolved"] == 0:
        raise ToolError(
            f"no resolved deliveries for {window.target} on {window.day}", kind="not_enough_data"
        )
    own = store_days[store_days.store_id.isin(window.stores)]
    open_days = own[own.date < pd.Timestamp(window.day)].date.nunique()
    return Case(
        window=window,
        grain=grain,
        store_days=store_days,
        model=model,
        history=history,
        row=int(hit[0]),
        graph=graph,
        history_days=int(open_days),
    )
