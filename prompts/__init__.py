"""Versioned prompt templates: ``prompts/<name>/v<N>.md``, loaded by :func:`load_prompt`.

Published versions are immutable: change a prompt by adding ``v<N+1>.md``. The id
(``name@vN``) and the SHA-256 of the text are recorded in every run's trace.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pydantic import BaseModel

PROMPTS_DIR = Path(__file__).parent
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^v[1-9][0-9]*$")


class Prompt(BaseModel):
    """A loaded prompt template."""

    id: str
    sha256: str
    template: str

    def format(self, **values: object) -> str:
        """Fill the template's ``{placeholders}``."""
        return self.template.format(**values)


def available_versions(name: str, root: Path | None = None) -> list[str]:
    """Versions of prompt ``name``, oldest first (``["v1", "v2"]``)."""
    folder = (root or PROMPTS_DIR) / name
    versions = [p.stem for p in folder.glob("v*.md") if _VERSION.match(p.stem)]
    return sorted(versions, key=lambda v: int(v[1:]))


def load_prompt(name: str, version: str | None = None, root: Path | None = None) -> Prompt:
    """Load ``prompts/<name>/<version>.md`` (the latest version when ``version`` is None).

    Raises:
        ValueError: for a malformed name or version, or one that does not exist.
    """
    if not _NAME.match(name):
        raise ValueError(f"prompt name must be lower_snake_case, got {name!r}")
    root = root or PROMPTS_DIR
    versions = available_versions(name, root)
    if not versions:
        raise ValueError(f"no prompt called {name!r} under {root}")
    version = version or versions[-1]
    if version not in versions:
        raise ValueError(f"prompt {name!r} has no version {version!r} (has: {', '.join(versions)})")
    text = (root / name / f"{version}.md").read_text(encoding="utf-8")
    return Prompt(
        id=f"{name}@{version}",
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        template=text,
    )
