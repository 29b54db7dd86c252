"""The contract declarations and the single definition of a late delivery."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from tools.data.schema import CONTRACT_TABLES, DELIVERIES, LATE_SQL, is_late


def test_ddl_follows_the_declarations() -> None:
    ddl = DELIVERIES.ddl()
    assert "delivery_id VARCHAR NOT NULL" in ddl
    assert "delivered_ts TIMESTAMP," in ddl  # nullable
    # ground truth is not a contract table: it lives in a file of its own (truth_file)
    assert set(CONTRACT_TABLES) == {"stores", "deliveries", "staffing", "conditions", "calendar"}
    for schema in CONTRACT_TABLES.values():
        assert set(schema.primary_key) <= set(schema.column_names)
        for col in schema.foreign_keys:
            assert col in schema.column_names


def test_sql_and_pandas_agree_on_what_late_means() -> None:
    end = datetime(2026, 1, 1, 12)
    frame = pd.DataFrame(
        {
            "status": ["delivered", "delivered", "delivered", "failed", "cancelled", "in_transit"],
            "delivered_ts": [
                datetime(2026, 1, 1, 11),
                end,
                datetime(2026, 1, 1, 12, 1),
                None,
                None,
                None,
            ],
            "promised_end": [end] * 6,
        }
    )
    frame["delivered_ts"] = pd.to_datetime(frame.delivered_ts)
    expected = [False, False, True, True, False, False]  # on time at the very end of the window
    assert is_late(frame.status, frame.delivered_ts, frame.promised_end).tolist() == expected
    con = duckdb.connect()
    con.register("d", frame)
    assert [r[0] for r in con.execute(f"SELECT {LATE_SQL} FROM d").fetchall()] == expected
