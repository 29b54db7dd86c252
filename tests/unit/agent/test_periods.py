"""The stated rules for days and periods (agent.periods), relative to a pinned today."""

from __future__ import annotations

from datetime import date

import pytest

from agent.periods import PeriodError, find_period

TODAY = date(2026, 4, 1)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("on 2026-03-14", date(2026, 3, 14), date(2026, 3, 14)),
        ("on 16/05/2017", date(2017, 5, 16), date(2017, 5, 16)),
        ("on 16.05.2017", date(2017, 5, 16), date(2017, 5, 16)),
        ("on March 9th", date(2026, 3, 9), date(2026, 3, 9)),
        ("on 9 March", date(2026, 3, 9), date(2026, 3, 9)),
        ("on March 9, 2025", date(2025, 3, 9), date(2025, 3, 9)),
        # without a year, the latest such day not after today
        ("on December 24", date(2025, 12, 24), date(2025, 12, 24)),
        ("from 2026-03-01 to 2026-03-07", date(2026, 3, 1), date(2026, 3, 7)),
        ("in March", date(2026, 3, 1), date(2026, 3, 31)),
        ("in May 2017", date(2017, 5, 1), date(2017, 5, 31)),
        ("in June", date(2025, 6, 1), date(2025, 6, 30)),
        ("in mid May 2017", date(2017, 5, 11), date(2017, 5, 20)),
        ("in early March", date(2026, 3, 1), date(2026, 3, 10)),
        ("late February", date(2026, 2, 21), date(2026, 2, 28)),
        ("the week of March 11", date(2026, 3, 9), date(2026, 3, 15)),
        ("yesterday", date(2026, 3, 31), date(2026, 3, 31)),
        ("today", TODAY, TODAY),
        ("tomorrow", date(2026, 4, 2), date(2026, 4, 2)),
        ("last week", date(2026, 3, 23), date(2026, 3, 29)),
        ("this week", date(2026, 3, 30), TODAY),
        ("the past week", date(2026, 3, 25), date(2026, 3, 31)),
        ("the last 7 days", date(2026, 3, 25), date(2026, 3, 31)),
        ("last month", date(2026, 3, 1), date(2026, 3, 31)),
    ],
)
def test_each_rule(text: str, start: date, end: date) -> None:
    period = find_period(f"why were deliveries late {text}?", TODAY)
    assert period is not None and (period.start, period.end) == (start, end)


@pytest.mark.parametrize("text", ["February 30", "2026-02-30", "31/04/2026", "April 31st"])
def test_a_date_that_does_not_exist_is_named(text: str) -> None:
    with pytest.raises(PeriodError, match="not a date"):
        find_period(f"why was it late on {text}?", TODAY)


@pytest.mark.parametrize(
    "text", ["why was S010 late?", "you may see delays", "march on", "next 5 days at S004"]
)
def test_no_period_is_invented(text: str) -> None:
    assert find_period(text, TODAY) is None


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("in the first half of March", date(2026, 3, 1), date(2026, 3, 15)),
        ("in the second half of February", date(2026, 2, 16), date(2026, 2, 28)),
        ("on Saturday", date(2026, 3, 28), date(2026, 3, 28)),
        ("on monday", date(2026, 3, 30), date(2026, 3, 30)),
        ("over the last 3 days", date(2026, 3, 29), date(2026, 3, 31)),
        ("over the past 2 weeks", date(2026, 3, 18), date(2026, 3, 31)),
        ("on 16/3", date(2026, 3, 16), date(2026, 3, 16)),
        ("on 3/16", date(2026, 3, 16), date(2026, 3, 16)),
    ],
)
def test_newcomer_phrasings(text: str, start: date, end: date) -> None:
    period = find_period(f"how was R1 {text}?", TODAY)
    assert period is not None and (period.start, period.end) == (start, end)


def test_an_ambiguous_numeric_date_is_refused_with_both_readings() -> None:
    with pytest.raises(PeriodError, match="3 September or 9 March"):
        find_period("late rate in Dallas on 3/9", TODAY)
