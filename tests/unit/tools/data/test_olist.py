"""The Olist adapter on the real 2017-H1 slice, and on variants the full dataset would contain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tools.data import connect
from tools.data.olist import FILES, ingest_olist

OLIST = Path(__file__).parents[3] / "fixtures" / "olist_2017h1"


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


def test_store_day_totals_match_a_shipment_level_pandas_computation(olist_db: Path) -> None:
    orders = _orders()
    items = pd.read_csv(OLIST / FILES["items"])
    shipments = items[["order_id", "seller_id"]].drop_duplicates().merge(orders, on="order_id")
    done = shipments[
        (shipments.order_status == "delivered") & shipments.order_delivered_customer_date.notna()
    ]
    late = (done.order_delivered_customer_date > done.order_estimated_delivery_date).sum()
    con = connect(olist_db, read_only=True)
    row = con.execute("SELECT sum(late), sum(delivered) FROM store_day").fetchone()
    assert row == (late, len(done))


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
    # Olist timestamps are Brasilia time, stored as UTC (+3 h)
    first = con.execute(
        "SELECT order_ts FROM deliveries WHERE order_id = 'b95a0a8bd30aece4e94e81f0591249d8'"
    ).fetchone()
    assert str(first[0]) == "2017-01-05 15:01:20"  # type: ignore[index]
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
