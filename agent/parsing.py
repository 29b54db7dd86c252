"""Understand a manager's question without an LLM: scope, day or period, KPI, and intent.

Covers the common forms: "why were deliveries late at store S003 on 2026-03-14?",
"what will happen in Dallas next week?", "what should we do about R2 yesterday?",
"show me the late rate by week for S010 in March".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import pandas as pd

from tools.analytics.scope import Catalog

Intent = Literal["why", "forecast", "actions", "kpis"]
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}
_MONTH_ABBR = {m[:3]: i for m, i in _MONTHS.items()}
KPI_WORDS = {
    "no-show": "no_show_rate",
    "no show": "no_show_rate",
    "absent": "no_show_rate",
    "fail": "failed_rate",
    "volume": "orders",
    "orders": "orders",
    "delay": "avg_delay_min",
    "dispatch": "dispatch_delay_min",
    "late": "late_rate",
    "on time": "late_rate",
    "on-time": "late_rate",
}


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
    horizon: int = 7
    unknown_ids: list[str] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        """The single store or region asked about, if there is one."""
        return self.scope_ids[0] if len(self.scope_ids) == 1 else None


def _dates(text: str, last_day: date) -> tuple[date | None, date | None, date | None]:
    """(day, start, end) mentioned in ``text``; relative words count from the data's last day."""
    iso = [date.fromisoformat(m) for m in re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text)]
    if len(iso) >= 2:
        return None, min(iso), max(iso)
    if iso:
        return iso[0], None, None
    lowered = text.lower()
    m = re.search(
        r"\b("
        + "|".join(_MONTHS)
        + "|"
        + "|".join(_MONTH_ABBR)
        + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b",
        lowered,
    )
    if m:
        month = _MONTHS.get(m.group(1)) or _MONTH_ABBR[m.group(1)[:3]]
        return date(last_day.year, month, int(m.group(2))), None, None
    m = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(" + "|".join(_MONTHS) + r")\b", lowered)
    if m:
        return date(last_day.year, _MONTHS[m.group(2)], int(m.group(1))), None, None
    if "yesterday" in lowered:
        return last_day - timedelta(days=1), None, None
    if "today" in lowered or "this morning" in lowered:
        return last_day, None, None
    if "last week" in lowered or "past week" in lowered:
        return None, last_day - timedelta(days=6), last_day
    m = re.search(r"\b(?:in|during)\s+(" + "|".join(_MONTHS) + r")\b", lowered)
    if m:
        month = _MONTHS[m.group(1)]
        start = date(last_day.year, month, 1)
        end = (pd.Timestamp(start) + pd.offsets.MonthEnd(0)).date()
        return None, start, min(end, last_day)
    return None, None, None


def parse_request(question: str, catalog: Catalog) -> Request:
    """Read scope, dates, KPI and intents from a question, against the data's catalog."""
    text = question.strip()
    lowered = text.lower()
    intents: list[Intent] = []
    if re.search(
        r"\b(will|forecast|next|tomorrow|persist|going to|expect|outlook|coming)\b", lowered
    ):
        intents.append("forecast")
    if re.search(r"\b(should|recommend|do about|fix|action|what can)\b", lowered):
        intents.append("actions")
    if re.search(r"\b(why|cause|reason|explain|what happened|what went wrong|root)\b", lowered):
        intents.append("why")
    if (
        re.search(
            r"\b(show|how many|list|kpis?|trend|by week|by day|what was|what were)\b", lowered
        )
        and not intents
    ):
        intents.append("kpis")
    if not intents:
        intents = ["why"]
    day, start, end = _dates(text, catalog.last_day)
    kpi = next((v for k, v in KPI_WORDS.items() if k in lowered), "late_rate")
    stores = set(catalog.stores.store_id.astype(str))
    regions = set(catalog.stores.region.astype(str))
    markets = {
        str(m).lower(): str(r)
        for m, r in zip(catalog.stores.market, catalog.stores.region, strict=True)
    }
    # Ids in real data hold '/', '-', '.' or ':' (FR/PAR/003, LYO-01): whole tokens first,
    # then their word parts ("S010's" -> S010), trailing punctuation dropped.
    spans = [t.rstrip(".:-/") for t in re.findall(r"[\w/.:-]+", text)]
    tokens = list(dict.fromkeys([*spans, *re.findall(r"[A-Za-z0-9_]+", text)]))
    found_stores = [t for t in tokens if t in stores]
    found_regions = [t for t in tokens if t in regions and t not in stores]
    unknown = [
        t for t in tokens if re.fullmatch(r"[SR]\d+", t) and t not in stores and t not in regions
    ]
    if not found_regions:
        found_regions = sorted(
            {r for m, r in markets.items() if re.search(rf"\b{re.escape(m)}\b", lowered)}
        )
    request = Request(intents=intents, day=day, start=start, end=end, kpi=kpi, unknown_ids=unknown)
    # An id the data does not hold stays in the scope, so the tool says it is unknown (with
    # the close matches) instead of the answer silently being about other stores.
    stores_asked = found_stores + [t for t in unknown if t.startswith("S")]
    regions_asked = found_regions + [t for t in unknown if t.startswith("R")]
    if stores_asked:
        request.scope_level, request.scope_ids = "store", list(dict.fromkeys(stores_asked))
    elif regions_asked:
        request.scope_level, request.scope_ids = "region", list(dict.fromkeys(regions_asked))
    m = re.search(r"next\s+(\d+)\s+days", lowered)
    if m:
        request.horizon = max(1, min(28, int(m.group(1))))
    elif "tomorrow" in lowered:
        request.horizon = 1
    return request
