"""A real browser for tests: Debian's Chromium driven by Playwright, and axe-core checks.

Without Chromium or Playwright a test that needs them skips, saying how to install them;
under ``CI=true`` it fails instead (``.ci/run`` installs Chromium, ``.[dev]`` Playwright).
Playwright drives the system Chromium (``executable_path``): its own browser downloads
(``playwright install``) are neither needed nor used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.servers import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_HINT = (
    "Chromium or Playwright is missing: `apt-get install chromium` (Debian) and "
    "`pip install -e '.[dev]'` (no `playwright install` needed)"
)
CHROMIUM_ENV = "LASTMILE_CHROMIUM"
"""Path of a Chromium executable to use instead of the one found on ``PATH``."""
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
LAUNCH_ARGS = ["--no-sandbox"]
"""Chromium's sandbox refuses to run as root (CI)."""

AXE_JS = Path(__file__).parent / "fixtures" / "axe" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
"""WCAG 2.2 AA as axe-core tags them; ``wcag22aa`` also runs ``target-size``, off by default."""


def chromium_path() -> str | None:
    """The Chromium executable: ``$LASTMILE_CHROMIUM`` if set, else the first on ``PATH``."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """A headless Chromium for the session (skips without one; fails under CI)."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        missing(CHROMIUM_HINT)
    assert executable is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=LAUNCH_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


def run_axe(page: Page) -> dict[str, list[dict[str, Any]]]:
    """Run axe-core's WCAG 2.2 AA rules on the page; return its violations and incomplete."""
    # evaluated through the DevTools protocol, not as a <script> tag: the page's Content
    # Security Policy (no inline scripts) stays on while axe checks it
    page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;undefined")
    results: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    return {"violations": results["violations"], "incomplete": results["incomplete"]}


def format_violations(violations: list[dict[str, Any]]) -> str:
    """One line per rule (id, impact, help), then each offending node's selector."""
    lines: list[str] = []
    for rule in violations:
        lines.append(f"{rule['id']} ({rule.get('impact') or 'n/a'}): {rule['help']}")
        for node in rule.get("nodes", []):
            target = " ".join(str(part) for part in node.get("target", []))
            lines.append(f"    {target}")
    return "\n".join(lines)
