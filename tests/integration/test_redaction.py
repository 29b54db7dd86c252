"""With redaction on, no driver id, customer zone or note text leaves for the endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from agent.service import AgentService
from agent.settings import Settings, get_settings, is_local_endpoint
from tests.integration.openai_stub import OpenAIStub, StubBehaviour

SQL = (
    "SELECT store_id, driver_id, zone_id, driver_note, failure_reason, status FROM deliveries "
    "WHERE store_id = 'S003' AND (driver_note IS NOT NULL OR failure_reason IS NOT NULL) "
    "LIMIT 40"
)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIStub]:
    with OpenAIStub(StubBehaviour(sql=SQL)) as server:
        monkeypatch.setenv("LASTMILE_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("LASTMILE_LLM_API_KEY", "test-key")
        monkeypatch.setenv("LASTMILE_LLM_MODEL", "stub-model-1")
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()


def _private_values(db: Path) -> set[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(SQL).fetchall()
    finally:
        con.close()
    values = {str(v) for r in rows for v in r[1:4] if v}  # driver id, zone, note
    assert len(values) > 10, "the query must return private values for the test to mean much"
    return values


def _sent(stub: OpenAIStub, db: Path, tmp_path: Path, redact: bool) -> str:
    settings = Settings(llm_redact=redact, trace_retention_days=None)
    service = AgentService(settings, db=db, state_db=tmp_path / f"state-{redact}.sqlite")
    try:
        view = service.ask("why were deliveries late at store S003 on 2026-02-10?")
        assert view.plan is not None
    finally:
        service.close()
    bodies = json.dumps(stub.behaviour.requests)
    stub.behaviour.requests.clear()
    return bodies


def test_redaction_keeps_driver_ids_zones_and_notes_on_the_machine(
    stub: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    private = _private_values(small_world_db)
    leaked = {v for v in private if v in _sent(stub, small_world_db, tmp_path, redact=False)}
    assert leaked, "without redaction the query's rows reach the model (the test can fail)"
    sent = _sent(stub, small_world_db, tmp_path, redact=True)
    assert "[redacted]" in sent
    assert [v for v in private if v in sent] == []
    assert "S003" in sent  # store ids are safe and still sent


def test_redaction_is_on_by_default_only_for_endpoints_off_this_machine() -> None:
    assert Settings(llm_api_key="sk-x").redacts  # OpenAI's API
    assert Settings(llm_base_url="https://example.openai.azure.com/openai/v1/").redacts
    assert not Settings(llm_base_url="http://127.0.0.1:8080/v1").redacts
    assert Settings(llm_base_url="http://litellm:4000/v1").redacts  # may forward to a cloud
    assert not Settings(llm_base_url="http://10.0.0.5:8000/v1").redacts
    assert Settings(llm_base_url="http://127.0.0.1:8080/v1", llm_redact=True).redacts
    assert is_local_endpoint("http://localhost:11434/v1")


def test_an_error_quoting_a_note_is_redacted_too(
    stub: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    """A database error can quote the value it could not read: the error reaches the model
    (as fenced data) with its quoted values redacted."""
    stub.behaviour.sql = (
        "SELECT CAST(driver_note AS INTEGER) AS n FROM deliveries "
        "WHERE store_id = 'S003' AND driver_note IS NOT NULL LIMIT 5"
    )
    con = duckdb.connect(str(small_world_db), read_only=True)
    try:
        notes = [
            r[0]
            for r in con.execute(
                "SELECT driver_note FROM deliveries WHERE store_id = 'S003' "
                "AND driver_note IS NOT NULL LIMIT 5"
            ).fetchall()
        ]
    finally:
        con.close()
    sent = _sent(stub, small_world_db, tmp_path, redact=True)
    assert "Could not convert" in sent or "Conversion Error" in sent  # the error went
    assert [n for n in notes if n in sent] == []
