"""Ids from the data are free text: one carrying markup still gets a valid plan."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from agent.service import AgentService
from tests.runs import MARKUP_STORE, rename_store


def test_a_store_id_with_markup_gets_a_verified_plan(small_world_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "world.duckdb"
    shutil.copy(small_world_db, db)
    rename_store(db, "S012", MARKUP_STORE)
    service = AgentService(db=db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        # the template quotes the id without its markup ("S012alert(1)"): its digit is a
        # name, not a number a caveat may not carry
        view = service.ask("why were deliveries late on 2026-02-22?", today=date(2026, 2, 23))
        assert view.status == "waiting_approval", view.error
        assert view.plan is not None and view.plan.actions[0].target == MARKUP_STORE
        assert "<script>" not in view.plan.summary
    finally:
        service.close()
