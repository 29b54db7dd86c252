"""Incident routes of the web API: list, acknowledge, snooze (the digest's buttons, on the web)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from agent.async_service import AsyncAgentService
from agent.interfaces.web.auth import check_csrf, user_of
from agent.storage.incidents import Incident, IncidentError


class SnoozeBody(BaseModel):
    """How long to snooze an incident."""

    days: int = Field(default=1, ge=1, le=30, description="Service dates to snooze it for.")


def _user(request: Request) -> str:
    return user_of(request, request.app.state.settings)


User = Annotated[str, Depends(_user)]


def _refused(exc: IncidentError) -> HTTPException:
    code = 404 if str(exc).startswith("no incident") else 409
    return HTTPException(status_code=code, detail=str(exc))


def incidents_router(service: AsyncAgentService) -> APIRouter:
    """Return the ``/api/incidents`` routes over ``service``."""
    router = APIRouter(prefix="/api/incidents", tags=["incidents"])
    guarded: list[Any] = [Depends(check_csrf)]

    @router.get("")
    async def list_incidents(_who: User, include_resolved: bool = False) -> list[Incident]:
        """List incidents, most recently seen first (ongoing ones unless include_resolved)."""
        return await service.incidents(include_resolved)

    @router.post("/{incident_id:path}/acknowledge", dependencies=guarded)
    async def acknowledge(incident_id: str, who: User) -> Incident:
        """Mark an ongoing incident as known and handled."""
        try:
            return await service.acknowledge_incident(incident_id, who)
        except IncidentError as exc:
            raise _refused(exc) from None

    @router.post("/{incident_id:path}/snooze", dependencies=guarded)
    async def snooze(incident_id: str, body: SnoozeBody, who: User) -> Incident:
        """Keep an ongoing incident out of the digest's alerts for some service dates."""
        try:
            return await service.snooze_incident(incident_id, who, body.days)
        except IncidentError as exc:
            raise _refused(exc) from None

    return router


__all__ = ["incidents_router"]
