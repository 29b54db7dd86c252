"""The browser-test tooling itself: Debian's Chromium launches and axe-core finds what it should."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser import format_violations, run_axe

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.integration

ACCESSIBLE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Chat</title></head>
<body>
  <main>
    <h1>Ask the agent</h1>
    <img src="data:," alt="Company logo">
    <form>
      <label for="q">Question</label>
      <input id="q" name="q" type="text">
      <button type="submit">Send</button>
    </form>
  </main>
</body>
</html>"""

BAD = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Chat</title></head>
<body>
  <main>
    <h1>Ask the agent</h1>
    <img src="data:,">
    <input type="text">
  </main>
</body>
</html>"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def test_accessible_page_has_no_violations(page: Page) -> None:
    page.set_content(ACCESSIBLE)
    results = run_axe(page)
    assert results["violations"] == [], format_violations(results["violations"])
    assert isinstance(results["incomplete"], list)


def test_bad_page_has_violations(page: Page) -> None:
    page.set_content(BAD)
    results = run_axe(page)
    found = {rule["id"] for rule in results["violations"]}
    assert {"image-alt", "label"} <= found, format_violations(results["violations"])
    report = format_violations(results["violations"])
    assert "image-alt (critical)" in report and "img" in report
