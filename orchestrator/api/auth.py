"""Who is calling, and may they: FastAPI dependencies over :class:`~orchestrator.api.tokens.Tokens`.

A request carries its token as ``Authorization: Bearer <token>`` (scripts, the API) or in the
``orchestrator_token`` cookie that the UI's login form sets (HttpOnly, SameSite=Strict, so another
site's page can neither read it nor make the browser send it). Without a valid token the API answers
401 (with ``WWW-Authenticate: Bearer``) and the UI sends the browser to the login form; with a token
whose role is too small, 403.

Changes made with the cookie need more than the cookie (defence in depth, should a browser ignore
SameSite): the JSON API refuses them outright (scripts send the Bearer header, which no other site can
make a browser send), and the UI's forms carry a per-form token, :func:`form_token`: an HMAC keyed by
the caller's own API token over the form's path. Only a page that saw the token can compute it, it
needs no server-side state (any number of ``serve`` processes, restarts included), and it is bound to
one form, so a token leaked from one form's HTML does not work for another. The HMAC is the
``hmac`` module's; nothing about it is hand-rolled beyond choosing the message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.api.tokens import ROLES, Principal, Tokens

COOKIE = "orchestrator_token"
FORM_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="An API token: `orchestrator tokens create`.")


class LoginRequired(Exception):
    """A UI page was asked for without a valid token: the app redirects to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(frozen=True, slots=True)
class Session:
    """A caller of the UI: who they are, the token they presented, and whether it came in the cookie."""

    principal: Principal
    token: str
    via_cookie: bool

    def form_token(self, path: str) -> str:
        """The per-form token for a form posting to ``path``."""
        return form_token(self.token, path)


def form_token(token: str, path: str) -> str:
    """HMAC-SHA256, keyed by the API token, of the form's ``path``: the hidden ``csrf`` field."""
    return hmac.new(token.encode(), b"orchestrator-form\x00" + path.encode(), hashlib.sha256).hexdigest()


def tokens_of(request: Request) -> Tokens:
    """The token service of the app serving ``request``."""
    tokens = request.app.state.tokens
    assert isinstance(tokens, Tokens)
    return tokens


def _bearer_of(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def session_of(request: Request) -> Session | None:
    """The caller behind the Bearer header (preferred) or the cookie; None without a valid token."""
    bearer = _bearer_of(request)
    token = bearer if bearer is not None else request.cookies.get(COOKIE)
    if not token:
        return None
    principal = tokens_of(request).authenticate(token)
    if principal is None:
        return None
    return Session(principal, token.strip(), via_cookie=bearer is None)


def require(role: str) -> Callable[..., Principal]:
    """A dependency answering 401 without a valid token and 403 when its role is below ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        del credentials  # declared so that the OpenAPI document names the scheme; read in session_of
        session = session_of(request)
        if session is None:
            raise HTTPException(
                401,
                "a valid API token is required (Authorization: Bearer ...)",
                {"WWW-Authenticate": "Bearer"},
            )
        principal = session.principal
        if not principal.may(role):
            raise HTTPException(
                403, f"this needs the {role} role; the token of {principal.owner!r} is {principal.role}"
            )
        if session.via_cookie and request.method not in SAFE_METHODS:
            raise HTTPException(
                403,
                "changes through the API need the token in the Authorization: Bearer header, "
                "not the UI's session cookie (use the buttons of the UI, or send the header)",
            )
        return principal

    return dependency


def page_session(request: Request) -> Session:
    """For UI pages: the caller behind the cookie (or bearer token); otherwise go to the login form."""
    session = session_of(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return session


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
PageSession = Annotated[Session, Depends(page_session)]
