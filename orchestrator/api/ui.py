"""The web UI: server-rendered pages (Jinja2) with a little vanilla JavaScript, every asset in the package.

* ``/executions``: the list (status, state machine, version, started by, approved by, start time,
  duration), filtered by status and state machine, refreshing itself;
* ``/executions/{id}``: the state-machine graph colored by what happened to each state (click or press
  Enter on a state for its input, output, error and attempts), the history (filtered by event type
  and a text search), the lineage, and live updates while it runs (server-sent events from
  ``/executions/{id}/events``);
* ``/state-machines/{name}``: versions (who published them, from which revision), aliases and their
  history, and a diff between two versions.

Operators and admins also see the buttons of the actions they may take (stop, redrive, reset; move or
roll back an alias): those forms post to :mod:`orchestrator.api.actions`, which asks for confirmation
first. Pages need a token like the API: the login form stores it in an HttpOnly, SameSite=Strict
cookie. Responses carry a Content-Security-Policy that only allows the app's own scripts and styles.

The live stream waits for new events through the app's :class:`~orchestrator.api.live.LiveHub` (one
thread on :meth:`EventStore.wait_for_events`: PostgreSQL LISTEN/NOTIFY; SQLite woken by this process's
appends, polling for others'), a slice at a time, so that a closed connection ends it within a slice.
No stream holds a thread while it waits, so a shutdown never waits for one: uvicorn cancels the open
responses after its graceful-shutdown timeout (``serve`` sets 5 s) and the cancellation is immediate;
the app's lifespan then closes the hub.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from orchestrator.api import graph, outcomes, reads
from orchestrator.api.app import live_hub_of, runtime_of
from orchestrator.api.auth import COOKIE, PageSession, Session, Viewer, tokens_of
from orchestrator.api.errors import NotFound
from orchestrator.api.tokens import Principal
from orchestrator.engine.events import iso
from orchestrator.executions.service import TERMINAL, Loaded
from orchestrator.registry.service import diff
from orchestrator.runtime import Runtime

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
PAGE_SIZE = 100
HISTORY_PAGE = 500
WAIT_SLICE_SECONDS = 2.0  # one wait for new events: a client gone is noticed within it
MIN_UPDATE_SECONDS = 0.1  # updates of one stream are at least this far apart (a busy store coalesces)
KEEPALIVE_SECONDS = 15.0
NOTICES = {
    "stopped": "Execution stopped.",
    "redriven": "Execution redriven: the states that did not succeed run again.",
    "reset": "This execution was started by a reset.",
    "alias-moved": "Alias moved.",
    "alias-rolled-back": "Alias rolled back.",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render template ``name`` with the security headers of every page."""
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def message_page(
    request: Request, status: int, message: str, *, who: Principal | None = None, back: str = "/executions"
) -> HTMLResponse:
    """A page saying why a request was refused or failed, with the status the API would answer."""
    title = "Not found" if status == 404 else "Not done"
    return render(
        request,
        "message.html",
        {"who": who, "title": title, "message": message, "back": back},
        status_code=status,
    )


def _fmt_time(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return value.replace("T", " ").split(".")[0].rstrip("Z") + "Z"


def _fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


templates.env.filters["when"] = _fmt_time
templates.env.filters["duration"] = _fmt_duration


# ---------------------------------------------------------------------- login
@router.get("/login")
def login_form(request: Request, next: str = "/executions") -> HTMLResponse:
    """The form that takes an API token."""
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token; on success set the cookie and go where the user was going."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/executions"])[0])
    principal = tokens_of(request).authenticate(token) if token else None
    if principal is None:
        context = {"next": target, "error": "That token is not valid (unknown, revoked or mistyped)."}
        return render(request, "login.html", context, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=60 * 60 * 24 * 30,
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _safe_next(target: str) -> str:
    """Only paths of this site: never an open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/executions"
    return target


# ---------------------------------------------------------------------- executions
@router.get("/")
def home() -> Response:
    """The executions list is the home page."""
    return RedirectResponse("/executions", status_code=307)


@router.get("/executions")
def executions_page(
    request: Request,
    *,
    runtime: RuntimeDep,
    session: PageSession,
    state_machine: Annotated[str, Query(alias="stateMachine", max_length=80)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    fragment: bool = False,
) -> HTMLResponse:
    """The list of executions; ``fragment=1`` gives only the table (the auto-refresh fetches it)."""
    status = status.upper() if status.upper() in reads.STATUSES else ""
    listing = reads.executions_page(
        runtime,
        state_machine=state_machine or None,
        status=status or None,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    filters = {k: v for k, v in (("stateMachine", state_machine), ("status", status)) if v}
    context = {
        **_who(session),
        "page": listing,
        "number": page,
        "filters": filters,
        "state_machine": state_machine,
        "status": status,
        "statuses": reads.STATUSES,
        "names": runtime.registry.names(),
        "prev_url": f"/executions?{urlencode({**filters, 'page': page - 1})}" if page > 1 else None,
        "next_url": f"/executions?{urlencode({**filters, 'page': page + 1})}"
        if listing.next_offset is not None
        else None,
    }
    return render(request, "executions_table.html" if fragment else "executions.html", context)


def _who(session: Session) -> dict[str, Any]:
    return {"who": session.principal, "session": session}


@router.get("/executions/{execution}")
def execution_page(
    request: Request,
    execution: str,
    *,
    runtime: RuntimeDep,
    session: PageSession,
    page: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    event_type: Annotated[str, Query(alias="type", max_length=80)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    notice: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """One execution: graph, state details, lineage, history (filtered by ``type`` and text ``q``)."""
    loaded = runtime.executions.load(execution)
    view = _execution_view(runtime, loaded)
    types = sorted({e.type for e in loaded.history})
    event_type = event_type if event_type in types else ""
    q = q.strip()
    filtering = bool(event_type or q)
    events = _filtered(loaded.history, event_type, q) if filtering else loaded.history
    pages = max(1, -(-len(events) // HISTORY_PAGE))
    number = min(page, pages) if page else 1
    start = (number - 1) * HISTORY_PAGE
    filters = {k: v for k, v in (("type", event_type), ("q", q)) if v}
    context = {
        **_who(session),
        **view,
        "events": [_event_row(e) for e in events[start : start + HISTORY_PAGE]],
        "event_types": types,
        "history_filters": filters,
        "history_type": event_type,
        "history_q": q,
        "history_matches": len(events),
        "history_page": number,
        "history_pages": pages,
        "history_page_urls": {
            p: f"?{urlencode({**filters, 'page': p})}#history-title" for p in range(1, pages + 1)
        },
        "history_live": number == pages and not filtering,
        "layout": graph.layout(view["definition"]),
        "notice": NOTICES.get(notice),
        "can_stop": loaded.status == "RUNNING",
        "can_redrive": loaded.status in reads.REDRIVABLE,
    }
    return render(request, "execution.html", context)


def _filtered(history: list[Any], event_type: str, q: str) -> list[Any]:
    """The events of ``event_type`` (any if empty) whose id, type, thread or details (the state's name
    among them) contain ``q``, case-insensitively."""
    needle = q.casefold()
    out = []
    for event in history:
        if event_type and event.type != event_type:
            continue
        if needle:
            details = json.dumps(event.details, ensure_ascii=False)
            text = f"{event.id} {event.type} {event.scope or ''} {details}"
            if needle not in text.casefold():
                continue
        out.append(event)
    return out


def _execution_view(runtime: Runtime, loaded: Loaded) -> dict[str, Any]:
    describe = runtime.executions.describe(loaded.id)
    lineage = runtime.executions.lineage(loaded.id)
    version = reads.Versions(runtime).version(str(loaded.meta["state_machine"]), loaded.meta["version"])
    if version is None:
        raise NotFound(f"the version of {loaded.id!r} is missing from the registry")
    folded = outcomes.fold(version.definition, loaded.history)
    return {
        "execution": describe,
        "duration": reads.duration(describe.get("startDate"), describe.get("stopDate")),
        "lineage": lineage,
        "version": version,
        "definition": version.definition,
        "revision_url": reads.revision_url(runtime, version.revision),
        "approvals": reads.approvals(loaded.history),
        "role_sessions": reads.role_sessions(loaded.history),
        "external_runs": reads.external_runs(loaded.history),
        "states": {key: o.to_json() for key, o in folded.items()},
        "summary": outcomes.summary(folded),
    }


def _event_row(event: Any) -> dict[str, Any]:
    d = event.details
    detail = ""
    if "error" in d:
        detail = f"{d['error']}: {d.get('cause') or ''}"
    elif "output" in d:
        detail = str(d["output"])
    elif "input" in d:
        detail = str(d["input"])
    elif "index" in d:
        detail = f"iteration {d['index']}"
    elif "url" in d:
        detail = str(d["url"])
    return {
        "id": event.id,
        "type": event.type,
        "time": iso(event.timestamp),
        "state": str(d.get("name", "")),
        "scope": event.scope,
        "detail": detail if len(detail) <= 300 else detail[:299] + "…",
        "error": "error" in d,
    }


@router.get("/executions/{execution}/events")
async def execution_events(
    request: Request,
    execution: str,
    runtime: RuntimeDep,
    _: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """Server-sent events: an ``update`` whenever the execution has new events, ``end`` once it ended."""
    await run_in_threadpool(runtime.executions.load, execution)  # 404 before the stream starts
    hub = live_hub_of(request)
    store = runtime.store

    async def stream() -> AsyncIterator[str]:
        seen = after
        last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while not hub.closed and not await request.is_disconnected():
            position = await run_in_threadpool(store.last_position)  # before loading: nothing is missed
            loaded = await run_in_threadpool(runtime.executions.load, execution)
            if len(loaded.history) > seen:
                update = await run_in_threadpool(_update, runtime, loaded, seen)
                seen = len(loaded.history)
                last_sent = time.monotonic()
                yield f"event: update\ndata: {json.dumps(update, ensure_ascii=False)}\n\n"
            if loaded.status in TERMINAL:
                yield "event: end\ndata: {}\n\n"
                return
            if await hub.wait(position, WAIT_SLICE_SECONDS):
                await anyio.sleep(MIN_UPDATE_SECONDS)  # coalesce a burst of appends into one update
            elif time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _update(runtime: Runtime, loaded: Loaded, seen: int) -> dict[str, Any]:
    view = _execution_view(runtime, loaded)
    describe = view["execution"]
    return {
        "status": describe["status"],
        "stopDate": _fmt_time(describe.get("stopDate")),
        "duration": _fmt_duration(view["duration"]),
        "error": describe.get("error"),
        "cause": describe.get("cause"),
        "events": len(loaded.history),
        "newEvents": [_event_row(e) for e in loaded.history[seen:][-HISTORY_PAGE:]],
        "states": view["states"],
        "summary": view["summary"],
    }


# ---------------------------------------------------------------------- state machines
@router.get("/state-machines")
def state_machines_page(request: Request, runtime: RuntimeDep, session: PageSession) -> HTMLResponse:
    """Every state machine."""
    context = {**_who(session), "machines": reads.state_machines(runtime)}
    return render(request, "state_machines.html", context)


@router.get("/state-machines/{name}")
def state_machine_page(
    request: Request,
    name: str,
    *,
    runtime: RuntimeDep,
    session: PageSession,
    from_: Annotated[int | None, Query(alias="from", ge=1, le=1_000_000)] = None,
    to: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    notice: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """Versions, aliases and their history, and a diff between two versions."""
    machine = runtime.registry.get(name)
    count = len(machine.versions)
    to = min(to or count, count)
    from_ = min(from_ or max(1, to - 1), count)
    a, b = machine.version(from_), machine.version(to)
    changes = diff(a.definition, b.definition) if a is not None and b is not None else []
    context = {
        **_who(session),
        "notice": NOTICES.get(notice),
        "rollback_to": {
            a.name: [r.to_json() for r in a.history[-2]]
            for a in machine.aliases.values()
            if len(a.history) > 1
        },
        "machine": reads.state_machine_json(machine),
        "definitions": {v.version: json.dumps(v.definition, indent=2) for v in machine.versions},
        "from_": from_,
        "to": to,
        "changes": [
            {"op": c["op"], "path": c["path"], "old": _short(c, "old"), "new": _short(c, "new")}
            for c in changes
        ],
        "revision_urls": {v.version: reads.revision_url(runtime, v.revision) for v in machine.versions},
    }
    return render(request, "state_machine.html", context)


def _short(change: dict[str, Any], key: str) -> str | None:
    if key not in change:
        return None
    text = json.dumps(change[key], ensure_ascii=False)
    return text if len(text) <= 400 else text[:399] + "…"
