"""The FastAPI app: the chat page at ``/``, its JSON + SSE API, health and metrics.

Routes are thin: they authenticate, validate the body (pydantic), call
:class:`agent.async_service.AsyncAgentService` and serialise what it returns. Errors leave as
``{"error": message}``: the service's user-facing messages with a status that says what
kind of problem it is, and a bare "internal error" (details in the server log) for bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from importlib.resources import files
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.async_service import AsyncAgentService
from agent.decisions import AlreadyDecided, ApprovalExpired, NotAllowed, NotWaiting
from agent.errors import DataUnusableError, NotFoundError, RunInputError, ThreadBusyError
from agent.interfaces.scheduled import start_schedule
from agent.interfaces.slack.bot import mount as mount_slack
from agent.interfaces.slack.bot import over_http as slack_over_http
from agent.interfaces.slack.bot import socket_mode
from agent.interfaces.web.auth import (
    LoopbackHostsOnly,
    auth_enabled,
    check_csrf,
    may_read_metrics,
    user_of,
)
from agent.interfaces.web.incidents import incidents_router
from agent.interfaces.web.metrics import Metrics
from agent.presenter import RunPage
from agent.settings import Settings
from agent.storage.approvals import DecisionRecord, decisions_csv
from agent.storage.runs import ThreadRecord
from tools import TOOLS

logger = logging.getLogger(__name__)
STATIC = files("agent.interfaces.web") / "static"


class NewThread(BaseModel):
    """A conversation to start."""

    title: str = Field(default="New conversation", max_length=200)


class Question(BaseModel):
    """A manager's question in a thread."""

    question: str = Field(min_length=1, max_length=4000)


class DecisionBody(BaseModel):
    """One decision on one action, or ``rest``: the same decision for every undecided one."""

    index: int | None = Field(default=None, ge=0)
    decision: Literal["approve", "reject", "edit"] | None = None
    parameters: dict[str, float] | None = None
    note: str | None = Field(default=None, max_length=2000)
    rest: Literal["approve", "reject"] | None = None


class TriageRequest(BaseModel):
    """A morning triage: a day (default: the data's last) and a scope."""

    day: date | None = None
    scope_level: Literal["all", "region", "store"] = "all"
    scope_ids: list[str] = Field(default_factory=list, max_length=500)


SSE_RESPONSE: dict[str, Any] = {
    "description": "Server-Sent Events: run_started, step, tool_started, tool_finished, token, "
    "plan_ready, approval_requested, run_failed, run_finished (always last, with the page).",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


class ThreadPage(BaseModel):
    """A thread and its runs, oldest first."""

    thread: ThreadRecord
    runs: list[RunPage]


class Me(BaseModel):
    """The signed-in user."""

    user: str
    auth: bool


PAGE_HEADERS = [
    # the page loads its own script, style and data only, and is never framed
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: the security headers on every response but the API docs' pages.

    Pure ASGI (not ``BaseHTTPMiddleware``), so Server-Sent-Event streams pass untouched.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http" or scope["path"] in ("/docs", "/redoc"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + PAGE_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def current_user(request: Request) -> str:
    """Return the calling user (the dependency every API route takes)."""
    return user_of(request, request.app.state.settings)


User = Annotated[str, Depends(current_user)]


def _status(exc: RunInputError) -> int:
    for kind, code in (
        (NotFoundError, 404),
        (DataUnusableError, 503),
        (AlreadyDecided, 409),
        (ThreadBusyError, 409),
        (NotAllowed, 403),
        (ApprovalExpired, 410),
        (NotWaiting, 409),
    ):
        if isinstance(exc, kind):
            return code
    return 422


def _sse(event: Any) -> str:
    return f"event: {event.type}\ndata: {event.model_dump_json()}\n\n"


def create_app(settings: Settings, service: AsyncAgentService) -> FastAPI:
    """Build the app around one service (the caller owns its lifetime)."""
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        socket = await socket_mode(settings, service)
        if socket is not None:
            app.state.slack_bot = socket[1]

        async def deliver_forever() -> None:
            while True:
                try:
                    # first pass at start: answers a crash kept from Slack are posted now
                    await service.recover_stale()
                    if app.state.slack_bot is not None:
                        await app.state.slack_bot.catch_up()
                    await service.deliver()
                except Exception:  # the loop must outlive one bad pass
                    logger.exception("delivery or recovery pass failed")
                await asyncio.sleep(settings.delivery_interval_s)

        tasks = [asyncio.create_task(deliver_forever())]
        schedule = start_schedule(service, settings)
        tasks += [schedule] if schedule is not None else []
        yield
        if socket is not None:
            await socket[0].close_async()
        for task in tasks:
            task.cancel()

    app = FastAPI(
        title="lastmile-agent",
        summary="Chat, runs, decisions and dispatch for last-mile delivery managers.",
        version="1",
        lifespan=lifespan,
    )

    app.state.settings = settings
    app.add_middleware(SecurityHeaders)
    if not auth_enabled(settings):
        # without sign-in only this machine's own names are answered: a page elsewhere that
        # re-points its DNS name at 127.0.0.1 (DNS rebinding) gets a 400, not the API
        app.add_middleware(LoopbackHostsOnly)
    guarded = [Depends(check_csrf)]

    @app.exception_handler(RunInputError)
    async def _input_error(_request: Request, exc: RunInputError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=_status(exc))

    @app.exception_handler(StarletteHTTPException)  # FastAPI's too, and unmatched routes
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:8]
        logger.error("internal error %s", ref, exc_info=exc)
        return JSONResponse(
            {"error": f"internal error (reference {ref}); the server log has the details"},
            status_code=500,
        )

    app.state.slack_bot = mount_slack(app, settings, service) if slack_over_http(settings) else None

    app.include_router(incidents_router(service))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (no authentication)."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics_text(request: Request) -> Response:
        """Prometheus metrics (its own token, or loopback only)."""
        if not may_read_metrics(request, settings):
            raise HTTPException(status_code=403, detail="metrics need LASTMILE_METRICS_TOKEN")
        body = metrics.render(await service.counts(), await service.monitor_snapshot())
        return Response(body, media_type="text/plain; version=0.0.4")

    @app.get("/api/me", tags=["chat"])
    async def me(who: User) -> Me:
        """Return the signed-in user."""
        return Me(user=who, auth=bool(settings.web_users or settings.web_tokens))

    @app.get("/api/threads", tags=["chat"])
    async def list_threads(_who: User) -> list[ThreadRecord]:
        """List conversation threads, most recently active first."""
        return await service.threads()

    @app.post("/api/threads", tags=["chat"], dependencies=guarded, status_code=201)
    async def new_thread(body: NewThread, who: User) -> ThreadRecord:
        """Start a conversation thread."""
        return await service.create_thread(body.title, who)

    @app.get("/api/threads/{thread_id}", tags=["chat"])
    async def get_thread(thread_id: str, _who: User) -> ThreadPage:
        """Return a thread and its runs."""
        thread, runs = await service.thread(thread_id)
        return ThreadPage(thread=thread, runs=runs)

    @app.post(
        "/api/threads/{thread_id}/runs",
        tags=["chat"],
        dependencies=guarded,
        response_class=Response,
        responses={200: SSE_RESPONSE},
    )
    async def ask(thread_id: str, body: Question, who: User) -> EventSourceResponse:
        """Ask a question in a thread; its steps stream as Server-Sent Events."""
        await service.thread(thread_id)  # 404 for an unknown thread
        return await _stream(service.ask(thread_id, body.question, who), "ask")

    async def _stream(events: AsyncIterator[Any], kind: str) -> EventSourceResponse:
        first = await anext(events)  # a busy thread or bad input: an error, not a stream
        started = time.perf_counter()

        async def stream() -> AsyncIterator[str]:
            yield _sse(first)
            async for event in events:
                if event.type == "tool_finished" and not event.ok:
                    # a model names the tool: an unknown name must not grow the label set
                    metrics.tool_errors.labels(event.tool if event.tool in TOOLS else "other").inc()
                if event.type == "run_finished":
                    metrics.runs.labels(kind, event.status).inc()
                    metrics.latency.labels(kind).observe(time.perf_counter() - started)
                yield _sse(event)

        return EventSourceResponse(stream(), headers={"Cache-Control": "no-store"})

    @app.post(
        "/api/triage",
        tags=["runs"],
        dependencies=guarded,
        response_class=Response,
        responses={200: SSE_RESPONSE},
    )
    async def triage(body: TriageRequest, who: User) -> EventSourceResponse:
        """Run the morning triage over a scope and day; its steps stream as Server-Sent Events."""
        events = service.triage(body.day, body.scope_level, body.scope_ids, who)
        return await _stream(events, "triage")

    @app.get("/api/runs/{run_id}", tags=["runs"])
    async def get_run(run_id: str, _who: User) -> RunPage:
        """Return a run as the chat page shows it."""
        return await service.page(run_id)

    @app.get(
        "/api/runs/{run_id}/events",
        tags=["runs"],
        response_class=Response,
        responses={200: SSE_RESPONSE},
    )
    async def run_events(run_id: str, _who: User) -> EventSourceResponse:
        """Follow a run: decision_recorded, action_dispatched, then run_finished (SSE)."""
        await service.page(run_id)  # 404 for an unknown run
        events = service.watch(run_id)  # subscribed before the first byte goes out

        async def stream() -> AsyncIterator[str]:
            yield f": watching run {run_id}\n\n"
            async for event in events:
                yield _sse(event)

        return EventSourceResponse(stream(), headers={"Cache-Control": "no-store"})

    @app.post("/api/runs/{run_id}/cancel", tags=["runs"], dependencies=guarded)
    async def cancel_run(run_id: str, _who: User) -> dict[str, bool]:
        """Stop a streaming run after its current step."""
        return {"cancelled": await service.cancel(run_id)}

    @app.post("/api/runs/{run_id}/decisions", tags=["runs"], dependencies=guarded)
    async def decide(run_id: str, body: DecisionBody, who: User) -> RunPage:
        """Decide one action (or the rest); the run resumes when none is pending."""
        if body.rest is not None:
            page = await service.decide_rest(run_id, body.rest, who)
            metrics.decisions.labels(body.rest).inc()
            return page
        if body.index is None or body.decision is None:
            raise HTTPException(
                status_code=422, detail="give index and decision, or rest (approve or reject)"
            )
        page = await service.decide(
            run_id, body.index, body.decision, who, parameters=body.parameters, note=body.note
        )
        metrics.decisions.labels(body.decision).inc()
        return page

    @app.get("/api/decisions", tags=["runs"], response_model=None)
    async def decision_log(
        _who: User, format: Literal["json", "csv"] = "json", run_id: str | None = None
    ) -> list[DecisionRecord] | Response:
        """Export the decision log (JSON, or CSV with ``format=csv``)."""
        rows = await service.decision_log(run_id)
        if format == "json":
            return rows
        return Response(decisions_csv(rows), media_type="text/csv")

    return app
