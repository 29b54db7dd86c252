"""Errors of the ``lastmile`` commands as one line each: exit 2 for bad input, 1 for a bug."""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.text import Text
from typer.core import TyperGroup
from typer.models import ArgumentInfo, OptionInfo

from agent.errors import (
    RunFailedError,
    StateStoreUnavailableError,
    path_problem,
    validation_problems,
)
from agent.interfaces.cli.common import _db, err
from agent.settings import Settings
from tools.data import DataValidationError
from tools.data.spark import SparkUnavailableError
from tools.data.store import DatabaseUnavailableError

F = TypeVar("F", bound=Callable[..., Any])


def _print_error(message: str) -> None:
    # Messages quote user data (file names, values): print them verbatim, no markup.
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)


class _RootGroup(TyperGroup):
    """The ``lastmile`` group: whatever escapes a command ends as one line, not a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's base class takes its private click Context
        """Run the sub-command; print usage errors and unexpected failures as one line."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # click's usage errors: bad option values, ...
            if type(exc).__name__ == "NoArgsIsHelpError" or exc.exit_code != 2:
                raise  # the help screen is printed by typer itself
            for line in _usage_problems(exc):
                _print_error(line)
            raise typer.Exit(2) from None
        except Exception as exc:  # a bug or an unforeseen failure; KeyboardInterrupt passes
            if ctx.params.get("verbose"):
                err.print(Text("".join(traceback.format_exception(exc))), soft_wrap=True)
            summary = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, always
            _print_error(f"{summary} (run with --verbose for the traceback)")
            raise typer.Exit(1) from None


def _usage_problems(exc: typer.TyperException) -> list[str]:
    """Phrase a command-line error (e.g. a value typer could not convert) as lines."""
    param = getattr(exc, "param", None)
    flags = getattr(param, "opts", None) or []
    if flags and isinstance(exc.__cause__, ValidationError):
        return validation_problems(exc.__cause__, root=flags[0])
    ctx = getattr(exc, "ctx", None)
    help_hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return [exc.format_message() + help_hint]


def _flags(fn: Callable[..., Any]) -> dict[str, str]:
    """How users write each parameter of a command: ``start_date`` -> ``--start-date``."""
    flags: dict[str, str] = {}
    for name, hint in get_type_hints(fn, include_extras=True).items():
        for info in getattr(hint, "__metadata__", ()):
            if isinstance(info, ArgumentInfo):
                flags[name] = name.upper()
            elif isinstance(info, OptionInfo):
                # typer takes the first positional argument of Option() as the flag
                given = (info.default, *(info.param_decls or ()))
                decls = [d for d in given if str(d).startswith("--")]
                flags[name] = str(decls[0]) if decls else "--" + name.replace("_", "-")
    return flags


_KNOBS = {"db": ("--db", "LASTMILE_DB"), "state_db": ("--state-db", "LASTMILE_STATE_DB")}


def _knob(name: str, kwargs: dict[str, Any]) -> str:
    """Name the option that sets a path, or the variable when the option was not given."""
    flag, env = _KNOBS[name]
    return flag if kwargs.get(name) is not None else f"{env} (or {flag})"


def _related(filename: str | bytes | None, path: Path) -> bool:
    """Tell whether an OS error about ``filename`` concerns ``path``.

    That is ``path`` itself, a folder above it, or a companion file such as ``path.wal``.
    """
    if filename is None:
        return False
    failed = Path(str(filename)).absolute()
    target = path.absolute()
    return failed in target.parents or str(failed).startswith(str(target))


def _problems(fn: Callable[..., Any], exc: Exception, kwargs: dict[str, Any]) -> list[str] | None:
    """Explain an error about the user's input or setup in lines; None for anything else."""
    if isinstance(exc, ValidationError):
        names = _flags(fn)
        if exc.title == Settings.__name__:  # settings come from LASTMILE_* variables
            names = {field: f"LASTMILE_{field.upper()}" for field in Settings.model_fields}
        return validation_problems(exc, names)
    if isinstance(exc, DatabaseUnavailableError):
        knob = _knob("db", kwargs)
        if exc.cause == "not_duckdb":
            made = "made by `lastmile generate` or `lastmile ingest`"
            return [f"{exc}; {knob} takes a database {made}"]
        if exc.cause == "unreachable":
            return [f"{exc}: choose a {'readable' if exc.read_only else 'writable'} {knob}"]
        return [str(exc)]
    if isinstance(exc, StateStoreUnavailableError):
        return [f"{exc}: choose a writable {_knob('state_db', kwargs)}"]
    if isinstance(exc, OSError) and "db" in kwargs and _related(exc.filename, _db(kwargs["db"])):
        db = _db(kwargs["db"])
        return [
            f"cannot write the database at {db} ({path_problem(db, exc)}): "
            f"choose a writable {_knob('db', kwargs)}"
        ]
    if isinstance(exc, SettingsError):
        return [settings_problem(exc)]
    if isinstance(exc, SparkUnavailableError):
        return [str(exc)]
    if isinstance(exc, DataValidationError | ValueError | FileNotFoundError):
        return [str(exc)]  # incl. RunInputError: already written for people
    return None


def settings_problem(exc: SettingsError) -> str:
    """Name the LASTMILE_ variable pydantic-settings could not parse, and what it takes."""
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None or found.group(1) not in Settings.model_fields:
        return str(exc)
    field = found.group(1)
    why = f" ({exc.__cause__})" if exc.__cause__ else ""
    takes = Settings.model_fields[field].description or ""
    return f"LASTMILE_{field.upper()} cannot be read{why}: {takes}"


def user_errors(fn: F) -> F:
    """Turn errors about the user's input or setup into messages and exit status 2.

    Anything else goes on to the root group, which prints it as one line with exit status 1.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RunFailedError as exc:
            _print_error(str(exc))
            raise typer.Exit(1) from None
        except Exception as exc:
            problems = _problems(fn, exc, kwargs)
            if problems is None:
                raise
            for line in problems:
                _print_error(line)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
