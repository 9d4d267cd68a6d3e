"""What operators and admins do from the web UI: stop, redrive and reset executions; move and roll back
aliases. Every action takes two steps.

1. The button on the page posts its form here; the answer is a confirmation page that says what will
   happen (``Stop release:run-7?``, ``prod: v2 → v1``) and changes nothing.
2. The confirmation page's button posts the same form again with ``confirmed=yes``: the action runs,
   recorded with the token's owner (``by``), and the browser goes back to the page with a notice.

Each post is checked like an API call and more: a valid token (else the login form), a role that may
take the action (operators act on executions, admins move aliases; 403 otherwise, and the pages show
only the buttons the role may use), and, when the token came in the session cookie, the form's own
per-form token (:func:`orchestrator.api.auth.form_token`), so that no other site can post these forms
in the user's name. A refused or failed action answers with a page saying why, with the status the API
would use (400, 403, 404, 409), and nothing changed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator.api.app import runtime_of
from orchestrator.api.auth import FORM_FIELD, LoginRequired, Session, session_of
from orchestrator.api.errors import status_of
from orchestrator.api.reads import REDRIVABLE
from orchestrator.api.ui import message_page, render
from orchestrator.errors import UsageError
from orchestrator.registry.model import Route
from orchestrator.runtime import Runtime

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
MAX_FORM_BYTES = 64 * 1024


class Refused(Exception):
    """The action is not allowed or does not apply: shown on a page with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def form_of(request: Request) -> dict[str, str]:
    """The posted form (``application/x-www-form-urlencoded``), one value per field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {"__too_large__": "1"}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


Form = Annotated[dict[str, str], Depends(form_of)]


def _authorize(request: Request, form: Mapping[str, str], role: str, back: str) -> Session:
    session = session_of(request)
    if session is None:
        raise LoginRequired(back)
    principal = session.principal
    if not principal.may(role):
        raise Refused(403, f"This needs the {role} role; your token ({principal.owner}) is {principal.role}.")
    if session.via_cookie:
        sent = form.get(FORM_FIELD, "")
        if not hmac.compare_digest(sent.encode(), session.form_token(request.url.path).encode()):
            raise Refused(
                403, "This form has expired or did not come from this site: reload the page and try again."
            )
    if "__too_large__" in form:
        raise Refused(413, "The form is too large.")
    return session


def _act(
    request: Request, form: Mapping[str, str], role: str, back: str, work: Callable[[Session], Response]
) -> Response:
    """Authorize, then run ``work``; a refusal or a service's ``UsageError`` becomes a page saying why."""
    try:
        session = _authorize(request, form, role, back)
        return work(session)
    except Refused as exc:
        return _message(request, None, exc.status, exc.message, back)
    except UsageError as exc:
        return _message(request, session_of(request), status_of(exc), str(exc), back)


def _message(request: Request, session: Session | None, status: int, message: str, back: str) -> Response:
    return message_page(request, status, message, who=session.principal if session else None, back=back)


def _confirm(request: Request, session: Session, **context: Any) -> Response:
    """The confirmation page: ``title``, ``lead``, ``facts`` [(label, text)], ``hidden`` fields, ``inputs``
    [{name, label, value, placeholder}], the ``button`` label and the ``back`` link."""
    path = request.url.path
    context.setdefault("inputs", [])
    context.setdefault("facts", [])
    context.setdefault("hidden", {})
    page = {
        "who": session.principal,
        "session": session,
        "action": quote(path),
        "csrf": session.form_token(path),
        "owner": session.principal.owner,
        **context,
    }
    return render(request, "confirm.html", page)


def _confirmed(form: Mapping[str, str]) -> bool:
    return form.get("confirmed") == "yes"


def _page(execution: str) -> str:
    return f"/executions/{quote(execution)}"


def _machine_page(name: str) -> str:
    return f"/state-machines/{quote(name)}"


def _routing_text(routing: tuple[Route, ...]) -> str:
    weighted = len(routing) > 1
    return ", ".join(f"v{r.version}" + (f" ({r.weight}%)" if weighted else "") for r in routing) or "nothing"


# ---------------------------------------------------------------------- executions
@router.post("/executions/{execution}/stop")
def stop(request: Request, execution: str, runtime: RuntimeDep, form: Form) -> Response:
    """Stop a running execution, with an optional error and cause."""
    back = _page(execution)
    error = form.get("error", "").strip()[:256]
    cause = form.get("cause", "").strip()[:32_768]

    def work(session: Session) -> Response:
        loaded = runtime.executions.load(execution)
        if loaded.status != "RUNNING":
            raise Refused(409, f"{execution} is {loaded.status}: only RUNNING executions can be stopped.")
        if not _confirmed(form):
            return _confirm(
                request,
                session,
                title=f"Stop {execution}?",
                lead="The execution is aborted: running tasks are cancelled and no further state runs. "
                "It can be redriven afterwards.",
                facts=[
                    ("Execution", execution),
                    ("Status", loaded.status),
                    ("Error", error or "(none)"),
                    ("Cause", cause or "(none)"),
                ],
                hidden={"error": error, "cause": cause},
                button="Stop execution",
                danger=True,
                back=back,
            )
        runtime.executions.stop(execution, error or None, cause or None, by=session.principal.owner)
        log.info("ui.stopped", execution=execution, by=session.principal.owner)
        return RedirectResponse(f"{back}?notice=stopped", status_code=303)

    return _act(request, form, "operator", back, work)


@router.post("/executions/{execution}/redrive")
def redrive(request: Request, execution: str, runtime: RuntimeDep, form: Form) -> Response:
    """Redrive a failed, timed-out or aborted execution."""
    back = _page(execution)

    def work(session: Session) -> Response:
        loaded = runtime.executions.load(execution)
        if loaded.status not in REDRIVABLE:
            raise Refused(
                409,
                f"{execution} is {loaded.status}: only FAILED, TIMED_OUT or ABORTED ones can be redriven.",
            )
        if not _confirmed(form):
            return _confirm(
                request,
                session,
                title=f"Redrive {execution}?",
                lead="The states that did not succeed run again, in this execution; the ones that "
                "succeeded keep their results.",
                facts=[("Execution", execution), ("Status", loaded.status)],
                button="Redrive execution",
                danger=False,
                back=back,
            )
        runtime.executions.redrive(execution, by=session.principal.owner)
        log.info("ui.redriven", execution=execution, by=session.principal.owner)
        return RedirectResponse(f"{back}?notice=redriven", status_code=303)

    return _act(request, form, "operator", back, work)


@router.post("/executions/{execution}/reset")
def reset(request: Request, execution: str, runtime: RuntimeDep, form: Form) -> Response:
    """Start a new execution from the state ``execution`` had after event ``toEvent``."""
    back = _page(execution)

    def work(session: Session) -> Response:
        loaded = runtime.executions.load(execution)
        text = form.get("toEvent", "").strip()
        if not text.isdigit() or not 1 <= int(text) <= len(loaded.history):
            raise Refused(400, f"Choose an event between 1 and {len(loaded.history)} to reset to.")
        to_event = int(text)
        name = form.get("name", "").strip()
        event = loaded.history[to_event - 1]
        if not _confirmed(form):
            default = f"{loaded.meta.get('name')}-reset-{to_event}"
            state = event.details.get("name")
            return _confirm(
                request,
                session,
                title=f"Reset {execution} to event {to_event}?",
                lead="A new execution starts from the state this one had after the event; this one "
                "is not changed. The two are linked in their lineage.",
                facts=[
                    ("Execution", execution),
                    ("After event", f"{to_event} {event.type}" + (f" ({state})" if state else "")),
                ],
                hidden={"toEvent": str(to_event)},
                inputs=[
                    {"name": "name", "label": "New execution name", "value": name, "placeholder": default}
                ],
                button="Start the new execution",
                danger=False,
                back=f"{back}#event-{to_event}",
            )
        new = runtime.executions.reset(execution, to_event, name=name or None, by=session.principal.owner)
        log.info("ui.reset", execution=execution, new=new.id, by=session.principal.owner)
        return RedirectResponse(f"{_page(new.id)}?notice=reset", status_code=303)

    return _act(request, form, "operator", back, work)


# ---------------------------------------------------------------------- aliases
@router.post("/state-machines/{name}/aliases")
def move_alias(request: Request, name: str, runtime: RuntimeDep, form: Form) -> Response:
    """Point an alias (new or existing) at one version."""
    back = _machine_page(name)

    def work(session: Session) -> Response:
        machine = runtime.registry.get(name)
        alias = form.get("alias", "").strip()
        text = form.get("version", "").strip()
        if not alias:
            raise Refused(400, "Name the alias to move.")
        if not text.isdigit() or machine.version(int(text)) is None:
            raise Refused(400, f"Choose a version of {name} between 1 and {len(machine.versions)}.")
        version = int(text)
        current = machine.aliases.get(alias)
        if not _confirmed(form):
            before = _routing_text(current.routing) if current is not None else "(a new alias)"
            return _confirm(
                request,
                session,
                title=f"Move alias {alias} of {name} to v{version}?",
                lead="New executions started through the alias run the chosen version; running ones "
                "keep theirs. The change can be rolled back.",
                facts=[("Alias", f"{name}:{alias}"), ("Now", before), ("After", f"v{version}")],
                hidden={"alias": alias, "version": str(version)},
                button="Move alias",
                danger=True,
                back=f"{back}#aliases-title",
            )
        runtime.registry.set_alias(name, alias, [(version, None)], by=session.principal.owner)
        log.info("ui.alias_moved", name=name, alias=alias, version=version, by=session.principal.owner)
        return RedirectResponse(f"{back}?notice=alias-moved#alias-{quote(alias)}", status_code=303)

    return _act(request, form, "admin", back, work)


@router.post("/state-machines/{name}/aliases/{alias}/rollback")
def rollback_alias(request: Request, name: str, alias: str, runtime: RuntimeDep, form: Form) -> Response:
    """Point an alias back at its routing before its last change."""
    back = _machine_page(name)

    def work(session: Session) -> Response:
        machine = runtime.registry.get(name)
        current = machine.aliases.get(alias)
        if current is None:
            raise Refused(404, f"{name} has no alias {alias!r}.")
        if len(current.history) < 2:
            raise Refused(409, f"Alias {name}:{alias} has no earlier routing to roll back to.")
        if not _confirmed(form):
            return _confirm(
                request,
                session,
                title=f"Roll back alias {alias} of {name}?",
                lead="The alias goes back to where it pointed before its last change.",
                facts=[
                    ("Alias", f"{name}:{alias}"),
                    ("Now", _routing_text(current.routing)),
                    ("After", _routing_text(current.history[-2])),
                ],
                button="Roll back alias",
                danger=True,
                back=f"{back}#alias-{quote(alias)}",
            )
        runtime.registry.rollback_alias(name, alias, by=session.principal.owner)
        log.info("ui.alias_rolled_back", name=name, alias=alias, by=session.principal.owner)
        return RedirectResponse(f"{back}?notice=alias-rolled-back#alias-{quote(alias)}", status_code=303)

    return _act(request, form, "admin", back, work)
