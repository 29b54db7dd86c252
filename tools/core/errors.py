"""Errors a tool raises when the caller (a person or the LLM) can fix the request."""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import ToolException

ToolErrorKind = Literal["invalid_request", "not_enough_data", "data_unavailable", "failed"]


class ToolError(ToolException):
    """A recoverable problem with a tool call (unknown store, empty window, short history).

    The message says what was wrong and what would work; the agent sends it back to the model
    as a tool message instead of failing the run.

    Attributes:
        kind: ``invalid_request`` (an unknown id, a parameter out of range: fix the call),
            ``not_enough_data`` (too little history or volume: ask about a later day or a
            coarser scope), ``data_unavailable`` (the database cannot be read right now) or
            ``failed`` (the analysis could not complete on this data).
    """

    def __init__(self, message: str, kind: ToolErrorKind = "invalid_request") -> None:
        super().__init__(message)
        self.kind: ToolErrorKind = kind


class InsufficientDataError(ValueError):
    """The data holds too little (history, volume, complete rows) for an analysis.

    Raised by the pure analytics; the registry reports it as a ``not_enough_data`` tool error.
    """
