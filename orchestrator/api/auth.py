"""Who is calling, and may they: FastAPI dependencies over :class:`~orchestrator.api.tokens.Tokens`.

A request carries its token as ``Authorization: Bearer <token>`` (scripts, the API) or in the
``orchestrator_token`` cookie that the UI's login form sets (HttpOnly, SameSite=Strict, so another
site's page can neither read it nor make the browser send it). Without a valid token the API answers
401 (with ``WWW-Authenticate: Bearer``) and the UI sends the browser to the login form; with a token
whose role is too small, 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.api.tokens import ROLES, Principal, Tokens

COOKIE = "orchestrator_token"
_bearer = HTTPBearer(auto_error=False, description="An API token: `orchestrator tokens create`.")


class LoginRequired(Exception):
    """A UI page was asked for without a valid token: the app redirects to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def tokens_of(request: Request) -> Tokens:
    """The token service of the app serving ``request``."""
    tokens = request.app.state.tokens
    assert isinstance(tokens, Tokens)
    return tokens


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
    token = credentials.credentials if credentials is not None else request.cookies.get(COOKIE)
    if not token:
        return None
    return tokens_of(request).authenticate(token)


def require(role: str) -> Callable[..., Principal]:
    """A dependency answering 401 without a valid token and 403 when its role is below ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = _principal(request, credentials)
        if principal is None:
            raise HTTPException(
                401,
                "a valid API token is required (Authorization: Bearer ...)",
                {"WWW-Authenticate": "Bearer"},
            )
        if not principal.may(role):
            raise HTTPException(
                403, f"this needs the {role} role; the token of {principal.owner!r} is {principal.role}"
            )
        return principal

    return dependency


def page_viewer(request: Request) -> Principal:
    """For UI pages: the viewer behind the cookie (or bearer token); otherwise go to the login form."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=value.strip())
        if scheme.lower() == "bearer" and value.strip()
        else None
    )
    principal = _principal(request, credentials)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
PageViewer = Annotated[Principal, Depends(page_viewer)]
