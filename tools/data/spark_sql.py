"""The tools' SQL (written for DuckDB) as Spark SQL: sqlglot's transpiler plus two idioms.

The views and tools write one SQL text (:mod:`tools.data.views`). sqlglot turns DuckDB's
dialect into Spark's; two functions it maps literally but whose meaning differs between
the engines are rewritten here:

* ``timezone(zone, ts)``: DuckDB's zone conversion, which runs one way or the other by the
  type of ``ts``. With both sessions in UTC (set by :mod:`tools.data.spark` and
  :mod:`tools.data.connection`): ``timezone(zone, instant)`` (the instant's wall-clock
  time in ``zone``) is ``from_utc_timestamp(instant, zone)``, made zone-less; on a
  wall-clock time (a plain TIMESTAMP, the contract's columns) it reads that time as
  ``zone``'s and gives the instant, ``to_utc_timestamp(ts, zone)`` (a plain cast for UTC).
  An instant is a cast to TIMESTAMPTZ, another ``timezone`` call or the current time.
* ``dayofweek(d)``: DuckDB counts Sunday as 0, Spark as 1.

Every other construct the tools use (``FILTER (WHERE ...)``, ``median``, ``any_value``,
``bool_or``, ``GROUP BY ALL``, ``date_diff('microsecond', ...)``, interval arithmetic,
``?`` parameters) is Spark SQL as sqlglot writes it; the parity tests run both engines on
the same data (``tests/integration/test_spark.py``).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

logging.getLogger("sqlglot").setLevel(logging.ERROR)


_INSTANT_TYPES = (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ)


def _is_timezone_call(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == "timezone"


def _is_instant(node: exp.Expression) -> bool:
    """Whether DuckDB types ``node`` as TIMESTAMP WITH TIME ZONE (as far as the text shows)."""
    if isinstance(node, exp.Cast):
        return node.to.this in _INSTANT_TYPES
    if _is_timezone_call(node):
        return not _is_instant(node.expressions[1])  # wall-clock in gives an instant out
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in ("now", "get_current_timestamp")
    return isinstance(node, exp.CurrentTimestamp)


def _spark_idiom(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.DayOfWeek):
        return exp.Paren(this=exp.Sub(this=node.copy(), expression=exp.Literal.number(1)))
    if _is_timezone_call(node):
        zone, value = node.expressions
        instant = _is_instant(value)
        value = value.transform(_spark_idiom)  # a conversion nested in another
        utc = isinstance(zone, exp.Literal) and zone.this.upper() == "UTC"
        if not instant:  # a wall-clock time in `zone`: the instant it names
            moved = value if utc else exp.func("to_utc_timestamp", value, zone.copy())
            return exp.cast(moved, exp.DataType.Type.TIMESTAMPLTZ)
        if utc:
            return exp.cast(value, exp.DataType.Type.TIMESTAMPNTZ)
        local = exp.func("from_utc_timestamp", value, zone.copy())
        return exp.cast(local, exp.DataType.Type.TIMESTAMPNTZ)
    return node


@lru_cache(maxsize=512)
def to_spark(sql: str) -> str:
    """Return the Spark SQL text of one DuckDB SELECT the tools send.

    Args:
        sql: one statement in DuckDB's dialect (``?`` placeholders kept).

    Returns:
        The statement in Spark's dialect.

    Raises:
        sqlglot.errors.ParseError: the text is not one statement sqlglot can read.
        sqlglot.errors.UnsupportedError: it uses a construct Spark SQL lacks.
    """
    tree = sqlglot.parse_one(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    return tree.transform(_spark_idiom).sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
