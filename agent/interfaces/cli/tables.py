"""Rich tables the ``lastmile`` commands print: row counts per table, data frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table

from agent.interfaces.cli.common import out
from tools.vocabulary import kpis


def _print_rows(title: str, rows: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in rows.items():
        table.add_row(name, f"{n:,}")
    out.print(table)


def _cell(column: str, value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    if isinstance(value, float):
        spec = kpis().get(column)
        if (spec.unit == "share") if spec else column.endswith(("_rate", "_share")):
            return f"{100 * value:.1f}%"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    return str(value)


# Short headers keep the tables readable in an 80-column terminal.
_HEADERS = {
    "period": "date",
    **{name: kpi.header for name, kpi in kpis().items()},
    "incident_id": "id",
    "target": "where",
    "start_date": "from",
    "end_date": "to",
    "magnitude": "mag",
    "late_pts": "late\n+pts",
    "injected": "injected",
}


def _print_frame(title: str, frame: pd.DataFrame) -> None:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for col in frame.columns:
        dated = str(col) in ("period", "start_date", "end_date")
        table.add_column(
            _HEADERS.get(str(col), str(col)),
            justify="right" if frame[col].dtype.kind in "fiu" else "left",
            min_width=10 if dated else None,
            no_wrap=dated,
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(str(c), v) for c, v in zip(frame.columns, row, strict=True)))
    out.print(table)
