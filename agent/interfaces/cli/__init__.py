"""The ``lastmile`` command line: generate worlds, ingest data, inspect KPIs.

A thin surface: every command parses arguments, calls ``tools``, and prints. Errors about the
user's input exit with status 2 and a message that names the problem.

This module holds the typer app, its ``--verbose`` callback and the entry point; the commands
live in the modules beside it (data, runs, approvals, serve, toolcmds), the error handling in
:mod:`agent.interfaces.cli.errors`, shared options in :mod:`agent.interfaces.cli.common` and
the table printing in :mod:`agent.interfaces.cli.tables`. ``lastmile eval`` is registered by
the evals package through the ``lastmile.commands`` entry point group.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from typing import Annotated

import typer
from rich.logging import RichHandler

from agent.interfaces.cli import approvals, data, monitor, runs, serve, toolcmds
from agent.interfaces.cli.common import err
from agent.interfaces.cli.errors import _RootGroup, user_errors
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
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            metavar="duckdb|spark",
            help="Query engine: duckdb (the --db file) or spark (the --data lake). "
            "Default: $LASTMILE_BACKEND, else duckdb.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Parquet data lake for Spark (a folder from `lastmile export --parquet`, or "
            "an object-store URL); implies --backend spark. Default: $LASTMILE_DATA.",
        ),
    ] = None,
) -> None:
    """Detect, diagnose, forecast and prescribe for late deliveries."""
    # The entry point's choice of data becomes the settings every command reads.
    if data is not None:
        os.environ["LASTMILE_DATA"] = data
        backend = backend or "spark"
    if backend is not None:
        if backend not in ("duckdb", "spark"):
            raise typer.BadParameter(
                f"must be duckdb or spark, got {backend!r}", param_hint="--backend"
            )
        os.environ["LASTMILE_BACKEND"] = backend
    if data is not None or backend is not None:
        get_settings.cache_clear()
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
        for name in ("httpx", "httpx2", "openai", "vcr", "alembic", "py4j"):
            logging.getLogger(name).setLevel(logging.WARNING)


# Registration order is the order of `lastmile --help`: commands first, then the groups.
data.register(app)
runs.register(app)
approvals.register(app)
serve.register(app)
monitor.register(app)
toolcmds.register(app)
# commands other packages of the distribution add (``lastmile eval`` from evals/): agent/
# does not import them, they register themselves
for entry in entry_points(group="lastmile.commands"):
    entry.load()(app)


def main() -> None:
    """Entry point of the ``lastmile`` console script."""
    app()
