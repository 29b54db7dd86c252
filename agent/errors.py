"""Errors the interfaces show to users (kept free of heavy imports)."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydantic import ValidationError


class RunFailedError(RuntimeError):
    """A run stopped on an internal error; its record (status failed) says which.

    ``summary`` says what went wrong without the run id: the run record's ``error``.
    """

    def __init__(self, run_id: str, cause: BaseException) -> None:
        self.run_id = run_id
        self.cause = cause
        self.summary = self.describe(cause)
        super().__init__(f"run {run_id} failed: {self.summary} ({self.hint()})")

    def describe(self, cause: BaseException) -> str:
        """Say what went wrong (subclasses phrase their cause for people)."""
        return f"{type(cause).__name__}: {cause}"

    def hint(self) -> str:
        """Where to look next."""
        return f"`lastmile runs show {self.run_id}` has its trace; -v logs the traceback"


class DataHealthStop(Exception):
    """A run's data-health check found a severe problem.

    The message says what and how to fix it; the service turns it into a
    :class:`DataUnhealthyError`.
    """


DATA_STOP_PREFIX = "the data cannot be trusted"
"""How a run stopped by its data-health check begins its stored error (agent health counts
such runs apart from the agent's own failures)."""


class DataUnhealthyError(RunFailedError):
    """A run stopped because its data cannot be trusted: no plan rather than a wrong one.

    A column gone, a day with no deliveries, a feed stale beyond its configured age.
    """

    def describe(self, cause: BaseException) -> str:
        """Give the check's own words: what is wrong and how to fix it."""
        return f"{DATA_STOP_PREFIX}: {cause}"

    def hint(self) -> str:
        """Where to look next."""
        return "`lastmile monitor` reports the data's health day by day"


class ModelEndpointError(RunFailedError):
    """The model endpoint failed a request after the client's retries (the run failed).

    The message names the endpoint's problem, the tries made and how to fix it.
    """

    def __init__(
        self,
        run_id: str,
        cause: BaseException,
        *,
        base_url: str | None,
        tries: int,
        timeout_s: float,
    ) -> None:
        self.endpoint = base_url or "OpenAI's API (LASTMILE_LLM_BASE_URL is not set)"
        self.tries = tries
        self.timeout_s = timeout_s
        super().__init__(run_id, cause)

    def _tries(self) -> str:
        tries = f"{self.tries} {'try' if self.tries == 1 else 'tries'}"
        return f"{tries} (LASTMILE_LLM_MAX_RETRIES={self.tries - 1})"

    def hint(self) -> str:
        """Where to look next (no traceback: the message says it all)."""
        return f"`lastmile runs show {self.run_id}` has its trace"


class ModelUnavailableError(ModelEndpointError):
    """The endpoint answered with errors (5xx, 429) or could not be reached, on every try."""

    def describe(self, cause: BaseException) -> str:
        """Name the endpoint's problem, the tries and the fix."""
        status = getattr(cause, "status_code", None)
        where = f"the model endpoint {self.endpoint}"
        if status == 429:
            return (
                f"{where} is unavailable: rate limited (HTTP 429: {_said(cause)}) on all "
                f"{self._tries()}; wait and ask again, check the quota of the key in "
                "LASTMILE_LLM_API_KEY, or raise LASTMILE_LLM_MAX_RETRIES"
            )
        if status is not None:
            return (
                f"{where} is unavailable: HTTP {status} ({_said(cause)}) on all "
                f"{self._tries()}; check the model server's health and logs, and that "
                "LASTMILE_LLM_BASE_URL names it"
            )
        return (
            f"{where} is unavailable: no response ({_transport(cause)}) on all "
            f"{self._tries()}; check that the model server is running and that "
            "LASTMILE_LLM_BASE_URL names it"
        )


class ModelTimeoutError(ModelEndpointError):
    """The endpoint did not answer within the configured timeout, on every try."""

    def describe(self, cause: BaseException) -> str:
        """Name the timeout, the tries and the fix."""
        return (
            f"the model endpoint {self.endpoint} timed out: no answer within "
            f"LASTMILE_LLM_TIMEOUT_S={self.timeout_s:g} s on any of {self._tries()}; check "
            "that the model server at LASTMILE_LLM_BASE_URL is up and not overloaded, or "
            "raise LASTMILE_LLM_TIMEOUT_S for a slow model"
        )


class ModelAccessError(ModelEndpointError):
    """The endpoint refused the key (HTTP 401 or 403): a setup mistake, never retried."""

    def describe(self, cause: BaseException) -> str:
        """Name the refusal and the settings to check."""
        status = getattr(cause, "status_code", "401")
        return (
            f"the model endpoint {self.endpoint} refused the API key (HTTP {status}: "
            f"{_said(cause)}); check LASTMILE_LLM_API_KEY (and, for Azure OpenAI, that the key "
            "belongs to the resource in LASTMILE_LLM_BASE_URL)"
        )


class ModelNotFoundError(ModelEndpointError):
    """The endpoint does not know the model or the path (HTTP 404): a setup mistake."""

    def describe(self, cause: BaseException) -> str:
        """Name what was not found and the settings to check."""
        return (
            f"the model endpoint {self.endpoint} has no such model or path (HTTP 404: "
            f"{_said(cause)}); check LASTMILE_LLM_MODEL (Azure OpenAI: the deployment name) and "
            "that LASTMILE_LLM_BASE_URL ends in /v1"
        )


def _said(cause: BaseException, limit: int = 200) -> str:
    """Return the error message an endpoint sent (its JSON ``error.message``), shortened."""
    body = getattr(cause, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    said = body.get("message") if isinstance(body, Mapping) else None
    text = " ".join(str(said or getattr(cause, "message", None) or cause).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _transport(cause: BaseException) -> str:
    """Return the network's reason under a client's connection error (a non-client cause)."""
    reason: BaseException | None = cause
    while reason is not None and type(reason).__module__.split(".")[0] in (
        "openai",
        "langchain_openai",
    ):
        reason = reason.__cause__
    return _said(reason or cause)


class ModelEndpoint(Protocol):
    """The endpoint settings a failure message names (``agent.context.ModelConfig``)."""

    @property
    def base_url(self) -> str | None:
        """The endpoint's base URL (None: OpenAI's API)."""

    @property
    def max_retries(self) -> int:
        """The client's retries (``LASTMILE_LLM_MAX_RETRIES``)."""

    @property
    def timeout_s(self) -> float:
        """The client's timeout per try (``LASTMILE_LLM_TIMEOUT_S``)."""


def run_failure(run_id: str, cause: BaseException, model: ModelEndpoint) -> RunFailedError:
    """Return the error a failed run raises: typed when the model endpoint failed it.

    After the client's retries, a timeout is a :class:`ModelTimeoutError`; a connection
    error, an HTTP 5xx or a rate limit (429) is a :class:`ModelUnavailableError`; a refused
    key (401, 403) a :class:`ModelAccessError`; an unknown model or path (404) a
    :class:`ModelNotFoundError`; anything else a :class:`RunFailedError` with the cause's own
    words.

    Args:
        run_id: the failed run.
        cause: what the graph raised.
        model: the run's model endpoint (its URL, retries and timeout).
    """
    import openai  # here, so that importing this module stays light

    if isinstance(cause, DataHealthStop):
        return DataUnhealthyError(run_id, cause)
    kind: type[ModelEndpointError]
    if isinstance(cause, openai.AuthenticationError | openai.PermissionDeniedError):
        kind = ModelAccessError
    elif isinstance(cause, openai.NotFoundError):
        kind = ModelNotFoundError
    elif isinstance(cause, openai.APITimeoutError):  # before its base, APIConnectionError
        kind = ModelTimeoutError
    elif isinstance(cause, openai.APIConnectionError | openai.RateLimitError) or (
        isinstance(cause, openai.APIStatusError) and cause.status_code >= 500
    ):
        kind = ModelUnavailableError
    else:
        return RunFailedError(run_id, cause)
    return kind(
        run_id,
        cause,
        base_url=model.base_url,
        tries=model.max_retries + 1,
        timeout_s=model.timeout_s,
    )


class RunInputError(ValueError):
    """The request names something the data or the run does not have (user-facing)."""


class DataUnusableError(RunInputError):
    """The database lacks a table or column every analysis needs: no run can start."""


class NotFoundError(RunInputError):
    """No run or thread has that id."""


class ThreadBusyError(RunInputError):
    """A conversation thread answers one question at a time."""


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


class PostgresUnavailableError(ValueError):
    """The PostgreSQL state store (``LASTMILE_POSTGRES_URL``) cannot be reached or set up."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the PostgreSQL state store at {where} ({reason}); check that the "
            "server runs and LASTMILE_POSTGRES_URL is right, or unset it to use the SQLite "
            "file",
        )
        self.path, self.reason = where, reason

    def __reduce__(self) -> tuple[type[PostgresUnavailableError], tuple[str, str]]:
        return type(self), (self.path, self.reason)


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


def is_context_length(exc: Exception) -> bool:
    """Whether the endpoint refused the request only because the prompt is too long."""
    code = getattr(exc, "code", None)
    return code == "context_length_exceeded" or bool(_CONTEXT_LENGTH.search(str(exc)))


_CONTEXT_LENGTH = re.compile(
    r"context length|context window|maximum context|too many tokens|prompt is too long|"
    r"exceeds? the (?:model's )?(?:maximum|max)",
    re.I,
)
