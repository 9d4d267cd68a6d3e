"""How the app answers failures: a clear JSON ``{"detail": ...}`` with the right status, never a 500.

* an unknown execution or state machine: 404;
* an execution name taken by another input: 409;
* any other ``UsageError`` (bad name, bad routing, invalid definition, an execution in the wrong
  status): 400 with the service's own message, which says where and why;
* the store unreachable or busy: 503;
* a UI page without a login: a redirect to the login form.
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from orchestrator.api.auth import LoginRequired
from orchestrator.errors import UsageError
from orchestrator.executions.service import ExecutionConflict, UnknownExecution
from orchestrator.registry.service import UnknownStateMachine, UnknownVersion
from orchestrator.store import StoreError

log = structlog.get_logger(__name__)


class NotFound(UsageError):
    """What the request names does not exist (404)."""


class Conflict(UsageError):
    """The request does not apply to the current state of what it names (409)."""


def status_of(exc: UsageError) -> int:
    """The HTTP status of a refused request."""
    if isinstance(exc, UnknownExecution | UnknownStateMachine | UnknownVersion | NotFound):
        return 404
    if isinstance(exc, ExecutionConflict | Conflict):
        return 409
    return 400


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(UsageError)
    def usage_error(request: Request, exc: UsageError) -> Response:
        if _is_page(request):
            return _page(request, status_of(exc), str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(StoreError)
    def store_error(request: Request, exc: StoreError) -> Response:
        log.warning("api.store_error", path=request.url.path, error=type(exc).__name__)
        if _is_page(request):
            return _page(request, 503, f"the event store is unavailable: {exc}")
        return JSONResponse({"detail": f"the event store is unavailable: {exc}"}, status_code=503)

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        del request
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)


def _is_page(request: Request) -> bool:
    """A request for a UI page (not the JSON API, not a webhook, not the live event stream)."""
    path = request.url.path
    return (
        not path.startswith(("/api/", "/hooks/", "/static/"))
        and not path.endswith("/events")
        and "text/html" in request.headers.get("accept", "")
    )


def _page(request: Request, status: int, message: str) -> Response:
    from orchestrator.api.ui import message_page  # noqa: PLC0415 - the UI module imports this one

    return message_page(request, status, message)
