"""The package layering: tools/ never imports agent/, agent/ never imports evals/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> dict[str, set[str]]:
    """Return each module file of ``package`` with the top-level packages it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("package", "forbidden"), [("tools", "agent"), ("agent", "evals")])
def test_a_lower_layer_never_imports_a_higher_one(package: str, forbidden: str) -> None:
    offenders = [f for f, names in _imports(package).items() if forbidden in names]
    assert offenders == [], f"{package}/ imports {forbidden}/ in {offenders}"
