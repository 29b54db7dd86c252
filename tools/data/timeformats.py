"""strptime patterns in mapping files: are they valid, and what do they read.

Patterns are DuckDB's strptime patterns (``%m/%d/%Y %H:%M``, ``%d-%b-%y``,
``%Y-%m-%dT%H:%M:%S%z``), checked by DuckDB itself. A pattern must read a whole date; one
without a time of day reads dates only, which matters for promises (see ``promise_date``).
"""

from __future__ import annotations

import functools
import re

import duckdb

_TIME_DIRECTIVE = re.compile(r"%-?[HIMSfgnpXc]")
_ZONE_DIRECTIVE = re.compile(r"%[zZ]")
_YEAR, _MONTH, _DAY = re.compile(r"%-?[Yy]"), re.compile(r"%-?m|%[bB]"), re.compile(r"%-?d")
_DAY_OF_YEAR, _WHOLE_DATE = re.compile(r"%-?j"), re.compile(r"%[cx]")


@functools.cache
def format_problem(pattern: str) -> str | None:
    """Why a strptime pattern cannot read dates, or None if it can.

    Args:
        pattern: a DuckDB strptime pattern such as ``%m/%d/%Y %H:%M`` or ``%d-%b-%y``.
    """
    con = duckdb.connect()
    try:
        con.execute("SELECT try_strptime('', ?)", [pattern])
    except duckdb.Error as exc:
        detail = str(exc).splitlines()[0].split("Error: ", 1)[-1]
        return f"{pattern!r} is not a valid strptime pattern ({detail})"
    finally:
        con.close()
    dated = _WHOLE_DATE.search(pattern) or (
        _YEAR.search(pattern)
        and (_DAY_OF_YEAR.search(pattern) or (_MONTH.search(pattern) and _DAY.search(pattern)))
    )
    if not dated:
        return (
            f"{pattern!r} does not read a whole date: it needs a year (%Y or %y), a month "
            "(%m, %b or %B) and a day (%d), e.g. '%d/%m/%Y %H:%M'"
        )
    return None


def is_date_only(pattern: str) -> bool:
    """Tell whether a pattern reads no time of day (``%d-%b-%y``)."""
    return not _TIME_DIRECTIVE.search(pattern) and not _ZONE_DIRECTIVE.search(pattern)


def is_zoned(pattern: str) -> bool:
    """Tell whether a pattern reads an offset or zone name (``%z``, ``%Z``)."""
    return bool(_ZONE_DIRECTIVE.search(pattern))
