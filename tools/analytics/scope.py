"""Resolve what a tool call is about: which stores, regions and dates, with helpful errors."""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import pandas as pd
from cachetools import LRUCache

from tools.core.errors import ToolError
from tools.data.backend import Backend

ScopeLevel = Literal["all", "region", "store"]


@dataclass(frozen=True)
class Catalog:
    """Stores and regions in the data, and the span of service dates."""

    stores: pd.DataFrame  # store_id, name, region, market
    first_day: date
    last_day: date

    @property
    def regions(self) -> list[str]:
        """Region ids, sorted."""
        return sorted(self.stores.region.unique().tolist())

    def region_of(self, store_id: str) -> str:
        """Region of a store."""
        return str(self.stores.loc[self.stores.store_id == store_id, "region"].iloc[0])

    def stores_in(self, regions: list[str]) -> list[str]:
        """Store ids in these regions."""
        return sorted(self.stores.loc[self.stores.region.isin(regions), "store_id"].tolist())


_CATALOGS: LRUCache[str, Catalog] = LRUCache(maxsize=16)
_CATALOGS_LOCK = threading.Lock()


def load_catalog(backend: Backend) -> Catalog:
    """Read the stores and the date span from the backend, once per data version.

    The span scans every delivery (``store_day`` is a view): 0.6 s on 30 M deliveries, and
    a triage asked for it eleven times. Cached (bounded LRU) by the backend's data version,
    which every load changes.

    Raises:
        ToolError: when the database holds no deliveries yet.
    """
    key = backend.data_version()
    with _CATALOGS_LOCK:
        hit = _CATALOGS.get(key)
    if hit is not None:
        return hit
    catalog = _read_catalog(backend)
    with _CATALOGS_LOCK:
        _CATALOGS[key] = catalog
    return catalog


def _read_catalog(backend: Backend) -> Catalog:
    stores = backend.query("SELECT store_id, name, region, market FROM stores ORDER BY store_id")
    span = backend.query("SELECT min(date) AS first, max(date) AS last FROM store_day")
    if stores.empty or span.empty or pd.isna(span["first"].iloc[0]):
        raise ToolError(
            "the database holds no deliveries yet: generate or ingest data first",
            kind="not_enough_data",
        )
    return Catalog(
        stores=stores,
        first_day=pd.Timestamp(span["first"].iloc[0]).date(),
        last_day=pd.Timestamp(span["last"].iloc[0]).date(),
    )


def unknown_error(
    kind: str, bad: list[str], known: list[str], plural: str | None = None
) -> ToolError:
    """Build the error for unknown ids, suggesting close matches and listing some known ones."""
    hints = []
    for b in bad:
        close = difflib.get_close_matches(b, known, n=3)
        hints.append(f"{b!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    sample = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    return ToolError(f"unknown {kind} {'; '.join(hints)}; known {plural or kind + 's'}: {sample}")


@dataclass(frozen=True)
class ResolvedScope:
    """A validated scope: its level, ids, and the stores it covers."""

    level: ScopeLevel
    ids: list[str]
    stores: list[str]
    regions: list[str]

    def label(self) -> str:
        """Readable name, e.g. ``store S003`` or ``all stores``."""
        if self.level == "all":
            return "all stores"
        return f"{self.level} {', '.join(self.ids)}"


def resolve_scope(catalog: Catalog, level: ScopeLevel, ids: list[str]) -> ResolvedScope:
    """Check a scope against the data.

    Raises:
        ToolError: unknown store or region ids (with suggestions), or ids missing.
    """
    if level == "all":
        return ResolvedScope("all", [], catalog.stores.store_id.tolist(), catalog.regions)
    if not ids:
        raise ToolError(f"scope '{level}' needs at least one {level} id")
    if level == "store":
        known = catalog.stores.store_id.tolist()
        bad = [i for i in ids if i not in set(known)]
        if bad:
            raise unknown_error("store", bad, known)
        regions = sorted({catalog.region_of(i) for i in ids})
        return ResolvedScope("store", list(ids), list(ids), regions)
    known = catalog.regions
    bad = [i for i in ids if i not in set(known)]
    if bad:
        raise unknown_error("region", bad, known)
    return ResolvedScope("region", list(ids), catalog.stores_in(list(ids)), list(ids))


def resolve_window(
    catalog: Catalog, end: date | None, days: int, *, what: str = "window"
) -> tuple[date, date]:
    """Return (first, last) day of a window of ``days`` ending at ``end`` (default: latest).

    Raises:
        ToolError: when the window falls outside the data.
    """
    last = end or catalog.last_day
    first = last - timedelta(days=days - 1)
    if last < catalog.first_day or first > catalog.last_day:
        raise ToolError(
            f"the {what} {first}..{last} has no data; the data covers "
            f"{catalog.first_day}..{catalog.last_day}"
        )
    if last > catalog.last_day:
        raise ToolError(
            f"{last} is after the last day with data ({catalog.last_day}); "
            f"the data covers {catalog.first_day}..{catalog.last_day}"
        )
    return max(first, catalog.first_day), last


CHAIN_TARGET = "all"
"""Target id of the whole chain (every store)."""


@dataclass(frozen=True)
class AnomalyWindow:
    """The data an explanation of one store, region or the chain on one day needs."""

    target: str
    level: Literal["store", "region", "chain"]
    region: str  # the target's region ('all' for the chain)
    stores: list[str]  # the stores the target covers
    region_stores: list[str]  # every store of its region (the history the model learns from)
    start: date
    day: date


def resolve_target(
    catalog: Catalog, target: str, day: date, lookback_days: int, min_history: int = 21
) -> AnomalyWindow:
    """Check a target (a store, a region, or ``all``) and a day; choose the history before it.

    Raises:
        ToolError: unknown target (with suggestions), a day outside the data, or fewer than
            ``min_history`` days of history before it.
    """
    stores = catalog.stores
    level: Literal["store", "region", "chain"]
    if target in set(stores.store_id):
        level, region = "store", catalog.region_of(target)
        covered = [target]
        region_stores = catalog.stores_in([region])
    elif target in set(stores.region):
        level, region = "region", target
        covered = region_stores = catalog.stores_in([region])
    elif target == CHAIN_TARGET:
        level, region = "chain", CHAIN_TARGET
        covered = region_stores = sorted(stores.store_id.astype(str).tolist())
    else:
        raise unknown_error(
            "store or region",
            [target],
            stores.store_id.tolist() + catalog.regions + [CHAIN_TARGET],
            "stores and regions ('all' for the whole chain)",
        )
    if not catalog.first_day <= day <= catalog.last_day:
        raise ToolError(f"{day} is outside the data ({catalog.first_day}..{catalog.last_day})")
    start = max(catalog.first_day, day - timedelta(days=lookback_days))
    if (day - start).days < min_history:
        raise ToolError(
            f"too little history before {day} (need {min_history} days; the data starts "
            f"{catalog.first_day}): pick a day from "
            f"{catalog.first_day + timedelta(days=min_history)} on",
            kind="not_enough_data",
        )
    return AnomalyWindow(target, level, region, covered, region_stores, start, day)
