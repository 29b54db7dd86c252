"""Map the public Olist Brazilian e-commerce dataset onto the last-mile contract.

Mapping (one *delivery* per order and seller, since a multi-seller order ships separately):

===============================  ==============================================================
contract                         Olist
===============================  ==============================================================
``stores``                       sellers: ``store_id`` = seller_id, ``region`` = seller_state,
                                 ``market`` = seller_city; no coordinates (left NULL);
                                 ``timezone`` = America/Sao_Paulo for every seller
``deliveries.delivery_id``       ``<order_id>-<n>``, n numbering the order's sellers
``deliveries.zone_id``           customer_state + "-" + customer zip prefix (where known)
``carrier``                      ``dsp``: Olist sellers hand parcels to third-party carriers
``order_ts`` / ``promised_start`` order_purchase_timestamp (the promise runs from purchase)
``promised_end``                 order_estimated_delivery_date, a date: 00:00 of that local day
                                 by default, or its end (23:59:59.999999) on request
``dispatched_ts``                order_delivered_carrier_date (hand-over to the carrier)
``delivered_ts``                 order_delivered_customer_date
``status``                       delivered -> delivered; canceled/unavailable -> cancelled;
                                 shipped/invoiced/processing/created/approved -> in_transit;
                                 "delivered" without a delivery date -> in_transit
``items``                        number of the order's items from that seller
``calendar``                     Brazilian national holidays (``holidays`` package)
===============================  ==============================================================

Not mapped, because Olist has no such data: ``staffing`` and ``conditions`` (left empty),
drivers, distances, failure reasons and driver notes (NULL). Reviews and payments are not
used. Orders without items have no seller, so no store: they are skipped and counted.

Olist timestamps carry no zone: they are the platform's clock, Brasília local time. They are
read in ``America/Sao_Paulo`` with its 2016-2018 summer time (UTC-02:00 from mid-October or
early November to mid-February, UTC-03:00 otherwise), by the rules of :mod:`tools.data.zones`:
a local time the clocks skipped (``2017-10-15 00:00``, the midnight summer time began) is
shifted forward by the gap, to 01:00 local, so its local date is kept; a repeated one (the
23:00 hour before summer time ended) is the earlier instant. Every seller's ``timezone`` is
``America/Sao_Paulo`` too: sellers are all over Brazil, some in other zones, but the dates
in the data (the estimated delivery date above all) are written on the platform's clock.

The conversion is monotonic, so comparisons keep the source's order: by default (promise at
00:00 of the estimated date) a delivery is late exactly when ``delivered > estimated`` in the
CSV. ``promise_date="end_of_day"`` reads the estimated date as a deadline at the end of that
day, which counts deliveries made on the day itself as on time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import holidays as holidays_lib
import pandas as pd
from pydantic import BaseModel

from tools.data.store import AtomicLoad, LoadReport
from tools.data.validate import sql_literal
from tools.data.zones import END_OF_DAY_SQL, PromiseDate

logger = logging.getLogger(__name__)

OLIST_TZ = "America/Sao_Paulo"  # Brasília time, with the summer time of the data's years
FILES = {
    "orders": "olist_orders_dataset.csv",
    "items": "olist_order_items_dataset.csv",
    "sellers": "olist_sellers_dataset.csv",
    "customers": "olist_customers_dataset.csv",
}
REQUIRED_COLUMNS = {
    "orders": (
        "order_id",
        "customer_id",
        "order_status",
        "order_purchase_timestamp",
        "order_delivered_carrier_date",
        "order_delivered_customer_date",
        "order_estimated_delivery_date",
    ),
    "items": ("order_id", "seller_id"),
    "sellers": ("seller_id", "seller_city", "seller_state"),
    "customers": ("customer_id", "customer_zip_code_prefix", "customer_state"),
}
STATUS_MAP = {
    "delivered": "delivered",
    "canceled": "cancelled",
    "unavailable": "cancelled",
    "shipped": "in_transit",
    "invoiced": "in_transit",
    "processing": "in_transit",
    "created": "in_transit",
    "approved": "in_transit",
}


class OlistReport(BaseModel):
    """What the Olist adapter read, mapped, skipped and cleaned."""

    load: LoadReport
    orders_read: int
    orders_without_items: int
    deliveries: int
    stores: int
    sellers_without_profile: int
    carrier_dates_cleared: int
    delivered_without_date: int
    first_purchase: str | None
    last_purchase: str | None


def _csv(path: Path) -> str:
    # all_varchar: every value arrives as text and is typed by the contract's validation.
    return f"read_csv({sql_literal(str(path))}, header = true, all_varchar = true)"


def _check_inputs(con: duckdb.DuckDBPyConnection, root: Path) -> dict[str, str]:
    if not root.is_dir():
        raise ValueError(f"Olist folder {root} does not exist or is not a folder")
    sources: dict[str, str] = {}
    errors: list[str] = []
    for key, name in FILES.items():
        path = root / name
        if not path.exists():
            if key == "customers":
                continue  # optional: only delivery zones come from it
            errors.append(f"missing file {name}")
            continue
        rel = _csv(path)
        try:
            cols = {str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
        except duckdb.Error as exc:
            errors.append(f"{name} is not a readable CSV file: {str(exc).splitlines()[0]}")
            continue
        missing = [c for c in REQUIRED_COLUMNS[key] if c not in cols]
        if missing:
            errors.append(f"{name} lacks column(s) {', '.join(missing)}")
            continue
        sources[key] = rel
    if errors:
        raise ValueError(f"{root} is not an Olist dataset folder: " + "; ".join(errors))
    unknown = con.execute(
        f"SELECT DISTINCT order_status FROM {sources['orders']} WHERE order_status IS NULL "
        f"OR order_status NOT IN ({', '.join(sql_literal(s) for s in STATUS_MAP)}) LIMIT 5"
    ).fetchall()
    if unknown:
        raise ValueError(
            f"{FILES['orders']} has order_status values the adapter does not know: "
            f"{', '.join(repr(u[0]) for u in unknown)} (known: {', '.join(STATUS_MAP)})"
        )
    return sources


def _status_sql() -> str:
    cases = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in STATUS_MAP.items())
    return f"CASE o.order_status {cases} END"


def _promise_sql(promise_date: PromiseDate) -> str:
    """Return the estimated delivery date as a promise: as written (00:00), or that day's end."""
    estimated = "o.order_estimated_delivery_date"
    if promise_date == "start_of_day":
        return estimated
    day = f"CAST(CAST(TRY_CAST({estimated} AS TIMESTAMP) AS DATE) AS TIMESTAMP)"
    # Unreadable values pass through unchanged, so validation reports them as they are.
    return (
        f"CASE WHEN TRY_CAST({estimated} AS TIMESTAMP) IS NULL THEN {estimated} "
        f"ELSE strftime({day} + {END_OF_DAY_SQL}, '%Y-%m-%d %H:%M:%S.%f') END"
    )


def ingest_olist(
    path: str | Path,
    db: str | Path,
    *,
    memory_limit: str | None = None,
    promise_date: PromiseDate = "start_of_day",
) -> OlistReport:
    """Load an Olist dataset folder into ``db``, replacing its contract tables atomically.

    Args:
        path: folder with the Kaggle CSV files (orders, order_items, sellers; customers optional).
        db: DuckDB file (created if missing).
        memory_limit: optional DuckDB memory cap.
        promise_date: ``start_of_day`` reads the estimated delivery date as 00:00 of that day
            in Brasília (late exactly when the CSV says delivered > estimated);
            ``end_of_day`` as 23:59:59.999999 of that day.

    Returns:
        What was read, mapped and skipped.

    Raises:
        ValueError: if the folder is not an Olist dataset (missing files or columns), or
            ``promise_date`` is neither start_of_day nor end_of_day.
        DataValidationError: if mapped rows break the contract; nothing is written.
    """
    if promise_date not in ("start_of_day", "end_of_day"):
        raise ValueError(
            f"promise_date must be 'start_of_day' or 'end_of_day', got {promise_date!r}"
        )
    root = Path(path)
    with AtomicLoad(
        db, source=f"olist {root}", mode="replace", assume_tz=OLIST_TZ, memory_limit=memory_limit
    ) as load:
        con = load.con
        src = _check_inputs(con, root)
        con.execute(f"CREATE TEMP TABLE _olist_orders AS SELECT * FROM {src['orders']}")
        con.execute(
            f"CREATE TEMP TABLE _olist_items AS SELECT order_id, seller_id FROM {src['items']}"
        )
        con.execute(f"CREATE TEMP TABLE _olist_sellers AS SELECT * FROM {src['sellers']}")
        if "customers" in src:
            con.execute(
                "CREATE TEMP TABLE _olist_customers AS SELECT customer_id, "
                "any_value(customer_state) AS customer_state, "
                "any_value(customer_zip_code_prefix) AS zip "
                f"FROM {src['customers']} GROUP BY customer_id"
            )
        else:
            con.execute(
                "CREATE TEMP TABLE _olist_customers "
                "(customer_id VARCHAR, customer_state VARCHAR, zip VARCHAR)"
            )

        stores_sql = f"""
            WITH known AS (
              SELECT seller_id, any_value(seller_city) AS city, any_value(seller_state) AS state
              FROM _olist_sellers GROUP BY seller_id
            ),
            used AS (SELECT DISTINCT seller_id FROM _olist_items WHERE seller_id IS NOT NULL)
            SELECT
              u.seller_id AS store_id,
              'Seller ' || left(u.seller_id, 8) || ' (' || coalesce(k.city, 'unknown city') || '/'
                || coalesce(k.state, '?') || ')' AS name,
              coalesce(k.state, 'unknown') AS region,
              coalesce(k.city, 'unknown') AS market,
              CAST(NULL AS DOUBLE) AS lat,
              CAST(NULL AS DOUBLE) AS lon,
              {sql_literal(OLIST_TZ)} AS timezone
            FROM used AS u LEFT JOIN known AS k USING (seller_id)
        """
        # Carrier hand-over stamped before the purchase is a known source error: dropped.
        carrier_ok = (
            "TRY_CAST(o.order_delivered_carrier_date AS TIMESTAMP) >= "
            "TRY_CAST(o.order_purchase_timestamp AS TIMESTAMP)"
        )
        deliveries_sql = f"""
            WITH shipments AS (
              SELECT order_id, seller_id, count(*) AS items
              FROM _olist_items WHERE seller_id IS NOT NULL GROUP BY order_id, seller_id
            ),
            mapped AS (
              SELECT
                o.order_id || '-' || CAST(row_number() OVER (
                    PARTITION BY o.order_id ORDER BY s.seller_id) AS VARCHAR) AS delivery_id,
                o.order_id,
                s.seller_id AS store_id,
                CASE WHEN c.customer_state IS NOT NULL
                     THEN c.customer_state || '-' || coalesce(c.zip, '?') END AS zone_id,
                CAST(NULL AS VARCHAR) AS driver_id,
                'dsp' AS carrier,
                o.order_purchase_timestamp AS order_ts,
                o.order_purchase_timestamp AS promised_start,
                {_promise_sql(promise_date)} AS promised_end,
                CASE WHEN {carrier_ok} THEN o.order_delivered_carrier_date END AS dispatched_ts,
                CASE WHEN o.order_status = 'delivered'
                     THEN o.order_delivered_customer_date END AS delivered_ts,
                CASE WHEN o.order_status = 'delivered' AND o.order_delivered_customer_date IS NULL
                     THEN 'in_transit' ELSE {_status_sql()} END AS status,
                CAST(NULL AS VARCHAR) AS failure_reason,
                CAST(NULL AS DOUBLE) AS distance_km,
                s.items,
                CAST(NULL AS VARCHAR) AS driver_note
              FROM _olist_orders AS o
              JOIN shipments AS s USING (order_id)
              LEFT JOIN _olist_customers AS c USING (customer_id)
            )
            SELECT * FROM mapped
        """
        stats = con.execute(
            f"""
            SELECT
              count(*),
              count(*) FILTER (WHERE order_id NOT IN (SELECT order_id FROM _olist_items)),
              count(*) FILTER (
                WHERE o.order_delivered_carrier_date IS NOT NULL AND NOT {carrier_ok}),
              count(*) FILTER (WHERE o.order_status = 'delivered'
                               AND o.order_delivered_customer_date IS NULL),
              CAST(min(TRY_CAST(o.order_purchase_timestamp AS TIMESTAMP)) AS VARCHAR),
              CAST(max(TRY_CAST(o.order_purchase_timestamp AS TIMESTAMP)) AS VARCHAR)
            FROM _olist_orders AS o
            """
        ).fetchone()
        assert stats is not None
        no_profile = con.execute(
            "SELECT count(DISTINCT seller_id) FROM _olist_items WHERE seller_id NOT IN "
            "(SELECT seller_id FROM _olist_sellers WHERE seller_id IS NOT NULL)"
        ).fetchone()

        load.replace_tables(["stores", "deliveries", "staffing", "conditions", "calendar"])
        n_stores = load.add_sql("stores", stores_sql, FILES["sellers"])
        n_deliveries = load.add_sql("deliveries", deliveries_sql, FILES["orders"])
        calendar = _holidays(stats[4], stats[5])
        load.add_frame("calendar", calendar, "holidays:BR")
        load.set_metadata(
            "dataset",
            {
                "name": "olist",
                "path": str(root),
                "timezone": OLIST_TZ,
                "promise_date": promise_date,
            },
        )
        report = load.commit()

    out = OlistReport(
        load=report,
        orders_read=int(stats[0]),
        orders_without_items=int(stats[1]),
        deliveries=n_deliveries,
        stores=n_stores,
        sellers_without_profile=int(no_profile[0]) if no_profile else 0,
        carrier_dates_cleared=int(stats[2]),
        delivered_without_date=int(stats[3]),
        first_purchase=stats[4],
        last_purchase=stats[5],
    )
    logger.info("olist: %s", out.model_dump(exclude={"load"}))
    return out


def _holidays(first: str | None, last: str | None) -> pd.DataFrame:
    """Brazilian national holidays over the data's years (plus the next, for promises)."""
    if not first or not last:
        return pd.DataFrame(
            {"date": pd.Series([], dtype="datetime64[us]"), "store_id": [], "kind": [], "name": []}
        )
    years = range(int(first[:4]), int(last[:4]) + 2)
    br = holidays_lib.country_holidays("BR", years=list(years))
    rows = sorted((d, name) for d, name in br.items())
    return pd.DataFrame(
        {
            "date": pd.to_datetime([d for d, _ in rows]),
            "store_id": pd.Series([None] * len(rows), dtype="object"),
            "kind": ["holiday"] * len(rows),
            "name": [n for _, n in rows],
        }
    )
