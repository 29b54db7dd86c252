"""Follow-up questions in a thread: what a question leaves out comes from the turn before.

"and the day after?" moves the previous day; "the week before" moves the previous period by
a week; "that region" is the previous store's region; "compare them" compares the last two
scopes named; a question that names no store, region or day ("what should we do?"), or
points back ("that store", "and R2?"), keeps the previous scope, day and intent. A shift
with nothing to shift ("and the day after?" as the first question) is said to need a day.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from agent.periods import Period
from tools.analytics.scope import Catalog

if TYPE_CHECKING:
    from agent.parsing import Request

_BACK = re.compile(
    r"\b(that|this|the same|there|its?|them|those|what about|how about|then|same)\b"
    r"|^(and|also|but)\b"
)
_SHIFTS = {
    "the day after": 1,
    "the next day": 1,
    "the following day": 1,
    "the day before": -1,
    "the previous day": -1,
    "the week after": 7,
    "the following week": 7,
    "the week before": -7,
    "the previous week": -7,
}
SHIFT_WORDS = re.compile("|".join(map(re.escape, _SHIFTS)))


def follow_up(request: Request, previous: Request | None, lowered: str, catalog: Catalog) -> None:
    """Move or carry the previous turn's day or period into this question's."""
    shift = next((d for phrase, d in _SHIFTS.items() if phrase in lowered), None)
    before = previous.period if previous is not None else None
    if shift is not None:
        if before is None:
            request.problem = (
                "'the day after' or 'the week before' needs a day to count from: ask about a "
                "day first, e.g. 'why was S010 late on 2026-03-09?'"
            )
            return
        request.problem = None
        start, end = before.start + timedelta(days=shift), before.end + timedelta(days=shift)
        request.period = Period(start, end, f"{start}" if start == end else f"{start}..{end}")
        if start > catalog.last_day and "forecast" not in request.intents:
            request.intents = ["forecast", *request.intents]
        return
    if previous is None or request.period is not None or request.problem:
        return
    if _BACK.search(lowered) or not _names_anything(request):
        request.period = before


def _names_anything(request: Request) -> bool:
    return bool(request.scope_ids or request.unknown_ids or request.period)


def inherit_scope(request: Request, previous: Request, lowered: str, catalog: Catalog) -> None:
    """Carry the previous scope (and intent) into a question that leaves them out."""
    if previous.intents == ["sql"]:
        return
    if re.search(r"\b(that|its|the same|this) region\b", lowered) and previous.scope_ids:
        region = (
            catalog.region_of(previous.scope_ids[0])
            if previous.scope_level == "store"
            else previous.scope_ids[0]
        )
        request.scope_level, request.scope_ids = "region", [region]
    elif "compare" in request.intents and len(request.scope_ids) < 2:
        named = list(dict.fromkeys(reversed([*previous.mentioned, *request.scope_ids])))[:2]
        if len(named) == 2:
            regions = all(n in catalog.regions for n in named)
            request.scope_level = "region" if regions else "store"
            request.scope_ids = list(reversed(named))
    elif not request.scope_ids and not request.unknown_ids and previous.scope_ids:
        if _BACK.search(lowered) or request.period is None or request.period == previous.period:
            request.scope_level, request.scope_ids = previous.scope_level, list(previous.scope_ids)
    if not request.intents_explicit:
        request.intents = list(previous.intents)
        request.kpi, request.kpi_named = previous.kpi, previous.kpi_named
