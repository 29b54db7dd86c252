"""Errors a tool raises when the caller (a person or the LLM) can fix the request."""

from __future__ import annotations

from langchain_core.tools import ToolException


class ToolError(ToolException):
    """A recoverable problem with a tool call (unknown store, empty window, short history).

    The message says what was wrong and what would work; the agent sends it back to the model
    as a tool message instead of failing the run.
    """
