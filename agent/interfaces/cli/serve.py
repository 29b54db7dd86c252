"""``lastmile serve``: the web chat and its API on uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from agent.interfaces.cli.common import DbOption, _reading_db, err
from agent.interfaces.cli.errors import user_errors
from agent.interfaces.cli.runs import StateOption, TodayOption


@user_errors
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; off loopback, sign-in is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    db: DbOption = None,
    state_db: StateOption = None,
    today: TodayOption = None,
) -> None:
    """Serve the web chat at / and its API (/api, /docs), /healthz and /metrics."""
    import uvicorn

    from agent.async_service import AsyncAgentService
    from agent.interfaces.web.app import create_app
    from agent.interfaces.web.auth import auth_enabled, check_binding
    from agent.service import AgentService
    from agent.settings import get_settings

    settings = get_settings()
    # bolt logs a refused request's whole body at INFO: keep its warnings only
    logging.getLogger("slack_bolt").setLevel(max(logging.WARNING, logging.root.level))
    if today is not None:  # questions asked here count "yesterday" from this day
        settings = settings.model_copy(update={"today": today})
    check_binding(settings, host)
    service = AgentService(settings, db=_reading_db(db), state_db=state_db)
    # a run a crash interrupted is finished before anyone can act on it
    recovered = service.recover(stale_after_s=settings.recovery_quiet_s)
    if recovered:
        err.print(f"recovered {len(recovered)} interrupted run(s): {', '.join(recovered)}")
    app = create_app(settings, AsyncAgentService(service))
    where = f"http://{host}:{port}/"
    err.print(f"lastmile web chat on {where} (sign-in {'on' if auth_enabled(settings) else 'off'})")
    try:
        # the command line's logging stays (uvicorn's own config would re-enable the loggers
        # it silences, such as prophet's "plotly failed")
        uvicorn.run(app, host=host, port=port, log_level="warning", log_config=None)
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command()(serve)


__all__ = ["register", "serve"]
