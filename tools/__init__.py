"""Deterministic, typed last-mile analytics usable without any LLM.

Every tool is a function ``tool(ctx, args) -> result``: ``args`` is a pydantic model (what a
caller, person or LLM, may set), ``ctx`` (:class:`~tools.core.context.ToolContext`) carries the data
backend and the run's evidence store, and the result is a pydantic model with an
``evidence_id`` a plan can cite. Recoverable problems raise :class:`~tools.core.errors.ToolError`.

``tools`` never imports ``agent``: the agent reaches analytics only through this registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.core.context import ToolContext
from tools.core.errors import ToolError

if TYPE_CHECKING:
    from tools.registry import TOOLS, ToolSpec


def __getattr__(name: str) -> Any:
    # The registry imports every tool (PyOD, DoWhy, Prophet...): load it only when asked, so
    # `import tools.data` stays fast for the CLI.
    if name in ("TOOLS", "ToolSpec"):
        from tools import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'tools' has no attribute {name!r}")


__all__ = ["TOOLS", "ToolContext", "ToolError", "ToolSpec"]
