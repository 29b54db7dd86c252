"""Who is calling: Basic auth or bearer tokens from the settings, CSRF guard, metrics access.

Authentication is required whenever users or tokens are configured, and the server refuses
to start bound to anything but loopback without them (:func:`check_binding`). On loopback
with none configured, every caller is the user ``local``. Browsers send Basic credentials on
their own, so every state-changing request must also carry the ``X-Lastmile-CSRF`` header,
which a page on another origin cannot add without a CORS preflight this app never grants.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from typing import Any

from fastapi import HTTPException, Request
from starlette.middleware.trustedhost import TrustedHostMiddleware

from agent.settings import Settings

CSRF_HEADER = "X-Lastmile-CSRF"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
"""Host names a server without sign-in answers to."""
LOCAL_USER = "local"


class BindingError(ValueError):
    """The server would be reachable from the network without authentication."""


def is_loopback(host: str) -> bool:
    """Tell whether a bind address or client host is this machine only."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_enabled(settings: Settings) -> bool:
    """Whether callers must authenticate (users or tokens configured)."""
    return bool(settings.web_users or settings.web_tokens)


def check_binding(settings: Settings, host: str) -> None:
    """Refuse to serve off loopback without authentication.

    Raises:
        BindingError: ``host`` is not loopback and no users or tokens are configured.
    """
    if not is_loopback(host) and not auth_enabled(settings):
        raise BindingError(
            f"refusing to serve on {host} without authentication: set LASTMILE_WEB_USERS "
            "(JSON user -> password) or LASTMILE_WEB_TOKENS (JSON user -> token), or bind "
            "to 127.0.0.1"
        )


def _unauthorized(settings: Settings) -> HTTPException:
    scheme = 'Basic realm="lastmile", charset="UTF-8"' if settings.web_users else "Bearer"
    ways = [
        way
        for way, configured in (
            ("a user name and password", settings.web_users),
            ("a bearer token", settings.web_tokens),
        )
        if configured
    ]
    return HTTPException(
        status_code=401,
        detail=f"sign in with {' or '.join(ways)} (missing or wrong credentials)",
        headers={"WWW-Authenticate": scheme},
    )


def user_of(request: Request, settings: Settings) -> str:
    """Return the calling user's name.

    Raises:
        HTTPException: 401 without valid credentials when authentication is on.
    """
    if not auth_enabled(settings):
        return LOCAL_USER
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        for user, token in settings.web_tokens.items():
            if secrets.compare_digest(value.encode(), token.get_secret_value().encode()):
                return user
    elif scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized(settings) from None
        known = settings.web_users.get(user)
        if known is not None and secrets.compare_digest(
            password.encode(), known.get_secret_value().encode()
        ):
            return user
    raise _unauthorized(settings)


def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without the CSRF header, or from another origin.

    Raises:
        HTTPException: 403.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.headers.get(CSRF_HEADER) != "1":
        raise HTTPException(
            status_code=403, detail=f"missing the {CSRF_HEADER}: 1 header (CSRF protection)"
        )
    origin = request.headers.get("Origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("Host"):
        raise HTTPException(status_code=403, detail="cross-origin requests are not accepted")


def may_read_metrics(request: Request, settings: Settings) -> bool:
    """Whether the caller may scrape /metrics: its token, or loopback when there is none."""
    if settings.metrics_token is not None:
        header = request.headers.get("Authorization", "")
        expected = f"Bearer {settings.metrics_token.get_secret_value()}"
        return secrets.compare_digest(header.encode(), expected.encode())
    client = request.client.host if request.client else ""
    return is_loopback(client)


class LoopbackHostsOnly:
    """ASGI middleware: without sign-in, answer only this machine's own host names.

    A page elsewhere that re-points its DNS name at 127.0.0.1 (DNS rebinding) gets a 400,
    not the API. Slack's signed requests (``/slack/events``, through a tunnel's host name)
    pass: their signature, not their Host header, is what proves them.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.checked = TrustedHostMiddleware(app, allowed_hosts=list(LOOPBACK_HOSTS))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Check the Host header, except for Slack's signed requests."""
        if scope["type"] == "http" and scope["path"] == "/slack/events":
            await self.app(scope, receive, send)
        else:
            await self.checked(scope, receive, send)
