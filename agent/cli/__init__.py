"""The ``lastmile`` command line: generate worlds, ingest data, inspect KPIs.

A thin surface: every command parses arguments, calls ``tools``, and prints. Errors about the
user's input exit with status 2 and a message that names the problem.

This module holds the typer app, its ``--verbose`` callback and the entry point; the commands
live in :mod:`agent.cli.data`, :mod:`agent.cli.runs` and :mod:`agent.cli.evals`, the error
handling in :mod:`agent.cli.errors`, shared options in :mod:`agent.cli.common` and the table
printing in :mod:`agent.cli.tables`.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from agent.cli import approvals, data, evals, runs, serve
from agent.cli.common import err
from agent.cli.errors import _RootGroup, user_errors
from agent.settings import get_settings

__all__ = ["app", "main"]


app = typer.Typer(
    name="lastmile",
    help="Proactive recommendation agent for last-mile delivery operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_RootGroup,
)


@app.callback()
@user_errors
def main_callback(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Detect, diagnose, forecast and prescribe for late deliveries."""
    level = "DEBUG" if verbose else get_settings().log_level
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet.plot").disabled = True  # "plotly failed": no plots are drawn
    if not verbose:  # one line per HTTP request, or a whole recorded exchange, is noise here
        for name in ("httpx", "httpx2", "openai", "vcr", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)


# Registration order is the order of `lastmile --help`: commands first, then the groups.
data.register(app)
runs.register(app)
approvals.register(app)
serve.register(app)
evals.register(app)


def main() -> None:
    """Entry point of the ``lastmile`` console script."""
    app()
