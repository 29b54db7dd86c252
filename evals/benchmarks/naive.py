"""The naive pipeline the triage is compared with: pandas, a Prophet per series, DoWhy per anomaly.

What a first notebook would do with the same lake:

1. ``pd.read_parquet`` of the deliveries (only the columns it uses);
2. daily late rate, orders, dispatch delay, distance and DSP share per store in pandas
   (service date = the UTC date of ``promised_end``);
3. a Prophet model fitted for every store and KPI (late rate, orders), forecasting 7 days;
   above ``sample_stores`` stores only that many are fitted and the time is extrapolated
   linearly to all of them (the result says so);
4. per anomaly, a DoWhy GCM on a small graph (orders -> dispatch delay -> late rate, distance
   and DSP share -> late rate) with automatic mechanism assignment, fitted on the target's
   daily history and asked to attribute the day's late rate.

Imports (Prophet, DoWhy) are done before the clock starts, as the triage's are.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

KPIS = ("late_rate", "orders")
COLUMNS = [
    "store_id",
    "carrier",
    "promised_start",
    "promised_end",
    "dispatched_ts",
    "delivered_ts",
    "status",
    "distance_km",
]
EDGES = [
    ("orders", "dispatch_delay_min"),
    ("orders", "late_rate"),
    ("dispatch_delay_min", "late_rate"),
    ("distance_km", "late_rate"),
    ("dsp_share", "late_rate"),
]


def daily_kpis(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Return one row per store and day: orders, late rate and the graph's other variables."""
    d = deliveries
    frame = pd.DataFrame(
        {
            "store_id": d["store_id"],
            "date": d["promised_end"].dt.tz_localize(None).dt.normalize(),
            "resolved": d["status"].isin(["delivered", "failed"]),
            "late": (d["status"] == "failed")
            | ((d["status"] == "delivered") & (d["delivered_ts"] > d["promised_end"])),
            "dispatch_delay_min": (d["dispatched_ts"] - d["promised_start"]).dt.total_seconds()
            / 60,
            "distance_km": d["distance_km"],
            "dsp": d["carrier"] == "dsp",
        }
    )
    out = frame.groupby(["store_id", "date"]).agg(
        orders=("resolved", "size"),
        resolved=("resolved", "sum"),
        late=("late", "sum"),
        dispatch_delay_min=("dispatch_delay_min", "mean"),
        distance_km=("distance_km", "mean"),
        dsp_share=("dsp", "mean"),
    )
    out["late_rate"] = out["late"] / out["resolved"].where(out["resolved"] > 0)
    return out.reset_index()


def fit_prophets(kpis: pd.DataFrame, day: date, stores: list[str]) -> int:
    """Fit a Prophet per store and KPI on the history up to ``day``; return the fits made."""
    from prophet import Prophet

    history = kpis[kpis["date"] <= pd.Timestamp(day)]
    fits = 0
    for store in stores:
        rows = history[history["store_id"] == store]
        for kpi in KPIS:
            series = rows[["date", kpi]].rename(columns={"date": "ds", kpi: "y"}).dropna()
            model = Prophet(interval_width=0.8)
            model.fit(series)
            model.predict(model.make_future_dataframe(periods=7))
            fits += 1
    return fits


def _target_rows(kpis: pd.DataFrame, stores: pd.DataFrame, target: str) -> pd.DataFrame:
    """Daily rows of a store, or of a region's or the chain's stores summed, for one target."""
    if target in set(kpis["store_id"]):
        return kpis[kpis["store_id"] == target].set_index("date")
    members = (
        stores["store_id"]
        if target == "all"
        else stores.loc[stores["region"] == target, "store_id"]
    )
    rows = kpis[kpis["store_id"].isin(set(members))]
    return rows.groupby("date").agg(
        orders=("orders", "sum"),
        late_rate=("late_rate", "mean"),
        dispatch_delay_min=("dispatch_delay_min", "mean"),
        distance_km=("distance_km", "mean"),
        dsp_share=("dsp_share", "mean"),
    )


def attribute(kpis: pd.DataFrame, stores: pd.DataFrame, target: str, day: date) -> None:
    """Fit a DoWhy GCM (automatic mechanisms) on a target's history; attribute the day."""
    import networkx as nx
    from dowhy import gcm

    rows = _target_rows(kpis, stores, target)
    columns = sorted({n for edge in EDGES for n in edge})
    data = rows[columns].astype(float).dropna()
    history = data[data.index < pd.Timestamp(day)]
    scm = gcm.InvertibleStructuralCausalModel(nx.DiGraph(EDGES))
    gcm.auto.assign_causal_mechanisms(scm, history)
    gcm.fit(scm, history)
    gcm.attribute_anomalies(scm, "late_rate", anomaly_samples=data.loc[[pd.Timestamp(day)]])


def naive_pipeline(args: dict[str, Any]) -> dict[str, Any]:
    """Run the naive pipeline on the lake for the day and the anomalies' targets; time each part."""
    import prophet  # noqa: F401  (imported before the clock, as the agent's modules are)
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    lake, day = Path(args["lake"]), date.fromisoformat(args["day"])
    out: dict[str, Any] = {}
    started = time.perf_counter()
    deliveries = pd.read_parquet(lake / "deliveries", columns=COLUMNS)
    out["rows"] = len(deliveries)
    out["read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    kpis = daily_kpis(deliveries)
    del deliveries
    out["kpis_s"] = time.perf_counter() - started
    all_stores = sorted(set(kpis["store_id"]))
    sample = all_stores[: int(args["sample_stores"])]
    started = time.perf_counter()
    out["prophet_fits"] = fit_prophets(kpis, day, sample)
    fitted = time.perf_counter() - started
    out["prophet_sampled_stores"], out["stores"] = len(sample), len(all_stores)
    out["prophet_s"] = fitted * len(all_stores) / max(len(sample), 1)
    stores = pd.read_parquet(lake / "stores", columns=["store_id", "region"])
    gcm_seconds = []
    for target in args["targets"]:
        started = time.perf_counter()
        attribute(kpis, stores, target, day)
        gcm_seconds.append(time.perf_counter() - started)
    out["gcm_s"] = gcm_seconds
    out["total_s"] = out["read_s"] + out["kpis_s"] + out["prophet_s"] + sum(gcm_seconds)
    return out
