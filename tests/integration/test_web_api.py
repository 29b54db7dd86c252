"""The web API against a real ``lastmile serve`` process: streaming, decisions, auth, metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import WebhookSink, lastmile_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CSRF = {"X-Lastmile-CSRF": "1"}
QUESTION = "why were deliveries late at S012 on 2026-02-22 and what should we do?"


@pytest.fixture(scope="module")
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(
    small_world_db: Path, tmp_path_factory: pytest.TempPathFactory, sink: WebhookSink
) -> Iterator[str]:
    state = tmp_path_factory.mktemp("web") / "state.sqlite"
    env = {"LASTMILE_DISPATCH_URL": sink.url, "LASTMILE_TODAY": "2026-02-23"}
    with lastmile_server(small_world_db, state, env=env) as url:
        yield url


def ask(url: str, thread_id: str, question: str, **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    """POST a question and read its Server-Sent Events to the end."""
    events = []
    with httpx.stream(
        "POST",
        f"{url}/api/threads/{thread_id}/runs",
        json={"question": question},
        headers=CSRF,
        timeout=300,
        **kw,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((str(name), json.loads(line.removeprefix("data: "))))
    return events


def test_a_question_streams_its_steps_then_the_plan_and_decisions_are_recorded(
    server: str, sink: WebhookSink
) -> None:
    thread = httpx.post(f"{server}/api/threads", json={"title": "S012"}, headers=CSRF).json()
    events = ask(server, thread["thread_id"], QUESTION)
    kinds = [k for k, _ in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("step") >= 2 and "tool_finished" in kinds
    page = events[-1][1]["page"]
    assert page["status"] == "waiting_approval" and len(page["actions"]) == 2
    assert page["charts"] and page["charts"][0]["kpi"]["points"]
    run_id = page["run_id"]

    watched: list[str] = []
    watching = threading.Event()

    def watch() -> None:
        with httpx.stream("GET", f"{server}/api/runs/{run_id}/events", timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith(": watching"):
                    watching.set()
                if line.startswith("event: "):
                    watched.append(line.removeprefix("event: "))

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert watching.wait(30)

    first = httpx.post(
        f"{server}/api/runs/{run_id}/decisions",
        json={"index": 0, "decision": "approve"},
        headers=CSRF,
    )
    assert first.status_code == 200 and first.json()["status"] == "waiting_approval"
    again = httpx.post(
        f"{server}/api/runs/{run_id}/decisions",
        json={"index": 0, "decision": "reject"},
        headers=CSRF,
    )
    assert again.status_code == 409
    assert "already decided (approve) by local at" in again.json()["error"]
    done = httpx.post(
        f"{server}/api/runs/{run_id}/decisions",
        json={"index": 1, "decision": "reject", "note": '=HYPERLINK("http://x")'},
        headers=CSRF,
    ).json()
    assert done["status"] == "done"
    assert [a["decision"]["decision"] for a in done["actions"]] == ["approve", "reject"]
    assert done["actions"][0]["dispatched"]["delivery_status"] == "delivered"
    late = httpx.post(
        f"{server}/api/runs/{run_id}/decisions",
        json={"index": 1, "decision": "approve"},
        headers=CSRF,
    )
    assert late.status_code == 409 and "not waiting for approval (status: done)" in late.text
    assert len(sink.acknowledged(f"lastmile:{run_id}:")) == 1
    watcher.join(timeout=60)
    assert watched == [
        "decision_recorded",
        "decision_recorded",
        "action_dispatched",
        "run_finished",
    ]

    reloaded = httpx.get(f"{server}/api/threads/{thread['thread_id']}").json()
    assert [r["run_id"] for r in reloaded["runs"]] == [run_id]
    log = httpx.get(f"{server}/api/decisions", params={"format": "csv", "run_id": run_id})
    assert log.text.splitlines()[0].startswith("run_id,idx,action_id")
    assert len(log.text.splitlines()) == 3
    assert "'=HYPERLINK" in log.text  # a note is never a spreadsheet formula


def test_a_triage_streams_and_ends_waiting_for_approval(server: str) -> None:
    events = []
    body = {"day": "2026-02-10", "scope_level": "store", "scope_ids": ["S003"]}
    with httpx.stream(
        "POST", f"{server}/api/triage", json=body, headers=CSRF, timeout=300
    ) as response:
        assert response.status_code == 200
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert events.index("plan_ready") < events.index("approval_requested")
    unknown = httpx.post(f"{server}/api/triage", json={**body, "scope_ids": ["S999"]}, headers=CSRF)
    assert unknown.status_code == 422 and "S999" in unknown.json()["error"]


def test_state_changes_need_the_csrf_header_and_errors_carry_no_trace(server: str) -> None:
    refused = httpx.post(f"{server}/api/threads", json={"title": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    cross = httpx.post(
        f"{server}/api/threads",
        json={"title": "x"},
        headers={**CSRF, "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    rebound = httpx.get(f"{server}/api/threads", headers={"Host": "evil.example"})
    assert rebound.status_code == 400  # DNS rebinding: no sign-in, so loopback names only
    missing = httpx.get(f"{server}/api/runs/nope")
    assert missing.status_code == 404 and "Traceback" not in missing.text
    bad = httpx.post(f"{server}/api/runs/nope/decisions", json={"index": -1}, headers=CSRF)
    assert bad.status_code == 422 and "Traceback" not in bad.text
    assert "index" in bad.json()["error"]  # {"error": ...} like every other error


def test_openapi_lists_the_routes_and_metrics_expose_the_gauges(server: str) -> None:
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    for route in (
        "/api/threads",
        "/api/threads/{thread_id}",
        "/api/threads/{thread_id}/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/decisions",
        "/api/decisions",
        "/healthz",
        "/metrics",
    ):
        assert route in paths, route
    page = httpx.get(f"{server}/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    text = httpx.get(f"{server}/metrics").text
    for name in (
        "lastmile_pending_approvals",
        "lastmile_outbox_pending",
        "lastmile_runs_total",
        "lastmile_run_seconds",
        "lastmile_tool_errors_total",
    ):
        assert name in text, name


def test_off_loopback_sign_in_is_required(small_world_db: Path, tmp_path: Path) -> None:
    env = {
        "LASTMILE_WEB_USERS": json.dumps({"ana": "pw-ana-secret"}),
        "LASTMILE_METRICS_TOKEN": "m3trics",
    }
    with lastmile_server(small_world_db, tmp_path / "s.sqlite", host="0.0.0.0", env=env) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        denied = httpx.get(f"{url}/api/threads")
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(f"{url}/api/threads", auth=("ana", "wrong")).status_code == 401
        assert httpx.get(f"{url}/api/me", auth=("ana", "pw-ana-secret")).json()["user"] == "ana"
        assert httpx.get(f"{url}/metrics").status_code == 403
        ok = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer m3trics"})
        assert ok.status_code == 200
        assert "pw-ana-secret" not in denied.text and "m3trics" not in denied.text


def test_serving_off_loopback_without_users_is_refused(
    small_world_db: Path, tmp_path: Path
) -> None:
    exe = Path(sys.executable).parent / "lastmile"
    done = subprocess.run(
        [
            str(exe),
            "serve",
            "--host",
            "0.0.0.0",
            "--db",
            str(small_world_db),
            "--state-db",
            str(tmp_path / "s.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_WEB")},
    )
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in done.stderr
    assert "Traceback" not in done.stderr
