"""Real data: the Olist slice's May 2017 lateness wave, found and explained as of the day.

The weekly KPI table shows it plainly: deliveries promised in the weeks of 2017-05-08 and
2017-05-15 ran 10-13 % late against 4-8 % around, because parcels spent about two more days
in carrier transit. No Olist seller has the volume to be judged alone, so the triage must
judge the chain (or its busiest states) over several days, and every number it writes must
be what a direct pandas computation on the CSV files gives, as known at the end of the day.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from agent.service import AgentService
from tools.core.context import ToolContext
from tools.data.olist import ingest_olist
from tools.scan_anomalies import ScanAnomaliesInput, scan_anomalies

OLIST = Path(__file__).parents[2] / "fixtures" / "olist_2017h1"
DAY = date(2017, 5, 16)


@pytest.fixture(scope="module")
def olist_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("olist") / "olist.duckdb"
    ingest_olist(OLIST, path)
    return path


def as_of_deliveries(day: date) -> pd.DataFrame:
    """Every Olist delivery (order x seller) due up to ``day``, as known at its end (pandas).

    Olist times are Sao Paulo wall-clock time and every store is in that zone, so the end of
    the day is local midnight; late = delivered after the (start of the) estimated date, or
    not delivered by the end of the day (overdue); transit = carrier hand-over to delivery,
    or to the end of the day for a parcel still in flight.
    """
    orders = pd.read_csv(OLIST / "olist_orders_dataset.csv")
    items = pd.read_csv(OLIST / "olist_order_items_dataset.csv")
    sellers = items.groupby(["order_id", "seller_id"]).size().reset_index()[["order_id"]]
    d = orders.merge(sellers, on="order_id")  # one delivery per order and seller
    for col in (
        "order_purchase_timestamp",
        "order_delivered_carrier_date",
        "order_delivered_customer_date",
        "order_estimated_delivery_date",
    ):
        d[col] = pd.to_datetime(d[col])
    cutoff = pd.Timestamp(day + timedelta(days=1))
    d = d[~d.order_status.isin(["canceled", "unavailable"])]
    d = d[(d.order_estimated_delivery_date < cutoff)]
    carrier = d.order_delivered_carrier_date.where(
        d.order_delivered_carrier_date >= d.order_purchase_timestamp
    )
    carrier = carrier.where(carrier < cutoff)
    delivered = d.order_delivered_customer_date.where(
        (d.order_status == "delivered") & (d.order_delivered_customer_date < cutoff)
    )
    end = delivered.fillna(cutoff)
    return pd.DataFrame(
        {
            "service_date": d.order_estimated_delivery_date.dt.normalize(),
            "late": delivered.isna() | (delivered > d.order_estimated_delivery_date),
            "transit_h": (end - carrier).dt.total_seconds() / 3600,
        }
    )


def _window(frame: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    return frame[frame.service_date.between(pd.Timestamp(first), pd.Timestamp(last))]


@pytest.fixture(scope="module")
def triage_plan(olist_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    state = tmp_path_factory.mktemp("state") / "state.sqlite"
    service = AgentService(db=olist_db, state_db=state, offline=True)
    try:
        view = service.triage(DAY)
        record = service.record(view.run_id)
    finally:
        service.close()
    assert view.plan is not None
    payload = json.loads(
        json.dumps({"run": view.model_dump(mode="json"), "evidence": record.evidence})
    )
    return payload  # what `lastmile triage --out-dir` writes to plan.json


def test_the_may_wave_is_found_at_a_level_the_volume_supports(triage_plan: dict) -> None:  # type: ignore[type-arg]
    plan = triage_plan["run"]["plan"]
    top = plan["hypotheses"][0]
    assert top["target"] in ("all", "SP", "MG", "PR")
    first, last = date.fromisoformat(top["window_start"]), date.fromisoformat(top["day"])
    assert first <= DAY and last >= date(2017, 5, 8)  # overlaps the wave
    assert last == DAY  # as of the day: nothing later
    assert top["cause"] == "carrier_transit"
    assert [h["cause"] for h in plan["hypotheses"]][0] != "handover_delay"
    not_assessed = {n["cause"] for n in plan["not_assessed"]}
    assert {"weather", "traffic", "driver_no_shows"} <= not_assessed


def test_the_numbers_are_what_pandas_computes_as_of_the_day(triage_plan: dict) -> None:  # type: ignore[type-arg]
    plan = triage_plan["run"]["plan"]
    top = plan["hypotheses"][0]
    first, last = date.fromisoformat(top["window_start"]), date.fromisoformat(top["day"])
    grain = (last - first).days + 1
    deliveries = as_of_deliveries(DAY)
    window = _window(deliveries, first, last)
    # the cell's late rate, as printed in the finding
    finding = next(f["text"] for f in plan["findings"] if "late rate" in f["text"])
    assert f"late rate {100 * window.late.mean():.1f}%" in finding
    # the carrier transit of the cell and its normal: trailing windows of the same length
    # ending before the cell, each window's median, then the median of those
    transit = float(window.transit_h.dropna().median())
    assert top["value"] == pytest.approx(transit, abs=0.01)
    assert f"{transit / 24:.1f} days" in top["text"]
    ends = pd.date_range(DAY - timedelta(days=56) + timedelta(days=grain - 1), first - timedelta(1))
    normal = pd.Series(
        [
            _window(deliveries, (e - pd.Timedelta(days=grain - 1)).date(), e.date())
            .transit_h.dropna()
            .median()
            for e in ends
        ]
    ).median()
    pandas_change_days = (transit - normal) / 24
    plan_change_days = (top["value"] - top["expected"]) / 24
    assert 1.5 < pandas_change_days < 3.5  # about two days slower
    assert plan_change_days == pytest.approx(pandas_change_days, abs=0.5)


def test_quiet_june_flags_nothing(olist_db: Path) -> None:
    ctx = ToolContext.for_duckdb(olist_db)
    flagged = {}
    for offset in range(21):
        day = date(2017, 6, 5) + timedelta(days=offset)
        found = scan_anomalies(ctx, ScanAnomaliesInput(day=day)).anomalies
        if found:
            flagged[day] = [(a.target, a.grain_days) for a in found]
    assert flagged == {}


def test_a_question_about_a_scope_too_thin_to_judge_says_why(
    olist_db: Path, tmp_path: Path
) -> None:
    # MG alone is too small to judge: the answer was "Here is what the data shows." and
    # "No tool result was available" while the scan had said why.
    service = AgentService(db=olist_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        view = service.ask("why were deliveries late in MG on 2017-05-16?")
    finally:
        service.close()
    assert view.plan is not None
    assert view.plan.summary.startswith("I could not answer: ")
    assert "MG is too small to judge alone" in view.plan.summary
    assert any("MG is too small to judge alone" in c for c in view.plan.caveats)
    assert not any("No tool result" in c for c in view.plan.caveats)
