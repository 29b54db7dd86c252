"""Errors the interfaces show to users (kept free of heavy imports)."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class RunFailedError(RuntimeError):
    """A run stopped on an internal error; its record (status failed) says which."""

    def __init__(self, run_id: str, cause: BaseException) -> None:
        super().__init__(
            f"run {run_id} failed: {type(cause).__name__}: {cause} "
            f"(`lastmile runs show {run_id}` has its trace; -v logs the traceback)"
        )
        self.run_id = run_id
        self.cause = cause


class StateStoreUnavailableError(ValueError):
    """The run store (a SQLite file) cannot be created, opened or written.

    Raised when the run store is opened, before any run starts, so nothing is half-written.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot write the run store at {path} ({reason})")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[StateStoreUnavailableError], tuple[str, str]]:
        return type(self), (self.path, self.reason)  # so that it survives pickling


def path_problem(path: str | Path, error: BaseException | None = None) -> str:
    """Say in a few words why ``path`` cannot be created or written.

    Looks at the file system after the failure, because some libraries (SQLite) report only
    "unable to open database file" without the operating system's reason.

    Args:
        path: the file or folder that could not be written.
        error: what was raised (an ``OSError`` carries the system's reason).

    Returns:
        e.g. ``"permission denied"`` or ``"out is a file, not a directory"``.
    """
    target = Path(path)
    # A regular file where a folder should be also stops root, so it is named first.
    blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return f"{blocker} is a file, not a directory"
    code = error.errno if isinstance(error, OSError) else None
    if code == errno.EEXIST and target.is_file():  # a folder was to be made there
        return f"{target} is a file, not a directory"
    if target.is_dir():
        return f"{target} is a directory"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.EROFS:
        return "read-only file system"
    if code is None:  # no errno: ask the file system whether we may write there
        nearest = (
            target
            if target.exists()
            else next((p for p in target.parents if p.exists()), Path("."))
        )
        if hasattr(os, "statvfs") and os.statvfs(nearest).f_flag & os.ST_RDONLY:
            return "read-only file system"
        if not os.access(nearest, os.W_OK):
            return "permission denied"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) if error is not None else "cannot be written"


# pydantic's bound errors, phrased the way a person states a rule.
_BOUNDS = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}


def _phrase(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if error["type"] in _BOUNDS:
        return _BOUNDS[error["type"]].format(**ctx)
    if error["type"] in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])  # our own validators' words, without pydantic's prefix
    msg = str(error["msg"])
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ")
    return msg[:1].lower() + msg[1:]


def validation_problems(
    exc: ValidationError, names: Mapping[str, str] | None = None, *, root: str | None = None
) -> list[str]:
    """Phrase a pydantic ``ValidationError`` as one line per problem, naming what users type.

    Args:
        exc: the error.
        names: how users write each field, e.g. ``{"stores": "--stores"}``; fields not in it
            keep their own name.
        root: the name of a value validated on its own (a ``TypeAdapter``: no field).

    Returns:
        e.g. ``["--stores must be at least 1 (got 0)"]``.
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if loc:
            loc[0] = (names or {}).get(loc[0], loc[0])
        elif root:
            loc = [root]
        # A model-wide rule has no field; its input is the whole model, too long to quote.
        got = f" (got {error['input']!r})" if loc and error["type"] != "missing" else ""
        lines.append(" ".join([".".join(loc), _phrase(error)]).strip() + got)
    return lines
