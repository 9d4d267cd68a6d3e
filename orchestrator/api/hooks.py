"""Webhook endpoints: what Phabricator/Phorge calls.

``POST /hooks/phabricator`` takes Herald webhook deliveries. The body is read raw, up to
``[phabricator] max_body_bytes`` (413 beyond), its ``X-Phabricator-Webhook-Signature`` checked
against the configured HMAC key in constant time (401 when missing or wrong; 503 when no key is
configured, so Phorge keeps the delivery and retries), then parsed (400 saying where it is wrong).
A valid delivery is appended to the durable inbox before the 200 answer; a repeat of a stored
delivery is answered 200 too (``"duplicate"``), a test call is recorded and nothing else. If the
store fails the answer is 503 and Phorge sends the same body again later.

``POST /hooks/harbormaster?target=${target.phid}&revision=${buildable.revision}&diff=...&build=...``
takes a Harbormaster "Make HTTP Request" build step. It carries no signature, so its parameters are
only stored here; processing checks through Conduit that the build target exists before starting
anything, and reports the result to that target. When a shared token is configured
(``[phabricator.harbormaster] token_env``, see :mod:`orchestrator.integrations.phabricator.settings`)
the call must carry it, compared in constant time: as the password of HTTP Basic authentication
(what the build step's "Credentials" field sends, from a Passphrase password credential; any user
name), or as the ``token`` query parameter (which ends up in Harbormaster's build log: prefer the
credential). Missing or wrong is 401, nothing stored; a configured variable that is unset is 503.

The endpoints are ``async`` to read the raw body as a stream; the store calls run in the thread pool.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.api.app import runtime_of
from orchestrator.integrations.phabricator import inbox, webhook
from orchestrator.integrations.phabricator.settings import Settings
from orchestrator.store import StoreError

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/hooks", tags=["hooks"])

_TARGET = re.compile(r"^PHID-HMBT-[A-Za-z0-9]{1,64}$")
_NUMBER = re.compile(r"^[0-9]{1,12}$")


class _TooLarge(Exception):
    pass


def _settings(request: Request) -> Settings:
    settings = getattr(request.app.state, "phabricator_settings", None)
    if settings is None:
        settings = Settings.from_config(runtime_of(request).config)
        request.app.state.phabricator_settings = settings
    assert isinstance(settings, Settings)
    return settings


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, settings: Settings) -> bytes | JSONResponse:
    """The raw body, or the answer refusing it: 413 beyond ``max_body_bytes``, 400 for a bad length."""
    try:
        return await _body(request, settings.max_body_bytes)
    except _TooLarge:
        return _problem(413, f"body larger than {settings.max_body_bytes} bytes")
    except ValueError as exc:
        return _problem(400, str(exc))


async def _store(request: Request, accept: Callable[..., str], item: Any) -> str | JSONResponse:
    """Store ``item`` in the inbox with ``accept`` (in the thread pool): its outcome, or 503 (the sender
    tries again later) when the store fails."""
    try:
        return await run_in_threadpool(accept, runtime_of(request).store, item, received_at=time.time())
    except StoreError as exc:
        log.error("phabricator.inbox_unavailable", error=str(exc))
        return _problem(503, "the inbox is unavailable; send again later")


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _NUMBER.match(declared):
            raise ValueError(f"Content-Length is not a number: {declared!r}")
        if int(declared) > limit:
            raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


@router.post("/phabricator")
async def phabricator_webhook(request: Request) -> JSONResponse:
    """Verify and store one Herald webhook delivery."""
    settings = _settings(request)
    if not settings.hmac_key:
        log.warning("phabricator.webhook_unconfigured")
        return _problem(503, "no webhook HMAC key is configured (ORCHESTRATOR_PHABRICATOR_HMAC_KEY)")
    body = await _read_body(request, settings)
    if isinstance(body, JSONResponse):
        return body
    try:
        webhook.verify(settings.hmac_key, body, request.headers.get(webhook.SIGNATURE_HEADER))
    except webhook.BadSignature as exc:
        log.warning("phabricator.webhook_refused", reason=str(exc))
        return _problem(401, str(exc))
    try:
        delivery = webhook.parse(body)
    except webhook.MalformedDelivery as exc:
        return _problem(400, f"not a Herald webhook body: {exc}")
    outcome = await _store(request, inbox.accept, delivery)
    if isinstance(outcome, JSONResponse):
        return outcome
    return JSONResponse({"status": outcome, "delivery": delivery.key})


def _presented_token(request: Request) -> str | None:
    """The token a build step presents: the HTTP Basic password, else the ``token`` query parameter."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return request.query_params.get("token")


def _harbormaster_refusal(request: Request, settings: Settings) -> JSONResponse | None:
    """None when the call may go on; else the 401/503 answer (the shared token check)."""
    expected = settings.harbormaster_token
    if expected is None:
        if settings.harbormaster_token_env is None:
            return None
        log.warning("phabricator.harbormaster_token_unset", variable=settings.harbormaster_token_env)
        return _problem(503, f"the Harbormaster token variable {settings.harbormaster_token_env} is not set")
    presented = _presented_token(request)
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        log.warning("phabricator.harbormaster_refused", missing=presented is None)
        response = _problem(
            401, "missing or wrong Harbormaster token (HTTP Basic password or the 'token' query parameter)"
        )
        response.headers["WWW-Authenticate"] = 'Basic realm="orchestrator harbormaster"'
        return response
    return None


@router.post("/harbormaster")
async def harbormaster_build_step(request: Request) -> JSONResponse:
    """Store one Harbormaster "Make HTTP Request" call."""
    settings = _settings(request)
    refusal = _harbormaster_refusal(request, settings)
    if refusal is not None:
        return refusal
    refused = await _read_body(request, settings)  # read only to enforce its size: all is in the query
    if isinstance(refused, JSONResponse):
        return refused
    query = request.query_params
    target = query.get("target", "")
    if not _TARGET.match(target):
        return _problem(
            400, f"query parameter 'target' must be a build target PHID (PHID-HMBT-...), got {target!r}"
        )
    call: dict[str, Any] = {"target": target}
    for name in ("revision", "diff", "build"):
        value = query.get(name)
        if value is None or value == "":
            call[name] = None
        elif _NUMBER.match(value.removeprefix("D")):
            call[name] = int(value.removeprefix("D"))
        else:
            return _problem(400, f"query parameter {name!r} must be a number, got {value!r}")
    outcome = await _store(request, inbox.accept_harbormaster, call)
    if isinstance(outcome, JSONResponse):
        return outcome
    return JSONResponse({"status": outcome, "target": target})
