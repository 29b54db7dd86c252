from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from prompts import available_versions, load_prompt


def test_latest_and_pinned_versions_with_hash(tmp_path: Path) -> None:
    (tmp_path / "compose_plan").mkdir()
    (tmp_path / "compose_plan" / "v1.md").write_text("old {x}")
    (tmp_path / "compose_plan" / "v2.md").write_text("new <metrics>{x}</metrics>")
    (tmp_path / "compose_plan" / "v10.md").write_text("newest {x}")
    assert available_versions("compose_plan", tmp_path) == ["v1", "v2", "v10"]
    latest = load_prompt("compose_plan", root=tmp_path)
    assert latest.id == "compose_plan@v10"
    pinned = load_prompt("compose_plan", "v2", root=tmp_path)
    assert pinned.sha256 == hashlib.sha256(b"new <metrics>{x}</metrics>").hexdigest()
    assert pinned.format(x=3) == "new <metrics>3</metrics>"


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("Bad-Name", None, "lower_snake_case"),
        ("missing", None, "no prompt called"),
        ("p", "v9", "has no version 'v9'"),
    ],
)
def test_unknown_prompts_are_clear_errors(
    tmp_path: Path, name: str, version: str | None, message: str
) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "v1.md").write_text("x")
    with pytest.raises(ValueError, match=message):
        load_prompt(name, version, root=tmp_path)
