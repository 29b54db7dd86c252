"""Time zones on load: known zone names, and how written timestamps become UTC instants.

Every load path (contract files, mappings, Olist) types timestamps with :func:`timestamp_sql`,
so one set of rules holds everywhere:

* A value with an offset is that instant: ``2026-03-01T10:00:00+01:00``, ``...Z``, ``... UTC``;
  a space before the offset is allowed (``2026-10-25 01:30:00 +02:00`` is 23:30 UTC the day
  before).
* A value ending in an IANA zone name, ``2026-10-25 12:00:00 America/New_York``, is a local time
  in that zone (16:00 UTC here), whatever zone the loader assumes for other values. An unknown
  zone name is reported as a problem, never guessed.
* A zone-less value is a local time in the zone the loader is told (``--assume-timezone``, a
  mapping's ``timezone``, Olist's ``America/Sao_Paulo``); without one it is rejected.
* A date-only value (``2026-03-09``) in a timestamp column is that local day's midnight.
  Loaders that know a column is a date-only *promise* may read it as the end of that local day
  instead (23:59:59.999999), see ``promise_date`` in :mod:`tools.data.mapping`.

Local wall-clock times that a zone skips or repeats get a stated rule, the one of Python's
``datetime`` with ``fold=0`` (PEP 495):

* **non-existent** (clocks spring forward): shifted forward by the gap. ``2017-10-15 00:00`` in
  ``America/Sao_Paulo`` is read as 01:00 local (03:00 UTC); ``2026-03-29 02:30`` in
  ``Europe/Paris`` as 03:30 local (01:30 UTC). A date-only value therefore never becomes a
  midnight that did not exist, and keeps its local date.
* **ambiguous** (clocks fall back): the earlier instant, the first occurrence.
  ``2017-02-18 23:30`` in ``America/Sao_Paulo`` is 01:30 UTC on the 19th (summer time, -02:00);
  ``2026-10-25 02:30`` in ``Europe/Paris`` is 00:30 UTC (+02:00).

The conversion is SQL over DuckDB's ICU zones (``pg_timezone_names()``), which is also where the
views will read ``stores.timezone``; DuckDB's own local-to-UTC cast picks the *later* instant of
an ambiguous time, hence the explicit rule here. Results are naive ``TIMESTAMP`` values in UTC.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Literal

import duckdb

# A time of day followed by Z, UTC, GMT or a numeric offset (optionally after a space).
OFFSET_SUFFIX = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|UTC|utc|GMT|gmt|[+-]\d{2}(:?\d{2})?)$"
# A time followed by a word of letters: a zone abbreviation such as CET or EST.
_ABBREVIATION = r"\d\s*[A-Za-z]{2,6}([+-]\d{1,2}(:?\d{2})?)?$"
_MERIDIEM = r"\d\s*[AaPp][Mm]$"
_MERIDIEM_FORMATS = (
    "%Y-%m-%d %I:%M %p",
    "%Y-%m-%d %I:%M:%S %p",
    "%Y-%m-%dT%I:%M %p",
    "%Y-%m-%dT%I:%M:%S %p",
    "%Y-%m-%d %I:%M%p",
    "%Y-%m-%d %I:%M:%S%p",
    "%Y-%m-%d %I:%M:%S.%f %p",
    "%Y-%m-%dT%I:%M%p",
    "%Y-%m-%dT%I:%M:%S%p",
)
# Spaces before a numeric offset or Z, which DuckDB's cast does not accept.
_SPACED_OFFSET = r"\s+([+-]\d{2}(:?\d{2})?|Z|z)$"
# A date or date-time followed by an IANA zone name such as America/New_York or Etc/GMT+3.
ZONE_NAME_SUFFIX = r"^(.*\S)\s+([A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)+)$"
DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"
END_OF_DAY_SQL = "(INTERVAL 1 DAY - INTERVAL 1 MICROSECOND)"  # 23:59:59.999999 after midnight

PromiseDate = Literal["start_of_day", "end_of_day"]
"""What a date-only promise means: that local day's 00:00, or its last microsecond."""
KNOWN_ZONES_SQL = "(SELECT #1 FROM pg_timezone_names())"  # `#1`: no column name to mis-parse


@functools.cache
def known_zones() -> frozenset[str]:
    """IANA zone names DuckDB knows (about 600, e.g. ``Europe/Paris``, ``UTC``)."""
    con = duckdb.connect()
    try:
        return frozenset(str(r[0]) for r in con.execute(f"{KNOWN_ZONES_SQL}").fetchall())
    finally:
        con.close()


def zone_suggestions(name: str) -> list[str]:
    """Up to three known zone names close to ``name`` (a case-insensitive match first)."""
    zones = sorted(known_zones())
    same = [z for z in zones if z.lower() == name.strip().lower()]
    return same or difflib.get_close_matches(name.strip(), zones, n=3, cutoff=0.6)


def check_zone(name: str, where: str) -> str:
    """Return ``name`` if it is a zone DuckDB knows.

    Args:
        name: a zone name such as ``Europe/Paris``.
        where: what the name came from, for the message (``"--assume-timezone"``).

    Raises:
        ValueError: naming the zone, close known names and the expected form.
    """
    if name in known_zones():
        return name
    close = zone_suggestions(name)
    hint = f"; did you mean {' or '.join(repr(z) for z in close)}?" if close else ""
    raise ValueError(
        f"unknown time zone {name!r} in {where}{hint} "
        "(write an IANA zone name such as Europe/Paris, America/Sao_Paulo or UTC)"
    )


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def local_to_utc_sql(local: str, zone: str) -> str:
    """Return SQL turning a local wall-clock ``TIMESTAMP`` in ``zone`` into a UTC ``TIMESTAMP``.

    Applies the module's rule: non-existent times move forward by the gap, ambiguous ones take
    the earlier instant. It assumes at most one offset change within a day of each value, true
    of every zone in the tz database. It does not depend on the session time zone.

    Args:
        local: SQL expression of type ``TIMESTAMP`` (local wall-clock time; NULL stays NULL).
        zone: SQL expression naming a known zone (a literal or a column).

    Returns:
        A SQL expression of type ``TIMESTAMP``.
    """

    def offset_at(instant: str) -> str:  # zone offset at a UTC instant, as an INTERVAL
        return f"(timezone({zone}, timezone('UTC', {instant})) - {instant})"

    def local_of(instant: str) -> str:
        return f"timezone({zone}, timezone('UTC', {instant}))"

    before = offset_at(f"({local} - INTERVAL 1 DAY)")
    after = offset_at(f"({local} + INTERVAL 1 DAY)")
    # first: read with the offset in force before any nearby change (fold=0 in Python terms);
    # second: with the offset after it.
    first = f"({local} - {before})"
    second = f"({local} - {after})"
    return (
        f"CASE WHEN {before} = {after} THEN {first} "
        f"WHEN {local_of(first)} = {local} THEN {first} "  # unique, or the earlier of two
        f"WHEN {local_of(second)} = {local} THEN {second} "
        f"ELSE {first} END"  # in a gap: the earlier offset moves it forward by the gap
    )


def local_to_utc(local: str, zone: str) -> str:
    """Like :func:`local_to_utc_sql` for a known zone *name*, with a shortcut for UTC."""
    if zone.upper() in {"UTC", "ETC/UTC", "GMT"}:
        return local
    return local_to_utc_sql(local, _lit(zone))


@dataclass(frozen=True)
class TimestampSql:
    """How a source column becomes a UTC timestamp, with the flags that mark bad rows.

    Attributes:
        value: SQL of type ``TIMESTAMP`` (UTC), NULL where the value cannot be read.
        naive: SQL condition, TRUE where a value has no zone and none may be assumed.
        unknown_zone: SQL condition, TRUE where a value names a zone DuckDB does not know.
        abbreviation: SQL condition, TRUE where a value ends in a zone abbreviation (CET).
    """

    value: str
    naive: str | None = None
    unknown_zone: str | None = None
    abbreviation: str | None = None


def _local_time(text: str) -> str:
    """Return SQL reading a zone-less date-time text as a TIMESTAMP, AM/PM included.

    DuckDB's cast drops a trailing AM/PM ('08:00 PM' reads as 08:00): 12-hour values are
    parsed with their meridiem instead.
    """
    formats = ", ".join(_lit(p) for p in _MERIDIEM_FORMATS)
    return (
        f"CASE WHEN regexp_matches({text}, {_lit(_MERIDIEM)}) "
        f"THEN try_strptime(upper({text}), [{formats}]) "
        f"ELSE TRY_CAST({text} AS TIMESTAMP) END"
    )


def timestamp_sql(raw: str, src_type: str, assume_tz: str | None) -> TimestampSql:
    """Type one source column as a UTC timestamp by the module's rules.

    Args:
        raw: SQL expression of the source value.
        src_type: its DuckDB type (``VARCHAR``, ``TIMESTAMP``, ``TIMESTAMP WITH TIME ZONE``,
            ``DATE``, ...).
        assume_tz: zone of zone-less values (a known zone name), or None to reject them.

    Returns:
        The typed expression and the conditions marking zone-less values and unknown zones.
    """
    if src_type.startswith("TIMESTAMP WITH TIME ZONE") or src_type == "TIMESTAMPTZ":
        return TimestampSql(f"CAST(timezone('UTC', {raw}) AS TIMESTAMP)")
    if src_type.startswith("TIMESTAMP") or src_type == "DATE":
        local = f"CAST({raw} AS TIMESTAMP)"
        if assume_tz is None:
            return TimestampSql(local, naive=f"{raw} IS NOT NULL")
        return TimestampSql(local_to_utc(local, assume_tz))
    text = f"trim(CAST({raw} AS VARCHAR))"
    has_offset = f"regexp_matches({text}, {_lit(OFFSET_SUFFIX)})"
    aware = (
        f"CAST(timezone('UTC', TRY_CAST(regexp_replace({text}, {_lit(_SPACED_OFFSET)}, '\\1') "
        "AS TIMESTAMPTZ)) AS TIMESTAMP)"
    )
    # The guard skips the slower extraction for the usual values, which hold no '/'.
    zone = (
        f"CASE WHEN contains({text}, '/') "
        f"THEN regexp_extract({text}, {_lit(ZONE_NAME_SUFFIX)}, 2) ELSE '' END"
    )
    body = _local_time(f"regexp_extract({text}, {_lit(ZONE_NAME_SUFFIX)}, 1)")
    known = f"({zone} IN {KNOWN_ZONES_SQL})"
    named = f"CASE WHEN {known} THEN {local_to_utc_sql(body, zone)} END"
    naive_value = _local_time(text)
    if assume_tz is None:
        zone_less, naive = naive_value, f"({raw} IS NOT NULL AND {naive_value} IS NOT NULL)"
    else:
        zone_less, naive = local_to_utc(naive_value, assume_tz), None
    # DuckDB's TIMESTAMP cast drops a trailing word ('08:00 CET' reads as 08:00): an
    # abbreviation is ambiguous (IST: India, Ireland or Israel), so it is refused, never
    # read as local time.
    abbreviated = (
        f"(NOT {has_offset} AND regexp_matches({text}, {_lit(_ABBREVIATION)}) "
        f"AND NOT regexp_matches({text}, {_lit(_MERIDIEM)}))"
    )
    value = (
        f"CASE WHEN {has_offset} THEN {aware} WHEN {zone} <> '' THEN {named} "
        f"WHEN {abbreviated} THEN NULL ELSE {zone_less} END"
    )
    plain = f"NOT {has_offset} AND {zone} = '' AND NOT {abbreviated}"
    return TimestampSql(
        value=value,
        naive=f"({plain} AND {naive})" if naive else None,
        unknown_zone=f"(NOT {has_offset} AND {zone} <> '' AND NOT {known})",
        abbreviation=abbreviated,
    )
