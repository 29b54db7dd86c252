"""Errors the interfaces show to users (kept free of heavy imports)."""

from __future__ import annotations


class RunFailedError(RuntimeError):
    """A run stopped on an internal error; its record (status failed) says which."""

    def __init__(self, run_id: str, cause: BaseException) -> None:
        super().__init__(
            f"run {run_id} failed: {type(cause).__name__}: {cause} "
            f"(`lastmile runs show {run_id}` has its trace; -v logs the traceback)"
        )
        self.run_id = run_id
        self.cause = cause
