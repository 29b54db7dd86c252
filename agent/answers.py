"""Findings for question tools: forecasts asked directly, KPI tables, SQL, rankings.

Each sentence is formatted from the numbers its evidence carries (:mod:`agent.verify`), and
says so when the data cannot answer (a KPI without its feed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agent.results import ToolResult
from agent.schemas import Finding, Outlook
from agent.wording import pct, unit_text
from tools.vocabulary import kpi_label, kpis


def kpi_text(kpi: str, x: float) -> str:
    """Format a KPI value in its unit (:data:`tools.vocabulary.kpis`): rates as percents."""
    return unit_text(kpis()[kpi].unit, x) if kpi in kpis() else f"{x:,.1f}"


def open_days(n: int) -> str:
    """'1 open day', '7 open days'."""
    return f"{n} open day{'' if n == 1 else 's'}"


def _orders(n: float) -> str:
    return f"{n:,.0f} order{'' if round(n) == 1 else 's'}"


def coming_text(f: dict[str, Any]) -> str:
    """Say which day a forecast expects a problem: 'a problem is coming: 2026-03-14 ...'."""
    point = next((p for p in f["points"] if str(p["date"]) == str(f["coming_day"])), None)
    if point is None:  # a result shortened for a prompt: the day, without its figures
        return f"a problem is coming: {f['coming_day']}."
    return (
        f"a problem is coming: {point['date']} is forecast at {pct(point['yhat'])} "
        f"(at least {pct(point['lower'])})."
    )


def forecast_outlooks(results: Sequence[ToolResult], used: set[str]) -> list[Outlook]:
    """Outlooks of the forecasts asked for directly (not those of a diagnosis)."""
    out = []
    for fc in results:
        if fc.tool != "forecast" or fc.id in used:
            continue
        f = fc.result
        out.append(
            Outlook(
                target=f["scope"],
                persistence=f["persistence"],
                text=f"{kpi_label(f['kpi'])} for {f['scope']}: the forecast "
                f"averages {kpi_text(f['kpi'], f['mean_forecast'])} over the next "
                f"{open_days(len(f['points']))} against {kpi_text(f['kpi'], f['normal'])} "
                "normally" + (f"; {coming_text(f)}" if f["persistence"] == "coming" else "."),
                evidence_ids=[fc.id],
            )
        )
    return out


def kpi_findings(results: Sequence[ToolResult]) -> list[Finding]:
    """One sentence per KPI query: the totals of every KPI asked, or why one is missing."""
    out = []
    for q in results:
        if q.tool != "query_kpis":
            continue
        r, t = q.result, q.result["totals"]
        parts = []
        for kpi, value in t.items():
            if kpi in ("orders", "late", "promo") or kpi not in kpis():
                continue
            label = kpi_label(kpi)
            parts.append(
                f"{label} {kpi_text(kpi, value)}"
                if value is not None
                else f"{label}: not in the data ({kpis()[kpi].feed or 'no values'})"
            )
        if t.get("late") is not None and t.get("late_rate") is not None:
            late = round(t["late"])
            parts[0:0] = [f"{late:,} late deliver{'y' if late == 1 else 'ies'}"]
        if t.get("orders") is not None:
            parts.append(f"over {_orders(t['orders'])}")
        when = f"on {r['start']}" if r["start"] == r["end"] else f"{r['start']} to {r['end']}"
        out.append(
            Finding(text=f"{r['scope']}, {when}: " + ", ".join(parts) + ".", evidence_ids=[q.id])
        )
    return out


def ranking_findings(results: Sequence[ToolResult]) -> tuple[list[Finding], str | None]:
    """Return the findings of ``rank_scopes`` and the summary sentence of the last ranking."""
    findings, summary = [], None
    for rec in results:
        if rec.tool != "rank_scopes":
            continue
        r, eid = rec.result, rec.id
        level, when = r["level"], f"from {r['start']} to {r['end']}"
        if r["start"] == r["end"]:
            when = f"on {r['start']}"
        for s in r["ranked"]:
            verdict = "stands out" if s["significant"] else "within its normal range"
            findings.append(
                Finding(
                    text=f"{s['rank']}. {s['id']} {when}: late rate {pct(s['late_rate'])} "
                    f"against {pct(s['normal_rate'])} normally, {s['excess_late']:+,.0f} late "
                    f"deliveries over {s['resolved']:,.0f} resolved deliveries; {verdict}.",
                    evidence_ids=[eid],
                )
            )
        top = [s for s in r["ranked"] if s["significant"]]
        if top:
            names = ", ".join(f"{s['id']} ({s['excess_late']:+,.0f})" for s in top[:5])
            summary = (
                f"{len(top)} of {r['judged']} {level}s stand out {when} against their own "
                f"normal, most late deliveries above normal first: {names}."
            )
        elif r["ranked"] and r["ranked"][0]["excess_late"] > 0:
            first = r["ranked"][0]
            summary = (
                f"No {level} stands out {when} against its own normal ({r['judged']} judged); "
                f"the most late deliveries above normal were at {first['id']} "
                f"({first['excess_late']:+,.0f}), within chance."
            )
        elif len(r["ranked"]) == 1:
            summary = f"{r['ranked'][0]['id']} {when} was at or below its own normal."
        elif r["ranked"]:
            summary = (
                f"No {level} stands out {when}: every one of the {r['judged']} judged was at or "
                "below its own normal."
            )
        else:
            summary = f"No {level} had deliveries {when}."
    return findings, summary


def sql_findings(results: Sequence[ToolResult]) -> list[Finding]:
    """One sentence per query: its first rows when they are few, else how many came back."""
    out = []
    for q in results:
        if q.tool != "run_sql":
            continue
        r = q.result
        rows, columns = r["rows"], r.get("columns", [])
        n = len(rows)
        text = f"The query returned {n} row{'' if n == 1 else 's'}"
        if rows and columns and n <= 5 and len(columns) <= 6:
            shown = "; ".join(
                ", ".join(f"{c} = {_cell(v)}" for c, v in zip(columns, row, strict=False))
                for row in rows
            )
            text += f": {shown}"
        out.append(Finding(text=text + ".", evidence_ids=[q.id]))
    return out


def _cell(v: Any) -> str:
    """Format a value as the evidence holds it: numbers in full (checked), text quoted."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{round(v, 6):.6g}"  # the evidence keeps six decimals
    if isinstance(v, int):
        return str(v)
    return "'" + cell_text(str(v)) + "'"


def cell_text(text: str) -> str:
    """Return a text cell as plans quote it: data from the field, never markup or a link."""
    return re.sub(r"[^\w #&'./:,-]", "", text)[:60]
