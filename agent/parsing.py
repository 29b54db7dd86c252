"""Understand a manager's question without an LLM: scope, day or period, KPI, and intent.

Covers the common forms: "why were deliveries late at store S003 on 2026-03-14?",
"what will happen in Dallas next week?", "what should we do about R2 yesterday?",
"show me the late rate by week for S010 in March", "which stores were worst last week?",
"compare R1 and R2 in March", "the no-show rate at store 10 on March 9th". Days and periods
follow the rules of :mod:`agent.periods`, relative to "today". Stores are found by id,
number ("store 10") or name, regions by id or market name; a name the data does not hold
stays in the scope, so the tool answers that it is unknown and what exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from agent.periods import Period, PeriodError, find_period
from tools.analytics.scope import Catalog

Intent = Literal["why", "forecast", "actions", "kpis", "rank", "compare", "sql"]
KPI_WORDS = {
    "no-show": "no_show_rate",
    "no show": "no_show_rate",
    "absent": "no_show_rate",
    "fail": "failed_rate",
    "volume": "orders",
    "orders": "orders",
    "delay": "avg_delay_min",
    "dispatch": "dispatch_delay_min",
    "weather": "precip_mm",
    "rain": "precip_mm",
    "late": "late_rate",
    "on time": "late_rate",
    "on-time": "late_rate",
}
_NOT_NAMES = frozenset(
    "KPI KPIS DSP DSPS SLA ETA OTD OTIF US USA UK EU OK AM PM UTC GMT CET EST PST I A "
    "WHY WHAT HOW WHEN WHERE WHO SQL CSV ID IDS FYI ASAP".split()
)
"""Capitalised words that are not store or region names."""
_NOT_STORE_NAMES = frozenset(
    "the a an that this these those s level levels tomorrow today yesterday tonight next last "
    "on in at for of to and or but was is were are did do does had has with by from over "
    "manager managers network level-wise".split()
)
"""Words after "store" or "region" that are not a name ("that store tomorrow")."""
_RANK = re.compile(r"\b(worst|best|rank\w*|top\s+\d+|most late|which (stores|regions|markets))\b")
_COMPARE = re.compile(r"\b(compare\w*|comparison|versus|vs\.?)(?=\s|$)")


@dataclass
class Request:
    """What a question asks for."""

    intents: list[Intent]
    scope_level: Literal["all", "region", "store"] = "all"
    scope_ids: list[str] = field(default_factory=list)
    day: date | None = None
    start: date | None = None
    end: date | None = None
    kpi: str = "late_rate"
    kpi_named: bool = False
    horizon: int = 7
    unknown_ids: list[str] = field(default_factory=list)
    period: Period | None = None
    problem: str | None = None
    rank_level: Literal["store", "region"] = "store"

    @property
    def target(self) -> str | None:
        """The single store or region asked about, if there is one."""
        return self.scope_ids[0] if len(self.scope_ids) == 1 else None


def _intents(lowered: str, n_scopes: int) -> list[Intent]:
    intents: list[Intent] = []
    if _COMPARE.search(lowered) or (n_scopes >= 2 and re.search(r"\bhow did\b", lowered)):
        intents.append("compare")
    elif _RANK.search(lowered):
        intents.append("rank")
    if re.search(
        r"\b(will|forecast|next|tomorrow|persist|going to|expect|outlook|coming)\b", lowered
    ):
        intents.append("forecast")
    if re.search(r"\b(should|recommend|do about|fix|action|what can)\b", lowered):
        intents.append("actions")
    if re.search(r"\b(why|cause|reason|explain|what happened|what went wrong|root)\b", lowered):
        intents.append("why")
    if not intents and re.search(
        r"\b(show|how many|list|kpis?|trend|by week|by day|what (was|were|is)|how did|rate)\b",
        lowered,
    ):
        intents.append("kpis")
    return intents or ["why"]


def _scopes(text: str, catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    """Return (stores, regions, names the data does not hold) mentioned in the text."""
    lowered = text.lower()
    stores = catalog.stores.store_id.astype(str).tolist()
    store_set, regions = set(stores), set(catalog.stores.region.astype(str))
    # Ids in real data hold '/', '-', '.' or ':' (FR/PAR/003, LYO-01): whole tokens first,
    # then their word parts ("S010's" -> S010), trailing punctuation dropped.
    spans = [t.rstrip(".:-/?!,") for t in re.findall(r"[\w/.:-]+", text)]
    tokens = list(dict.fromkeys([*spans, *re.findall(r"[A-Za-z0-9_]+", text)]))
    found_stores = [t for t in tokens if t in store_set]
    found_regions = [t for t in tokens if t in regions and t not in store_set]
    unknown = [t for t in tokens if re.fullmatch(r"[SR]\d+", t) and t not in store_set | regions]
    by_number: dict[int, list[str]] = {}
    for s in stores:
        digits = re.sub(r"\D", "", s)
        if digits:
            by_number.setdefault(int(digits), []).append(s)
    for m in re.finditer(r"\bstore\s+(?:#\s*|no\.\s*|no\s+|number\s+)?([\w/.-]+)", text, re.I):
        name = m.group(1).rstrip(".:-/?!,")
        if name in store_set or name.lower() in _NOT_STORE_NAMES:
            continue
        hits = by_number.get(int(name), []) if name.isdigit() else []
        if len(hits) == 1:
            found_stores.append(hits[0])
        elif name not in found_stores and name not in unknown:
            unknown.append(f"store {name}")
    for m in re.finditer(r"\bregion\s+([\w/.-]+)", text, re.I):
        name = m.group(1).rstrip(".:-/?!,")
        if name not in regions | set(unknown) and name.lower() not in _NOT_STORE_NAMES:
            unknown.append(f"region {name}")
    # A code-like word the data does not know ("why was XX late?"): said to be unknown.
    known = store_set | regions | {str(m).upper() for m in catalog.stores.market}
    unknown += [
        t
        for t in re.findall(r"\b[A-Z][A-Z0-9/_-]{1,11}\b", text)
        if t not in known and t not in _NOT_NAMES and not any(t in u for u in unknown)
    ]
    names = (
        {str(n).lower(): str(s) for n, s in zip(catalog.stores.name, stores, strict=True)}
        if "name" in catalog.stores
        else {}
    )
    found_stores += [
        s for n, s in names.items() if n and re.search(rf"\b{re.escape(n)}(?!\d)", lowered)
    ]
    if not found_regions:
        markets = {
            str(m).lower(): str(r)
            for m, r in zip(catalog.stores.market, catalog.stores.region, strict=True)
        }
        found_regions = sorted(
            {r for m, r in markets.items() if re.search(rf"\b{re.escape(m)}\b", lowered)}
        )
    return (
        list(dict.fromkeys(found_stores)),
        list(dict.fromkeys(found_regions)),
        list(dict.fromkeys(unknown)),
    )


def parse_request(
    question: str,
    catalog: Catalog,
    today: date | None = None,
    previous: Request | None = None,
) -> Request:
    """Read scope, day or period, KPI and intents from a question, against the data's catalog.

    Args:
        question: the manager's words.
        catalog: the data's stores, regions and span.
        today: the day the question is asked (default: the day after the data's last day).
        previous: the thread's previous question, read the same way: a follow-up that names
            no scope or period but points back ("that store", "and what about...", "the day
            after") carries the previous one's.
    """
    text = question.strip()
    lowered = text.lower()
    if re.match(r"(select|with)\s", lowered):  # an analyst's own query: run it, guarded
        return Request(intents=["sql"])
    today = today or catalog.last_day + timedelta(days=1)
    stores, regions, unknown = _scopes(text, catalog)
    request = Request(
        intents=_intents(lowered, len(stores) + len(regions) + len(unknown)),
        unknown_ids=unknown,
    )
    named = [(k, v) for k, v in KPI_WORDS.items() if k in lowered]
    request.kpi, request.kpi_named = (named[0][1], True) if named else ("late_rate", False)
    try:
        request.period = find_period(text, today)
    except PeriodError as exc:
        request.problem = str(exc)
    _place_period(request, catalog, today)
    # An unknown name stays in the scope, so the tool says it is unknown (with the close
    # matches) instead of the answer silently being about other stores.
    stores_asked = stores + [
        u.removeprefix("store ") for u in unknown if not u.startswith(("R", "region "))
    ]
    regions_asked = regions + [
        u.removeprefix("region ") for u in unknown if u.startswith(("R", "region "))
    ]
    if stores_asked:
        request.scope_level, request.scope_ids = "store", list(dict.fromkeys(stores_asked))
        request.rank_level = "store"
    elif regions_asked:
        request.scope_level, request.scope_ids = "region", list(dict.fromkeys(regions_asked))
        request.rank_level = "region"
    if re.search(r"\b(regions|markets)\b", lowered):
        request.rank_level = "region"
    elif re.search(r"\bstores\b", lowered):
        request.rank_level = "store"
    if previous is not None:
        _follow_up(request, previous, lowered, catalog)
    m = re.search(r"next\s+(\d+)\s+days", lowered)
    if m:
        request.horizon = max(1, min(28, int(m.group(1))))
    elif "tomorrow" in lowered:
        request.horizon = 1
    return request


_BACK = re.compile(
    r"\b(that|this|the same|there|its?|and|what about|how about|then|same)\b|^(and|also)\b"
)
_SHIFT = {
    "the day after": 1,
    "the next day": 1,
    "the following day": 1,
    "the day before": -1,
    "the previous day": -1,
}


def _follow_up(request: Request, previous: Request, lowered: str, catalog: Catalog) -> None:
    """Carry the previous turn's scope and day into a follow-up that points back to them."""
    if not _BACK.search(lowered):
        return
    if request.scope_level == "all" and not request.scope_ids and previous.scope_ids:
        request.scope_level, request.scope_ids = previous.scope_level, list(previous.scope_ids)
        request.rank_level = previous.rank_level
    shift = next((d for phrase, d in _SHIFT.items() if phrase in lowered), None)
    if shift is not None and previous.day is not None:
        request.problem = None
        day = previous.day + timedelta(days=shift)
        request.period = Period(day, day, f"{day}")
        request.day, request.start, request.end = day, None, None
        if day > catalog.last_day:
            request.day = None
            request.intents = ["forecast", *[i for i in request.intents if i != "forecast"]]
            request.horizon = max(1, (day - catalog.last_day).days)
    elif request.period is None and not request.problem:
        request.day, request.start, request.end = previous.day, previous.start, previous.end
        request.period = previous.period


def _place_period(request: Request, catalog: Catalog, today: date) -> None:
    """Set the day or span asked, clipped to the data; say so when it lies outside."""
    period = request.period
    if period is None:
        return
    if period.start > today:
        if "forecast" in request.intents:  # "what will happen tomorrow": from the last day known
            request.horizon = max(1, min(28, (period.end - catalog.last_day).days))
            return
        request.problem = (
            f"{period.phrase} ({period.start}..{period.end}) has not happened yet: "
            f"the data covers {catalog.first_day}..{catalog.last_day}"
        )
        return
    covers = f"the data covers {catalog.first_day}..{catalog.last_day}"
    if period.end < catalog.first_day or period.start > catalog.last_day:
        request.problem = (
            f"{period.phrase} ({period.start}..{period.end}) is outside the data: {covers}"
            if not period.is_day
            else f"{period.phrase} ({period.start}) is outside the data: {covers}"
        )
        return
    start, end = max(period.start, catalog.first_day), min(period.end, catalog.last_day)
    if start == end and period.is_day:
        request.day = start
    else:
        request.start, request.end = start, end
