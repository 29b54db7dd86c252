"""Read the day or period a question is about, relative to "today".

Dates are parsed by ``python-dateutil``; spans follow stated rules, so an answer can say which
days it looked at:

* an ISO date (2026-03-14), a day-first numeric date (16/05/2017, 16.05.2017: the first
  number is the day unless it cannot be), or a month and day ("March 9th", "9 March",
  "March 9, 2026"): that day. Without a year, the latest such day not after today.
* two dates ("from 2026-03-01 to 2026-03-07"): that span.
* a numeric date without a year (16/05, 5/16): the latest such day; day first, month first
  when the first number cannot be a month, and refused with both readings when it could be
  either (3/9: 3 September or 9 March).
* a month ("in March", "May 2017"): the whole month; without a year, the latest month that
  has begun by today. "early", "mid" or "late" May: days 1-10, 11-20, 21-end; the first or
  second half: 1-15, 16-end.
* a weekday ("on Saturday"): the latest one before today. "the last 3 days", "the past 2
  weeks": that many days before today.
* "the week of X": the Monday-to-Sunday week holding X.
* "yesterday", "today", "tomorrow": relative to today. "last week": the previous Monday to
  Sunday; "this week": Monday to today; "next week": the coming Monday to Sunday; "past
  week" or "last 7 days": the seven days before today; "last month" / "this month" likewise.
  A day to come is answered from the latest complete day (:func:`latest_known_day`).

An impossible date ("February 30") is a :class:`PeriodError` naming it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from dateutil import parser as dateparser
from dateutil.relativedelta import relativedelta

MONTHS = [m.lower() for m in calendar.month_name[1:]]
_MONTH = r"(?P<month>" + "|".join(MONTHS + [m[:3] for m in MONTHS]) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"


class PeriodError(ValueError):
    """A date in the question that does not exist."""


@dataclass(frozen=True)
class Period:
    """The days a question is about: one day (``start == end``) or a span."""

    start: date
    end: date
    phrase: str

    @property
    def is_day(self) -> bool:
        """True for a single day."""
        return self.start == self.end


def _month_number(name: str) -> int:
    return next(i for i, m in enumerate(MONTHS, start=1) if m.startswith(name[:3].lower()))


def _make(year: int, month: int, day: int, phrase: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise PeriodError(
            f"{phrase!r} is not a date ({calendar.month_name[month]} has "
            f"{calendar.monthrange(year, month)[1]} days in {year})"
        ) from None


def _latest(month: int, day: int, today: date, phrase: str) -> date:
    """Return the latest such day not after today (this year's, else last year's)."""
    if (month, day) == (2, 29):
        year = today.year
        while not calendar.isleap(year) or date(year, 2, 29) > today:
            year -= 1
        return date(year, 2, 29)
    this = _make(today.year, month, day, phrase)
    return this if this <= today else _make(today.year - 1, month, day, phrase)


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    return first, first + relativedelta(months=1, days=-1)


def _explicit_days(text: str, today: date) -> list[tuple[date, str]]:
    """Every explicitly written day in the text, in order."""
    found: list[tuple[int, date, str]] = []
    for m in re.finditer(r"\b\d{4}-\d{1,2}-\d{1,2}\b", text):
        try:
            found.append((m.start(), dateparser.isoparse(m.group()).date(), m.group()))
        except ValueError:
            raise PeriodError(f"{m.group()!r} is not a date") from None
    for m in re.finditer(r"(?<![\w/.#])(\d{1,2})[/.](\d{1,2})(?:[/.](\d{4}))?(?![\w/.])", text):
        found.append((m.start(), _numeric(m, today), m.group()))
    lowered = text.lower()
    patterns = [
        rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+{_YEAR}\b)?(?!\s*(?:days|:))",
        rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+{_YEAR}\b)?",
    ]
    for pattern in patterns:
        for m in re.finditer(pattern, lowered):
            month, day, phrase = _month_number(m["month"]), int(m["day"]), m.group().strip()
            if m["year"]:
                found.append((m.start(), _make(int(m["year"]), month, day, phrase), phrase))
            else:
                found.append((m.start(), _latest(month, day, today, phrase), phrase))
    found.sort(key=lambda f: f[0])
    return [(d, p) for _, d, p in found]


def _numeric(m: re.Match[str], today: date) -> date:
    """Return a numeric date: day first, month first when the first cannot be a month.

    16/05/2017 is 16 May, 5/16/2017 is 16 May too; 3/9 could be 3 September or 9 March, so it
    is refused with both readings rather than guessed.
    """
    first, second, year = int(m.group(1)), int(m.group(2)), m.group(3)
    if first <= 12 and second <= 12 and first != second:
        raise PeriodError(
            f"{m.group()!r} could be {_spoken(first, second)} or {_spoken(second, first)}: "
            "write the date as 2026-03-09 or 9 March"
        )
    day, month = (first, second) if first > 12 or first == second else (second, first)
    if month > 12:
        raise PeriodError(f"{m.group()!r} is not a date")
    if year:
        return _make(int(year), month, day, m.group())
    return _latest(month, day, today, m.group())


def _spoken(day: int, month: int) -> str:
    return f"{day} {calendar.month_name[month]}"


_WEEKDAYS = [d.lower() for d in calendar.day_name]


def _relative(lowered: str, today: date) -> Period | None:
    monday = today - timedelta(days=today.weekday())
    m = re.search(r"\b(?:last|past)\s+(\d{1,3})\s+(day|week)s?\b", lowered)
    if m:
        n = int(m.group(1)) * (7 if m.group(2) == "week" else 1)
        return Period(today - timedelta(days=n), today - timedelta(days=1), m.group())
    m = re.search(r"\b(" + "|".join(_WEEKDAYS) + r")\b", lowered)
    if m:  # the latest such weekday before today
        back = (today.weekday() - _WEEKDAYS.index(m.group(1)) - 1) % 7 + 1
        day = today - timedelta(days=back)
        return Period(day, day, f"{m.group(1).capitalize()} {day}")
    if re.search(r"\b(past|last)\s+(week|7\s+days)\b", lowered) and "last week" not in lowered:
        return Period(today - timedelta(days=7), today - timedelta(days=1), "the past 7 days")
    if re.search(r"\blast\s+7\s+days\b", lowered):
        return Period(today - timedelta(days=7), today - timedelta(days=1), "the last 7 days")
    if "last week" in lowered:
        return Period(monday - timedelta(days=7), monday - timedelta(days=1), "last week")
    if "next week" in lowered:
        return Period(monday + timedelta(days=7), monday + timedelta(days=13), "next week")
    if "this week" in lowered:
        return Period(monday, today, "this week")
    if "last month" in lowered:
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return Period(*_month_span(first.year, first.month), "last month")
    if "this month" in lowered:
        return Period(today.replace(day=1), today, "this month")
    if "yesterday" in lowered:
        day = today - timedelta(days=1)
        return Period(day, day, "yesterday")
    if "tomorrow" in lowered:
        day = today + timedelta(days=1)
        return Period(day, day, "tomorrow")
    if re.search(r"\b(today|this morning|tonight)\b", lowered):
        return Period(today, today, "today")
    return None


def latest_known_day(today: date | None, first_day: date, last_day: date) -> date:
    """Return the last complete day of data on the morning of ``today``.

    ``today`` itself is still being delivered, so the day before it, and never past the data's
    last day (``today`` None: the morning after the data ends). Actions can still act on what
    this day showed; a problem of an earlier day is over, and only what would have helped
    can be said about it.
    """
    day = (today or last_day + timedelta(days=1)) - timedelta(days=1)
    return max(first_day, min(day, last_day))


def find_period(text: str, today: date) -> Period | None:
    """Return the day or period the question names, or None (see the module docstring).

    Raises:
        PeriodError: a written date that does not exist.
    """
    lowered = text.lower()
    days = _explicit_days(text, today)
    week = re.search(r"\bweek\s+(?:of|starting|beginning)\b", lowered)
    if days and week:
        day = days[0][0]
        first = day - timedelta(days=day.weekday())
        return Period(first, first + timedelta(days=6), f"the week of {day}")
    if len(days) >= 2:
        first, last = min(d for d, _ in days), max(d for d, _ in days)
        return Period(first, last, f"{first} to {last}")
    if days:
        return Period(days[0][0], days[0][0], days[0][1])
    part = re.search(
        rf"\b(?P<part>early|mid|middle of|late|first half of|second half of)[\s-]+{_MONTH}"
        rf"(?:\s+{_YEAR})?\b",
        lowered,
    )
    m = part or re.search(rf"\b{_MONTH}(?:\s+{_YEAR})?\b", lowered)
    if m and (m["year"] or part or re.search(rf"\b(in|during|of|for|over)\s+{m.group()}", lowered)):
        month = _month_number(m["month"])
        if m["year"]:
            year = int(m["year"])
        else:
            year = today.year if date(today.year, month, 1) <= today else today.year - 1
        first, last = _month_span(year, month)
        if part:
            bounds = {
                "early": (1, 10),
                "mid": (11, 20),
                "middle of": (11, 20),
                "first half of": (1, 15),
                "second half of": (16, last.day),
            }
            lo, hi = bounds.get(part["part"], (21, last.day))
            first, last = first.replace(day=lo), first.replace(day=hi)
        return Period(first, last, m.group())
    return _relative(lowered, today)
