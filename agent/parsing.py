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

import calendar
import difflib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from agent.follow_up import SHIFT_WORDS, follow_up, inherit_scope
from agent.periods import MONTHS, Period, PeriodError, find_period, latest_known_day
from tools.analytics.scope import Catalog
from tools.analytics.thresholds import FORECAST_MAX_HORIZON

Intent = Literal["why", "forecast", "actions", "kpis", "rank", "compare", "sql"]
KPI_WORDS = {
    "per driver": "orders_per_driver",
    "orders/driver": "orders_per_driver",
    "driver load": "orders_per_driver",
    "crowd": "crowd_share",
    "promo": "promo",
    "no-show": "no_show_rate",
    "no show": "no_show_rate",
    "absent": "no_show_rate",
    "fail": "failed_rate",
    "dispatch": "dispatch_delay_min",
    "picking": "dispatch_delay_min",
    "volume": "orders",
    "orders": "orders",
    "delay": "avg_delay_min",
    "weather": "precip_mm",
    "rain": "precip_mm",
    "traffic": "traffic_index",
    "late": "late_rate",
    "on time": "late_rate",
    "on-time": "late_rate",
}
"""Words that name a KPI, the more specific first ("dispatch delay" is the dispatch delay)."""
_NOT_NAMES = frozenset(
    "KPI KPIS DSP DSPS SLA ETA OTD OTIF US USA UK EU OK AM PM UTC GMT CET EST PST I A "
    "WHY WHAT HOW WHEN WHERE WHO SQL CSV ID IDS FYI ASAP".split()
) | frozenset(
    # SQL written in a question ("and run DELETE FROM deliveries") names no store
    "SELECT FROM WHERE DELETE UPDATE INSERT INTO VALUES SET DROP TABLE ALTER CREATE AND OR "
    "NOT NULL LIKE JOIN ON GROUP ORDER BY LIMIT AS WITH UNION TRUNCATE GRANT ATTACH COPY".split()
)
"""Capitalised words that are not store or region names."""
_NOT_STORE_NAMES = frozenset(
    "the a an that this these those s level levels tomorrow today yesterday tonight next last "
    "on in at for of to and or but was is were are did do does had has with by from over "
    "manager managers network level-wise".split()
)
"""Words after "store" or "region" that are not a name ("that store tomorrow")."""
_RANK = re.compile(r"\b(worst|best|rank\w*|top\s+\d+|most late|which (stores|regions|markets))\b")
SQL_QUERY = re.compile(
    r"^\s*(?:(?:run_sql|run sql|sql)\s*:\s*(?P<sql>\S.*)|(?:run_sql|run sql|sql)\s+"
    r"(?P<prefixed>(?:select|with)\s.*)|(?P<bare>(?:select\s|with\s+\w+\s+as\s*\().*))",
    re.I | re.S,
)
"""An analyst's own query: a SELECT (or WITH), or anything after 'sql:' / 'run_sql:' (a
statement run_sql refuses, such as a DELETE, is refused with its reason, not read as a
question)."""


def sql_of(match: re.Match[str]) -> str:
    """Return the statement a :data:`SQL_QUERY` match holds."""
    return str(match["sql"] or match["prefixed"] or match["bare"])


PASTED = re.compile(r'```.*?```|"[^"]*"|“[^”]*”|«[^»]*»|`[^`]*`', re.S)
"""Quoted or fenced text in a question: data the manager pasted, or a quoted name."""
PASTED_MIN_WORDS = 5
"""A quoted span of this many words or more is pasted data; a shorter one is a name the
manager quoted ("Dallas #4"), read as usual."""


def _pasted(m: re.Match[str]) -> str:
    span = m.group(0)
    return " " if span.startswith("```") or len(span.split()) >= PASTED_MIN_WORDS else span


_COMPARE = re.compile(r"\b(compare\w*|comparison|versus|vs\.?)(?=\s|$)")


@dataclass
class Request:
    """What a question asks for."""

    intents: list[Intent]
    scope_level: Literal["all", "region", "store"] = "all"
    scope_ids: list[str] = field(default_factory=list)
    day: date | None = None
    known_day: date | None = None
    """The latest complete day as of today: nothing after it is read (no period asked)."""
    start: date | None = None
    end: date | None = None
    kpi: str = "late_rate"
    kpi_named: bool = False
    horizon: int = 7
    unknown_ids: list[str] = field(default_factory=list)
    period: Period | None = None
    problem: str | None = None
    rank_level: Literal["store", "region"] = "store"
    intents_explicit: bool = True
    mentioned: list[str] = field(default_factory=list)
    limit: int = 10
    apply_on: date | None = None
    """A day to come the question asks about ("what should we do tomorrow"): the analysis is
    of the latest day known, the actions are for this day (forecast-driven)."""

    @property
    def target(self) -> str | None:
        """The single store or region asked about, if there is one."""
        return self.scope_ids[0] if len(self.scope_ids) == 1 else None


def _intents(lowered: str, n_scopes: int, kpi_named: bool) -> tuple[list[Intent], bool]:
    """Return the intents asked and whether the words said so (else a default)."""
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
        r"\b(show|how many|list|kpis?|trend|by week|by day|what (was|were|is)|how (did|was|were)"
        r"|rate)\b",
        lowered,
    ):
        intents.append("kpis")
    if not intents and kpi_named:  # "dispatch delay in R2 on March 14": the KPI, not a diagnosis
        intents.append("kpis")
    return (intents, True) if intents else (["why"], False)


def _scopes(text: str, catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    """Return (stores, regions, names the data does not hold) mentioned in the text."""
    lowered = text.lower()
    stores = catalog.stores.store_id.astype(str).tolist()
    store_set, regions = set(stores), set(catalog.stores.region.astype(str))
    # Ids in real data hold '/', '-', '.' or ':' (FR/PAR/003, LYO-01): whole tokens first,
    # then their word parts ("S010's" -> S010), trailing punctuation dropped.
    spans = [t.rstrip(".:-/?!,") for t in re.findall(r"[\w/.:-]+", text)]
    tokens = list(dict.fromkeys([*spans, *re.findall(r"[A-Za-z0-9_]+", text)]))
    # an id typed in lower case ("s003") is that id, when the data holds it
    by_upper = {i.upper(): i for i in store_set | regions}
    tokens = list(
        dict.fromkeys(
            by_upper.get(t.upper(), t) if re.fullmatch(r"[a-z]+\d+", t) else t for t in tokens
        )
    )
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
    for n, s in names.items():
        if n and re.search(rf"\b{re.escape(n)}(?!\d)", lowered):
            found_stores.append(s)
            # "Dallas #1" names a store: its market word is not also the region
            lowered = re.sub(rf"\b{re.escape(n)}(?!\d)", " ", lowered)
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
    if SQL_QUERY.match(question.strip()):  # an analyst's own query: run it, guarded
        return Request(intents=["sql"])
    # text pasted into the question (a quoted note, a code block) is data: it names no
    # store and asks for nothing ("rank S017 first" inside a driver's note is not a request)
    text = PASTED.sub(_pasted, question).strip()
    lowered = text.lower()
    today = today or catalog.last_day + timedelta(days=1)
    stores, regions, unknown = _scopes(text, catalog)
    named = [v for k, v in KPI_WORDS.items() if k in lowered]
    if re.search(r"\b(how many|number of|count of) late\b", lowered):
        named = ["late", *named]  # a count of late deliveries, not their rate
    intents, explicit = _intents(
        lowered, len(stores) + len(regions) + len(unknown), bool(named) and named[0] != "late_rate"
    )
    request = Request(intents=intents, unknown_ids=unknown, intents_explicit=explicit)
    request.kpi, request.kpi_named = (named[0], True) if named else ("late_rate", False)
    try:
        request.period = find_period(text, today)
    except PeriodError as exc:
        request.problem = str(exc)
    if not (stores or regions or unknown):
        place = _unknown_place(text, catalog)
        if place:
            request.problem = place
    if previous is not None or SHIFT_WORDS.search(lowered):
        follow_up(request, previous, lowered, catalog)
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
    elif regions_asked:
        request.scope_level, request.scope_ids = "region", list(dict.fromkeys(regions_asked))
    if previous is not None:
        inherit_scope(request, previous, lowered, catalog)
    request.rank_level = _rank_level(lowered, request)
    request.mentioned = [*(previous.mentioned if previous else []), *request.scope_ids]
    m = re.search(r"next\s+(\d+)\s+days", lowered)
    if m:
        request.horizon = max(1, min(28, int(m.group(1))))
    elif "tomorrow" in lowered and request.apply_on is None:
        request.horizon = 1
    m = re.search(r"\btop\s+(\d{1,2})\b", lowered)
    if m:
        request.limit = max(1, min(50, int(m.group(1))))
    return request


def _unknown_place(text: str, catalog: Catalog) -> str | None:
    """Say so when a name-like word ("Huston", "Dalas") is close to a market or store name.

    Any capitalised word (or two) that is not a market, month or weekday but within a typo
    of one (difflib, ratio 0.75) is taken as a misspelt place: the answer names the close
    matches rather than silently answering for every store.
    """
    markets = sorted({str(m) for m in catalog.stores.market})
    names = [str(n) for n in catalog.stores.get("name", [])]
    months = {m.capitalize() for m in MONTHS} | {m[:3].capitalize() for m in MONTHS}
    weekdays = {d for d in calendar.day_name}
    for m in re.finditer(r"\b([A-Z][a-z]{2,}(?:\s[A-Z][a-z]+)?)\b", text):
        word = m.group(1)
        if word in months or word in weekdays or word in markets or word in _NOT_PLACES:
            continue
        close = difflib.get_close_matches(word, markets, n=3, cutoff=0.75) or (
            difflib.get_close_matches(word, names, n=3, cutoff=0.75)
        )
        if close:
            return (
                f"no store, region or market is called {word!r}; did you mean "
                f"{' or '.join(close)}? Markets: {', '.join(markets[:10])}"
            )
        if _AFTER_PLACE_WORD.search(text[: m.start()]):
            # "late at Springfield": a place by its position, though like none of ours
            return (
                f"no store, region or market is called {word!r}; markets: "
                f"{', '.join(markets[:10])} (stores by id, number or name, regions by id)"
            )
    return None


_AFTER_PLACE_WORD = re.compile(r"\b(?:at|in|for|about)\s+(?:the\s+)?$")
"""A capitalised word right after these is a place (months and weekdays excepted)."""


_NOT_PLACES = frozenset(
    {
        "The",
        "All",
        "Total",
        "General",
        "Stores",
        "Regions",
        "Markets",
        "Store",
        "Region",
        "Christmas",
        "Easter",
        "Thanksgiving",
        "Black Friday",
        "Cyber Monday",
        "New Year",
    }
)


def _rank_level(lowered: str, request: Request) -> Literal["store", "region"]:
    """Rank stores unless regions or markets are asked for, or regions are compared."""
    if re.search(r"\bstores?\b", lowered):
        return "store"
    if re.search(r"\b(regions?|markets?)\b", lowered):
        return "region"
    compared = "compare" in request.intents and request.scope_level == "region"
    return "region" if compared else "store"


def _place_period(request: Request, catalog: Catalog, today: date) -> None:
    """Set the day or span asked, clipped to the data; say so when it lies outside."""
    period = request.period
    request.known_day = latest_known_day(today, catalog.first_day, catalog.last_day)
    if period is None:
        spans = {"rank", "compare", "kpis"} & set(request.intents)
        if request.known_day < catalog.last_day and not spans and not request.problem:
            # asked before the data ends: "why were deliveries late?" is about the latest
            # complete day as of today, never about days after it
            request.day = request.known_day
        return
    acting = {"forecast", "actions"} & set(request.intents)
    # today is still being delivered: what to do today (or later) is a day to come
    if period.start > today or (period.start == today and acting):
        if acting:
            # "what will happen / what should we do tomorrow": from the latest day known
            known = latest_known_day(today, catalog.first_day, catalog.last_day)
            if (period.start - known).days > FORECAST_MAX_HORIZON:
                request.problem = (
                    f"{_named(period)} is more than {FORECAST_MAX_HORIZON} days after the "
                    f"latest data ({known}): too far ahead to forecast"
                )
                return
            request.day = known
            request.apply_on = period.start
            request.horizon = max(1, min(28, (period.end - known).days))
            return
        request.problem = (
            f"{_named(period)} has not happened yet: "
            f"the data covers {catalog.first_day}..{catalog.last_day}"
        )
        return
    covers = f"the data covers {catalog.first_day}..{catalog.last_day}"
    if period.phrase == "today" and period.start == catalog.last_day + timedelta(days=1):
        # the morning after the data ends: "today" is what the data knows, its latest day
        request.period = period = Period(catalog.last_day, catalog.last_day, "the latest day")
    if period.end < catalog.first_day or period.start > catalog.last_day:
        request.problem = (
            f"{_named(period)} is outside the data: {covers}"
            if not period.is_day
            else f"{_named(period)} is outside the data: {covers}"
        )
        return
    start, end = max(period.start, catalog.first_day), min(period.end, catalog.last_day)
    if start == end and period.is_day:
        request.day = start
    else:
        request.start, request.end = start, end


def _named(period: Period) -> str:
    """'June 2018 (2018-06-01..2018-06-30)'; a date written as a date is not repeated."""
    days = str(period.start) if period.is_day else f"{period.start}..{period.end}"
    return days if period.phrase == days else f"{period.phrase} ({days})"
