"""The chat page in a real headless Chromium against ``lastmile serve``: stream, plan and
charts, per-action decisions (one by keyboard only), reload, escaping, and axe-core's
WCAG 2.2 AA rules on every page state."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import format_violations, run_axe
from tests.runs import MARKUP_STORE, rename_store
from tests.servers import lastmile_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
QUESTION = "why were deliveries late on 2026-02-22?"
SCREENSHOT = Path(os.environ.get("LASTMILE_SCREENSHOT_DIR", "out/browser")) / "chat.png"

WATCH_PLAN = """() => {
  window.__maxSteps = 0; window.__stepsAtPlan = null;
  new MutationObserver(() => {
    const steps = document.querySelectorAll('#steps .step').length;
    window.__maxSteps = Math.max(window.__maxSteps, steps);
    if (window.__stepsAtPlan === null && document.querySelector('.run .summary')) {
      window.__stepsAtPlan = window.__maxSteps;
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def web(small_world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("browser")
    db = folder / "world.duckdb"
    shutil.copy(small_world_db, db)
    rename_store(db, "S012", MARKUP_STORE)  # a store id carrying <script>
    env = {"LASTMILE_TODAY": "2026-02-23", "LASTMILE_DISPATCH_URL": str(folder / "sink.jsonl")}
    with lastmile_server(db, folder / "state.sqlite", env=env) as url:
        yield url


def _axe_clean(page: Any, state: str, incomplete: dict[str, list[str]]) -> None:
    found = run_axe(page)
    incomplete[state] = sorted({r["id"] for r in found["incomplete"]})
    assert not found["violations"], f"{state}:\n" + format_violations(found["violations"])


def _tab_to(page: Any, selector: str, limit: int = 300) -> None:
    """Press Tab until ``selector`` has the focus (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_manager_asks_sees_the_plan_and_decides_each_action(
    browser: Any, web: str, figure: Callable[[str, str], None]
) -> None:
    incomplete: dict[str, list[str]] = {}
    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    blocked: list[str] = []  # the page itself runs under its Content Security Policy
    page.on("console", lambda m: "Content Security Policy" in m.text and blocked.append(m.text))
    page.goto(web)
    page.wait_for_selector("#question")
    _axe_clean(page, "empty", incomplete)

    page.evaluate(WATCH_PLAN)
    page.fill("#question", QUESTION)
    page.click("#send")
    page.wait_for_function("() => document.querySelectorAll('#steps .step').length >= 2")
    _axe_clean(page, "streaming", incomplete)
    page.wait_for_selector(".run .summary", timeout=240_000)
    assert page.evaluate("() => window.__stepsAtPlan") >= 2  # steps streamed before the plan

    run = page.locator(".run").last
    run_id = run.get_attribute("data-run-id")
    page.wait_for_selector(".run .chart svg")
    assert run.locator(".chart").count() >= 2
    assert run.locator(".chart-data table").count() >= 2  # each chart's numbers as a table
    _axe_clean(page, "plan with charts", incomplete)

    # the store id is shown as text, never run
    assert MARKUP_STORE in page.inner_text("main")
    assert dialogs == []
    assert page.evaluate(
        "() => [...document.scripts].every(s => !s.textContent.includes('alert(1)'))"
    )

    # an edit out of range: the server's message in the error region
    second = run.locator('.action[data-index="1"]')
    second.locator(".edit").click()
    page.wait_for_selector('.action[data-index="1"] .edit-value')
    _axe_clean(page, "edit", incomplete)
    second.locator(".edit-value").fill("999")
    second.locator(".send-edit").click()
    page.wait_for_function("() => document.querySelector('#error').textContent.includes('within')")
    _axe_clean(page, "error", incomplete)
    page.keyboard.press("Escape")

    # approve the first action by keyboard only
    page.locator("#question").focus()
    _tab_to(page, '.action[data-index="0"] .approve')
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.action[data-index=\"0\"] .decision-status')"
        "?.textContent.toLowerCase().includes('approved')"
    )
    page.locator('.action[data-index="1"] .reject').click()
    page.wait_for_function(
        "() => document.querySelector('.action[data-index=\"1\"] .decision-status')"
        "?.textContent.toLowerCase().includes('rejected')"
    )

    stored = httpx.get(f"{web}/api/runs/{run_id}").json()
    assert stored["status"] == "done"
    assert [(a["decision"]["decision"], a["decision"]["by"]) for a in stored["actions"]] == [
        ("approve", "local"),
        ("reject", "local"),
    ]

    page.reload()
    page.wait_for_selector(f'.run[data-run-id="{run_id}"] .summary')
    assert "approved" in page.inner_text(".action[data-index='0'] .decision-status").lower()

    assert blocked == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    figure(
        "axe incomplete results, to review by hand",
        "; ".join(f"{state}: {', '.join(ids) or 'none'}" for state, ids in incomplete.items()),
    )
    page.close()
