"""Tool ``rank_scopes``: which stores (or regions) did worst over a period, noise-aware.

Each store or region is judged against its own normal: its late rate over the reference
weeks before the period. Its excess is the late deliveries above that rate over the
period's resolved deliveries. Whether an excess is more than chance is a one-sided test
under a quasi-binomial model: the binomial variance times a dispersion estimated robustly
from the level's own day-to-day variation over the reference (at least 1), plus the error of the
reference rate itself. With many scopes judged at once, the p-values are held to a false
discovery rate of 5 % (Benjamini-Hochberg, ``scipy.stats.false_discovery_control``), so a
small store's one bad order never tops the list.

Scopes that stand out come first, most excess late deliveries first; the rest follow in the
same order, marked within normal. Asked for given ids, it compares them side by side.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> r = rank_scopes(ctx, RankScopesInput(level="store", start=date(2026, 3, 23),
    ...                                      end=date(2026, 3, 29)))
    >>> [(s.id, s.excess_late, s.significant) for s in r.ranked[:3]]
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, model_validator
from scipy import stats

from tools.analytics.cells import load_store_days
from tools.analytics.scope import load_catalog, resolve_scope
from tools.analytics.thresholds import RANK_FDR
from tools.core.context import ToolContext
from tools.core.errors import ToolError


class RankScopesInput(BaseModel):
    """Arguments of ``rank_scopes``."""

    level: Literal["store", "region"] = Field("store", description="Rank stores or regions.")
    start: date = Field(description="First service date of the period.")
    end: date = Field(description="Last service date of the period.")
    ids: list[str] = Field(
        default_factory=list,
        description="Compare only these stores or regions (default: every one of the level).",
    )
    reference_days: int = Field(
        56, ge=14, le=365, description="Days before the period that define each one's normal."
    )
    limit: int = Field(10, ge=1, le=50, description="Scopes listed.")

    @model_validator(mode="after")
    def _ordered(self) -> RankScopesInput:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class RankedScope(BaseModel):
    """One store or region over the period, against its own normal."""

    rank: int
    id: str
    region: str
    resolved: int = Field(description="Resolved deliveries over the period.")
    late: int = Field(description="Late deliveries over the period.")
    late_rate: float
    normal_rate: float = Field(description="Its late rate over the reference days.")
    excess_late: float = Field(description="Late deliveries above its normal rate.")
    excess_pts: float = Field(description="Late-rate points above normal (a fraction).")
    z: float = Field(description="Excess over its quasi-binomial standard error.")
    p_value: float = Field(description="One-sided p-value of the excess.")
    significant: bool = Field(description="Stands out at a 5 % false discovery rate.")


class RankScopesResult(BaseModel):
    """Stores or regions ranked by excess late deliveries against their own normal."""

    evidence_id: str
    level: str
    start: date
    end: date
    reference_start: date
    reference_end: date
    dispersion: float = Field(description="Day-to-day variance over the binomial's (>= 1).")
    judged: int = Field(description="Scopes with deliveries in the period and the reference.")
    significant: int = Field(description="Scopes that stand out.")
    ranked: list[RankedScope]
    method: str


def _dispersion(ref: pd.DataFrame, key: str, block_days: int) -> float:
    """Robust dispersion of late counts over blocks of the period's length (>= 1).

    The reference is cut into blocks as long as the period (at most a quarter of the
    reference, so each scope has four), and each block's late count is compared with the
    scope's reference rate: weekday patterns cancel in a week as they do in the period (with
    fewer than ten blocks in all, such as two regions, the blocks are halved until there
    are ten, or they are days). The
    median squared Pearson residual over the median of a chi-square with one degree of
    freedom (0.455) keeps a storm in the reference from making every later week look normal.
    """
    last = ref.date.max()
    while True:
        blocks = ref.assign(block=(last - ref.date).dt.days // block_days)
        cells = blocks.groupby([key, "block"], as_index=False)[["late", "resolved"]].sum()
        total = cells.groupby(key)[["late", "resolved"]].transform("sum")
        rate = total.late / total.resolved
        var = cells.resolved * rate * (1 - rate)
        ok = var > 0
        if ok.sum() >= 10 or block_days == 1:
            break
        block_days = max(1, block_days // 2)
    if ok.sum() < 10:
        return 1.0
    squared = (cells.late - cells.resolved * rate)[ok] ** 2 / var[ok]
    return max(1.0, float(squared.median() / stats.chi2.median(1)))


def rank_scopes(ctx: ToolContext, args: RankScopesInput) -> RankScopesResult:
    """Rank stores or regions by excess late deliveries over a period, against their normal.

    Raises:
        ToolError: a period outside the data, unknown ids, or no deliveries in the period.
    """
    catalog = load_catalog(ctx.backend)
    if args.end < catalog.first_day or args.start > catalog.last_day:
        raise ToolError(
            f"{args.start}..{args.end} is outside the data "
            f"({catalog.first_day}..{catalog.last_day})"
        )
    start, end = max(args.start, catalog.first_day), min(args.end, catalog.last_day)
    ref_start = max(catalog.first_day, start - timedelta(days=args.reference_days))
    ref_end = start - timedelta(days=1)
    if ref_end < ref_start:
        raise ToolError(
            f"no history before {start} to judge a normal by; the data starts {catalog.first_day}",
            kind="not_enough_data",
        )
    scope = resolve_scope(catalog, args.level, args.ids) if args.ids else None
    days = load_store_days(
        ctx.backend, as_of=end, start=ref_start, stores=scope.stores if scope else None
    )
    key = "store_id" if args.level == "store" else "region"
    ref = days[days.date <= pd.Timestamp(ref_end)]
    now = days[days.date >= pd.Timestamp(start)]
    if now.empty:
        raise ToolError(f"no deliveries from {start} to {end}", kind="not_enough_data")
    ref_days = (ref_end - ref_start).days + 1
    phi = _dispersion(ref, key, max(1, min((end - start).days + 1, ref_days // 4)))
    period = now.groupby(key).agg(late=("late", "sum"), resolved=("resolved", "sum"))
    normal = ref.groupby(key).agg(ref_late=("late", "sum"), ref_resolved=("resolved", "sum"))
    regions = days.groupby(key).region.first()
    t = period.join(normal, how="inner")
    t = t[(t.resolved > 0) & (t.ref_resolved > 0)]
    if scope is not None:
        t = t[t.index.isin(scope.ids)]
    p0 = t.ref_late / t.ref_resolved
    excess = t.late - p0 * t.resolved
    var = phi * p0 * (1 - p0) * (t.resolved + t.resolved**2 / t.ref_resolved)
    z = np.where(var > 0, excess / np.sqrt(var.where(var > 0, 1.0)), 0.0)
    p = stats.norm.sf(z)
    significant = stats.false_discovery_control(p) <= RANK_FDR if len(p) else np.array([])
    rows = [
        RankedScope(
            rank=0,
            id=str(i),
            region=str(regions.get(i, "")),
            resolved=int(r.resolved),
            late=int(r.late),
            late_rate=round(float(r.late / r.resolved), 4),
            normal_rate=round(float(rate), 4),
            excess_late=round(float(e), 1),
            excess_pts=round(float(r.late / r.resolved - rate), 4),
            z=round(float(zz), 2),
            p_value=float(f"{pp:.3g}"),
            significant=bool(sig and e > 0),
        )
        for (i, r), rate, e, zz, pp, sig in zip(
            t.iterrows(), p0, excess, z, p, significant, strict=True
        )
    ]
    # those that stand out first; within each group, most late deliveries above normal first
    rows.sort(key=lambda s: (not s.significant, -s.excess_late))
    for n, s in enumerate(rows, start=1):
        s.rank = n
    listed = rows if args.ids else rows[: args.limit]
    return _register(ctx, args, listed, rows, phi, (start, end, ref_start, ref_end))


def _register(
    ctx: ToolContext,
    args: RankScopesInput,
    listed: list[RankedScope],
    rows: list[RankedScope],
    phi: float,
    window: tuple[date, date, date, date],
) -> RankScopesResult:
    start, end, ref_start, ref_end = window
    numbers: dict[str, float] = {"dispersion": round(phi, 3), "judged": len(rows)}
    significant = sum(s.significant for s in rows)
    numbers["significant"] = significant
    for s in listed:
        for part in ("late_rate", "normal_rate", "excess_late", "excess_pts", "z", "late"):
            numbers[f"{s.id}.{part}"] = getattr(s, part)
        numbers[f"{s.id}.rank"] = s.rank
        numbers[f"{s.id}.resolved"] = s.resolved
    top = [s for s in listed if s.significant]
    summary = f"{args.level}s {start}..{end} against their own normal: " + (
        ", ".join(f"{s.id} {s.excess_late:+.0f} late ({s.excess_pts:+.1%})" for s in top[:5])
        if top
        else "none stands out"
    )
    facts = {
        "level": args.level,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "ranked": ",".join(s.id for s in top),
    }
    evidence = ctx.evidence.register(
        "rank_scopes", args.model_dump(mode="json"), numbers, summary, facts
    )
    return RankScopesResult(
        evidence_id=evidence.id,
        level=args.level,
        start=start,
        end=end,
        reference_start=ref_start,
        reference_end=ref_end,
        dispersion=round(phi, 3),
        judged=len(rows),
        significant=significant,
        ranked=listed,
        method="late count over the period against each scope's reference-days rate; "
        "quasi-binomial one-sided z test (dispersion from the reference days), "
        "Benjamini-Hochberg at a 5% false discovery rate",
    )
