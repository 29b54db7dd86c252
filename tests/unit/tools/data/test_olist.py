"""The Olist adapter on the real 2017-H1 slice, and on variants the full dataset would contain."""

from __future__ import annotations

import shutil
from datetime import date as date_
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from tools.data import connect
from tools.data.olist import FILES, ingest_olist
from tools.data.schema import LATE_SQL
from tools.data.store import read_metadata

OLIST = Path(__file__).parents[3] / "fixtures" / "olist_2017h1"
# Olist-shaped orders at the dates the 2017-H1 slice lacks (see tests/fixtures/ingest/README.md)
OLIST_DST = Path(__file__).parents[3] / "fixtures" / "ingest" / "olist_dst"


def _orders() -> pd.DataFrame:
    return pd.read_csv(
        OLIST / FILES["orders"],
        parse_dates=[
            "order_purchase_timestamp",
            "order_delivered_customer_date",
            "order_estimated_delivery_date",
        ],
    )


@pytest.fixture(scope="module")
def olist_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("olist") / "o.duckdb"
    ingest_olist(OLIST, db)
    return db


def test_late_rate_of_delivered_orders_matches_pandas(olist_db: Path) -> None:
    orders = _orders()
    delivered = orders[
        (orders.order_status == "delivered") & orders.order_delivered_customer_date.notna()
    ]
    expected = (
        delivered.order_delivered_customer_date > delivered.order_estimated_delivery_date
    ).mean()
    con = connect(olist_db, read_only=True)
    got = con.execute(
        "SELECT count(DISTINCT order_id) FILTER (WHERE is_late)::DOUBLE / count(DISTINCT order_id) "
        "FROM delivery_outcomes WHERE status = 'delivered'"
    ).fetchone()[0]  # type: ignore[index]
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.02 < got < 0.15


_DELIVERED = "order_delivered_customer_date"


def test_store_day_totals_match_a_shipment_level_pandas_computation(olist_db: Path) -> None:
    orders = _orders()
    items = pd.read_csv(OLIST / FILES["items"])
    shipments = items[["order_id", "seller_id"]].drop_duplicates().merge(orders, on="order_id")
    done = shipments[
        (shipments.order_status == "delivered") & shipments.order_delivered_customer_date.notna()
    ]
    late = (done.order_delivered_customer_date > done.order_estimated_delivery_date).sum()
    # Not delivered, not cancelled, and due before the extract (the latest time the data
    # records): overdue, which counts as late in the persisted view as in any as-of query.
    stamps = ["order_purchase_timestamp", "order_delivered_carrier_date"]
    extract = max(pd.to_datetime(shipments[c]).max() for c in [*stamps, _DELIVERED])
    open_ = shipments[
        ~shipments.order_status.isin(["canceled", "unavailable"])
        & ~shipments.index.isin(done.index)
    ]
    overdue = (pd.to_datetime(open_.order_estimated_delivery_date) < extract).sum()
    con = connect(olist_db, read_only=True)
    row = con.execute("SELECT sum(late), sum(delivered), sum(overdue) FROM store_day").fetchone()
    assert row == (late + overdue, len(done), overdue)
    assert overdue > 0


def test_mapping_counts(olist_db: Path) -> None:
    orders = _orders()
    items = pd.read_csv(OLIST / FILES["items"])
    con = connect(olist_db, read_only=True)
    n_deliveries, n_stores = con.execute(
        "SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM stores)"
    ).fetchone()  # type: ignore[misc]
    with_items = items.merge(orders[["order_id"]], on="order_id")
    assert n_deliveries == len(with_items[["order_id", "seller_id"]].drop_duplicates())
    assert n_stores == items.seller_id.nunique()
    statuses = dict(con.execute("SELECT status, count(*) FROM deliveries GROUP BY 1").fetchall())
    assert set(statuses) <= {"delivered", "cancelled", "in_transit"}
    assert statuses["in_transit"] > 0  # shipped / invoiced / processing
    multi = con.execute(
        "SELECT count(*) FROM (SELECT order_id FROM deliveries GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone()[0]  # type: ignore[index]
    assert multi > 0  # orders from several sellers ship separately
    # Olist timestamps are Brasilia time, stored as UTC: +2 h in the 2016-17 summer time
    # (until 2017-02-19), +3 h after it
    first = con.execute(
        "SELECT order_ts FROM deliveries WHERE order_id = 'b95a0a8bd30aece4e94e81f0591249d8'"
    ).fetchone()
    assert str(first[0]) == "2017-01-05 14:01:20"  # type: ignore[index]  # 12:01:20 local
    march = con.execute(
        "SELECT order_ts FROM deliveries WHERE order_id = '2c52a5a630ca9e849ec5fad8932bab44'"
    ).fetchone()
    assert str(march[0]) == "2017-03-16 17:41:46"  # type: ignore[index]  # 14:41:46 local
    zones = con.execute("SELECT DISTINCT timezone FROM stores").fetchall()
    assert zones == [("America/Sao_Paulo",)]
    staffing = con.execute("SELECT count(*) FROM staffing").fetchone()
    assert staffing == (0,)


def _variant(tmp_path: Path) -> Path:
    root = tmp_path / "olist"
    shutil.copytree(OLIST, root)
    return root


def test_works_on_other_dates_extra_columns_and_missing_values(tmp_path: Path) -> None:
    root = _variant(tmp_path)
    orders = pd.read_csv(root / FILES["orders"], dtype=str)
    # the full dataset spans 2016-09 .. 2018-10: move everything by 456 days (into 2018)
    for col in [
        c
        for c in orders.columns
        if c.startswith("order_") and c not in ("order_id", "order_status")
    ]:
        ts = pd.to_datetime(orders[col])
        orders[col] = (ts + pd.Timedelta(days=456)).dt.strftime("%Y-%m-%d %H:%M:%S")
    orders["unused_extra"] = "x"
    delivered = orders.index[orders.order_status == "delivered"]
    orders.loc[delivered[:5], "order_delivered_customer_date"] = None  # delivered, date missing
    orders.loc[delivered[5:8], "order_delivered_carrier_date"] = "2015-01-01 00:00:00"  # bogus
    orders.to_csv(root / FILES["orders"], index=False)
    (root / FILES["customers"]).unlink()  # optional file
    db = tmp_path / "v.duckdb"
    report = ingest_olist(root, db)
    assert report.delivered_without_date == 5
    assert report.carrier_dates_cleared == 3
    assert report.first_purchase is not None and report.first_purchase.startswith("2018-04")
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM deliveries WHERE zone_id IS NOT NULL").fetchone() == (
        0,
    )
    span = con.execute("SELECT min(date), max(date) FROM store_day").fetchone()
    assert str(span[0]).startswith("2018")  # type: ignore[index]
    holidays = con.execute("SELECT count(*) FROM calendar WHERE kind = 'holiday'").fetchone()[0]  # type: ignore[index]
    assert holidays >= 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop_orders", "missing file olist_orders_dataset.csv"),
        ("drop_column", "lacks column(s) order_estimated_delivery_date"),
        ("bad_status", "order_status values the adapter does not know: 'teleported'"),
        ("no_folder", "does not exist"),
    ],
)
def test_inputs_that_are_not_olist_are_rejected_clearly(
    tmp_path: Path, world_copy: Path, change: str, message: str
) -> None:
    root = _variant(tmp_path)
    orders_path = root / FILES["orders"]
    if change == "drop_orders":
        orders_path.unlink()
    elif change == "drop_column":
        pd.read_csv(orders_path, dtype=str).drop(columns=["order_estimated_delivery_date"]).to_csv(
            orders_path, index=False
        )
    elif change == "bad_status":
        frame = pd.read_csv(orders_path, dtype=str)
        frame.loc[0, "order_status"] = "teleported"
        frame.to_csv(orders_path, index=False)
    else:
        root = tmp_path / "nowhere"
    before = (
        connect(world_copy, read_only=True).execute("SELECT count(*) FROM deliveries").fetchone()
    )
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest_olist(root, world_copy)
    after = (
        connect(world_copy, read_only=True).execute("SELECT count(*) FROM deliveries").fetchone()
    )
    assert before == after


def _dst_deliveries(db: Path) -> dict[str, tuple[object, ...]]:
    """delivery_id -> (order_ts, promised_end, local date of the promise, late), all in SQL."""
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            "SELECT d.delivery_id, d.order_ts, d.promised_end, "
            "CAST(timezone(s.timezone, timezone('UTC', d.promised_end)) AS DATE), "
            f"{LATE_SQL} FROM deliveries AS d JOIN stores AS s USING (store_id)"
        ).fetchall()
    finally:
        con.close()
    return {str(r[0])[:3] + str(r[0])[-3:]: tuple(r[1:]) for r in rows}


def test_promises_on_midnights_summer_time_skipped_load_on_their_local_date(
    tmp_path: Path,
) -> None:
    db = tmp_path / "dst.duckdb"
    ingest_olist(OLIST_DST, db)
    got = _dst_deliveries(db)
    # 2016-10-16 00:00 did not exist in Brasilia (clocks went to 01:00, UTC-02:00)
    assert got["dst1-1"][1:] == (datetime(2016, 10, 16, 3, 0), date_(2016, 10, 16), False)
    assert got["dst1-1"][0] == datetime(2016, 10, 5, 14, 0)  # before summer time: UTC-03:00
    # 2017-10-15: delivered at 10:00 on the promised day, which started at 01:00
    for seller in ("dst2-1", "dst2-2"):
        assert got[seller][1:] == (datetime(2017, 10, 15, 3, 0), date_(2017, 10, 15), True)
    # a purchase at 23:30 on 2017-02-18, an hour that came twice: the first (UTC-02:00)
    assert got["dst3-1"][0] == datetime(2017, 2, 19, 1, 30)
    # 2018-11-04 00:00, the next skipped midnight; the order is still in transit
    assert got["dst4-1"][1:] == (datetime(2018, 11, 4, 3, 0), date_(2018, 11, 4), False)
    con = connect(db, read_only=True)
    assert read_metadata(con, "dataset") == {
        "name": "olist",
        "path": str(OLIST_DST),
        "timezone": "America/Sao_Paulo",
        "promise_date": "start_of_day",
    }
    con.close()


def test_promises_can_mean_the_end_of_the_estimated_day(tmp_path: Path) -> None:
    db = tmp_path / "eod.duckdb"
    ingest_olist(OLIST_DST, db, promise_date="end_of_day")
    got = _dst_deliveries(db)
    end = datetime(2017, 10, 16, 1, 59, 59, 999999)  # 2017-10-15 23:59:59.999999 at UTC-02:00
    assert got["dst2-1"][1:] == (end, date_(2017, 10, 15), False)  # on the day: on time
    assert got["dst1-1"][1] == datetime(2016, 10, 17, 1, 59, 59, 999999)
    # on the real slice the end of the day can only make fewer deliveries late
    real = tmp_path / "real.duckdb"
    ingest_olist(OLIST, real, promise_date="end_of_day")
    con = connect(real, read_only=True)
    late, on_the_day = con.execute(
        f"SELECT count(*) FILTER (WHERE {LATE_SQL}), count(*) FILTER (WHERE status = 'delivered' "
        "AND CAST(timezone('America/Sao_Paulo', timezone('UTC', delivered_ts)) AS DATE) = "
        "CAST(timezone('America/Sao_Paulo', timezone('UTC', promised_end)) AS DATE)) "
        "FROM deliveries"
    ).fetchone()  # type: ignore[misc]
    con.close()
    orders = _orders()
    items = pd.read_csv(OLIST / FILES["items"])
    shipments = items[["order_id", "seller_id"]].drop_duplicates().merge(orders, on="order_id")
    done = shipments[
        (shipments.order_status == "delivered") & shipments.order_delivered_customer_date.notna()
    ]
    after_the_day = (
        done.order_delivered_customer_date.dt.normalize() > done.order_estimated_delivery_date
    )
    assert late == after_the_day.sum() + (shipments.order_status == "failed").sum()
    assert on_the_day > 0


def test_an_unknown_promise_meaning_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="promise_date must be 'start_of_day' or 'end_of_day'"):
        ingest_olist(OLIST_DST, tmp_path / "x.duckdb", promise_date="noon")  # type: ignore[arg-type]
