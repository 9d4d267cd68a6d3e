"""The JSON API under ``/api``: state machines, versions, aliases, executions, and the actions on them.

FastAPI documents it at ``/api/openapi.json`` (browsable at ``/api/docs``). Every route needs a token
(:mod:`orchestrator.api.auth`): viewers read; operators start, stop, reset and redrive; admins publish
and move aliases, and manage the API tokens themselves (``/api/tokens``). Each action is recorded with
the token's owner (``started_by``, ``by``, ``published_by``), so the history says who did it. Answers
are described by the models of :mod:`orchestrator.api.models`. Refusals are ``{"detail": "..."}`` with
400, 401, 403, 404 or 409 (:mod:`orchestrator.api.errors`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api import models, outcomes, reads
from orchestrator.api.app import runtime_of
from orchestrator.api.auth import Admin, Operator, Viewer, tokens_of
from orchestrator.api.errors import Conflict, NotFound
from orchestrator.api.tokens import ROLES, Tokens, parse_duration
from orchestrator.executions.service import Loaded
from orchestrator.registry.service import diff, version_of
from orchestrator.runtime import Runtime

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api")
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
Name = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]
ExecutionId = Annotated[
    str,
    Path(min_length=3, max_length=161, pattern=r"^[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$", examples=["hello:run-1"]),
]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="How many items to skip.")]
TokensDep = Annotated[Tokens, Depends(tokens_of)]
TokenId = Annotated[str, Path(min_length=12, max_length=12, pattern=r"^[0-9a-f]{12}$")]


class Status(StrEnum):
    """An execution's status."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    TIMED_OUT = "TIMED_OUT"


class Role(StrEnum):
    """What a token may do: viewers read, operators act on executions, admins publish and manage."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


assert tuple(Role) == ROLES


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StartRequest(_Body):
    """Start an execution of ``stateMachine`` (``NAME``, ``NAME:ALIAS`` or ``NAME:VERSION``)."""

    state_machine: str = Field(alias="stateMachine", min_length=1, max_length=200, examples=["hello:prod"])
    input: Any = Field(default_factory=dict, description="The execution input (any JSON value).")
    name: str | None = Field(default=None, max_length=80, description="Unique per state machine.")


class StopRequest(_Body):
    """Why the execution is stopped."""

    error: str | None = Field(default=None, max_length=256)
    cause: str | None = Field(default=None, max_length=32_768)


class ResetRequest(_Body):
    """Start a new execution from the state after event ``toEvent`` (the old one is unchanged)."""

    to_event: int = Field(alias="toEvent", ge=1, le=1_000_000)
    name: str | None = Field(default=None, max_length=80)


class PublishRequest(_Body):
    """Publish ``definition`` as the next version (identical content returns the existing one)."""

    definition: dict[str, Any]
    description: str = Field(default="", max_length=1024)
    revision: str | None = Field(default=None, max_length=200, examples=["D1234"])
    approved_by: str | None = Field(default=None, alias="approvedBy", max_length=200)
    alias: str | None = Field(default=None, max_length=80, description="Point this alias at the version.")


class RouteModel(_Body):
    """One version an alias routes to; two routes need a weight each (summing to 100)."""

    version: int = Field(ge=1, le=1_000_000)
    weight: int | None = Field(default=None, ge=0, le=100)


class AliasRequest(_Body):
    """Where an alias routes."""

    routing: list[RouteModel] = Field(min_length=1, max_length=2)


class TokenRequest(_Body):
    """A new API token for ``owner`` with ``role``, optionally expiring (``90s``, ``30m``, ``12h``,
    ``30d``, ``2w``)."""

    role: Role
    owner: str = Field(min_length=1, max_length=120)
    expires_in: str | None = Field(default=None, alias="expiresIn", max_length=20, examples=["30d"])


# ---------------------------------------------------------------------- state machines
@router.get(
    "/state-machines",
    tags=["state machines"],
    summary="List state machines",
    response_model=models.StateMachinesList,
    response_model_exclude_unset=True,
)
def list_state_machines(runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """Every published state machine with its latest version and aliases."""
    return {"stateMachines": reads.state_machines(runtime)}


@router.get(
    "/state-machines/{name}",
    tags=["state machines"],
    summary="Describe a state machine",
    response_model=models.StateMachineDescription,
    response_model_exclude_unset=True,
)
def get_state_machine(name: Name, runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """Its versions (who published each, from which revision) and its aliases with their history."""
    return reads.state_machine_json(runtime.registry.get(name))


@router.get(
    "/state-machines/{name}/versions",
    tags=["state machines"],
    summary="List versions",
    response_model=models.VersionsList,
    response_model_exclude_unset=True,
)
def list_versions(name: Name, runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """The versions of ``name``, oldest first."""
    machine = runtime.registry.get(name)
    return {"name": name, "versions": [reads.version_json(v) for v in machine.versions]}


@router.get(
    "/state-machines/{name}/versions/{version}",
    tags=["state machines"],
    summary="Get a version",
    response_model=models.VersionWithDefinition,
    response_model_exclude_unset=True,
)
def get_version(
    name: Name, version: Annotated[int, Path(ge=1, le=1_000_000)], runtime: RuntimeDep, _: Viewer
) -> dict[str, Any]:
    """One version with its definition."""
    found = version_of(runtime.registry.get(name), version)
    return {"name": name, **reads.version_json(found, definition=True)}


@router.post(
    "/state-machines/{name}/versions",
    tags=["state machines"],
    summary="Publish a version",
    status_code=201,
    response_model=models.PublishResult,
    response_model_exclude_unset=True,
    responses={200: {"description": "Identical content: the existing version."}},
)
def publish(
    name: Name, body: PublishRequest, response: Response, runtime: RuntimeDep, who: Admin
) -> dict[str, Any]:
    """Validate and publish ``definition`` as the next version of ``name`` (admins)."""
    version, created = runtime.registry.publish(
        name,
        body.definition,
        description=body.description,
        published_by=who.owner,
        revision=body.revision,
        approved_by=body.approved_by,
    )
    out: dict[str, Any] = {"name": name, **reads.version_json(version), "created": created}
    if body.alias:
        routes = runtime.registry.set_alias(name, body.alias, [(version.version, None)], by=who.owner)
        out["alias"] = {"alias": body.alias, "routing": [r.to_json() for r in routes]}
    if not created:
        response.status_code = 200
    log.info("api.published", name=name, version=version.version, created=created, by=who.owner)
    return out


@router.get(
    "/state-machines/{name}/diff",
    tags=["state machines"],
    summary="Diff two versions",
    response_model=models.DiffResult,
    response_model_exclude_unset=True,
)
def diff_versions(
    name: Name,
    runtime: RuntimeDep,
    _: Viewer,
    from_: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
    to: Annotated[int, Query(ge=1, le=1_000_000)],
) -> dict[str, Any]:
    """Structural differences between two versions' definitions (JSON Pointer paths)."""
    machine = runtime.registry.get(name)
    a, b = version_of(machine, from_), version_of(machine, to)
    return {"name": name, "from": from_, "to": to, "changes": diff(a.definition, b.definition)}


@router.get(
    "/state-machines/{name}/aliases",
    tags=["aliases"],
    summary="List aliases",
    response_model=models.AliasesList,
    response_model_exclude_unset=True,
)
def list_aliases(name: Name, runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """The aliases of ``name``: current routing and every change."""
    return {"name": name, "aliases": reads.aliases_json(runtime.registry.get(name))}


@router.put(
    "/state-machines/{name}/aliases/{alias}",
    tags=["aliases"],
    summary="Set an alias",
    response_model=models.AliasRouting,
    response_model_exclude_unset=True,
)
def set_alias(name: Name, alias: Name, body: AliasRequest, runtime: RuntimeDep, who: Admin) -> dict[str, Any]:
    """Route ``alias`` to one version, or to two with weights (admins)."""
    routes = runtime.registry.set_alias(
        name, alias, [(r.version, r.weight) for r in body.routing], by=who.owner
    )
    log.info("api.alias_set", name=name, alias=alias, by=who.owner)
    return {"name": name, "alias": alias, "routing": [r.to_json() for r in routes]}


@router.post(
    "/state-machines/{name}/aliases/{alias}/rollback",
    tags=["aliases"],
    summary="Roll an alias back",
    response_model=models.AliasRouting,
    response_model_exclude_unset=True,
)
def rollback_alias(name: Name, alias: Name, runtime: RuntimeDep, who: Admin) -> dict[str, Any]:
    """Point ``alias`` back at its routing before its last change (admins)."""
    routes = runtime.registry.rollback_alias(name, alias, by=who.owner)
    log.info("api.alias_rolled_back", name=name, alias=alias, by=who.owner)
    return {"name": name, "alias": alias, "routing": [r.to_json() for r in routes]}


# ---------------------------------------------------------------------- executions
@router.get(
    "/executions",
    tags=["executions"],
    summary="List executions",
    response_model=models.ExecutionsPage,
    response_model_exclude_unset=True,
)
def list_executions(
    runtime: RuntimeDep,
    _: Viewer,
    state_machine: Annotated[str | None, Query(alias="stateMachine", max_length=80)] = None,
    status: Status | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Executions, newest first, filtered by state machine and status, a page at a time."""
    page = reads.executions_page(
        runtime,
        state_machine=state_machine,
        status=status.value if status else None,
        offset=offset,
        limit=limit,
    )
    return page.to_json("executions")


@router.post(
    "/executions",
    tags=["executions"],
    summary="Start an execution",
    status_code=201,
    response_model=models.ActionResult,
    response_model_exclude_unset=True,
    responses={200: {"description": "Same name and input: the existing execution."}},
)
def start_execution(
    body: StartRequest, response: Response, runtime: RuntimeDep, who: Operator
) -> dict[str, Any]:
    """Start an execution (operators); ``startedBy`` is the token's owner."""
    loaded, created = runtime.executions.start(
        body.state_machine, body.input, name=body.name, started_by=who.owner, trigger={"api": who.token_id}
    )
    if not created:
        response.status_code = 200
    log.info("api.started", execution=loaded.id, created=created, by=who.owner)
    return {**_summary(loaded), "created": created}


@router.get(
    "/executions/{execution}",
    tags=["executions"],
    summary="Describe an execution",
    response_model=models.ExecutionDescription,
    response_model_exclude_unset=True,
)
def describe_execution(execution: ExecutionId, runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """Status, version, input, output or error, times and links."""
    return runtime.executions.describe(execution)


@router.get(
    "/executions/{execution}/history",
    tags=["executions"],
    summary="Execution history",
    response_model=models.HistoryPage,
    response_model_exclude_unset=True,
)
def execution_history(
    execution: ExecutionId,
    runtime: RuntimeDep,
    _: Viewer,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    reverse: bool = False,
) -> dict[str, Any]:
    """The events, in the shape of ``get-execution-history``, a page at a time."""
    events = runtime.executions.history(execution)
    return {
        "execution": execution,
        **reads.history_page(events, offset=offset, limit=limit, reverse=reverse).to_json("events"),
    }


@router.get(
    "/executions/{execution}/states",
    tags=["executions"],
    summary="What happened to each state",
    response_model=models.StatesResult,
    response_model_exclude_unset=True,
)
def execution_states(execution: ExecutionId, runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """Each state's outcome (succeeded, caught, failed, running, not-reached) with its latest input,
    output, error and attempts."""
    loaded = runtime.executions.load(execution)
    version = runtime.registry.get(str(loaded.meta["state_machine"])).version(int(loaded.meta["version"]))
    assert version is not None
    folded = outcomes.fold(version.definition, loaded.history)
    return {
        "execution": execution,
        "status": loaded.status,
        "states": [o.to_json() for o in folded.values()],
        "summary": outcomes.summary(folded),
    }


@router.get(
    "/executions/{execution}/lineage",
    tags=["executions"],
    summary="Execution lineage",
    response_model=models.Lineage,
    response_model_exclude_unset=True,
)
def execution_lineage(execution: ExecutionId, runtime: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """What caused what: revision, approver, version, trigger, resets, redrives, role sessions, runs."""
    lineage = runtime.executions.lineage(execution)
    history = runtime.executions.history(execution)
    return {
        **lineage,
        "approvals": reads.approvals(history),
        "roleSessions": reads.role_sessions(history),
        "externalRuns": reads.external_runs(history),
    }


@router.post(
    "/executions/{execution}/stop",
    tags=["actions"],
    summary="Stop an execution",
    response_model=models.ActionResult,
    response_model_exclude_unset=True,
)
def stop_execution(
    execution: ExecutionId, runtime: RuntimeDep, who: Operator, body: StopRequest | None = None
) -> dict[str, Any]:
    """Abort a running execution (operators); 409 when it is not running."""
    body = body or StopRequest()
    _expect_status(runtime, execution, ("RUNNING",), "stopped")
    loaded = runtime.executions.stop(execution, body.error, body.cause, by=who.owner)
    log.info("api.stopped", execution=execution, by=who.owner)
    return _summary(loaded)


@router.post(
    "/executions/{execution}/reset",
    tags=["actions"],
    summary="Reset an execution",
    status_code=201,
    response_model=models.ActionResult,
    response_model_exclude_unset=True,
)
def reset_execution(
    execution: ExecutionId, body: ResetRequest, runtime: RuntimeDep, who: Operator
) -> dict[str, Any]:
    """A new execution from the state ``execution`` had after event ``toEvent`` (operators)."""
    loaded = runtime.executions.reset(execution, body.to_event, name=body.name, by=who.owner)
    log.info("api.reset", execution=execution, new=loaded.id, by=who.owner)
    return {**_summary(loaded), "resetFrom": {"execution": execution, "event": body.to_event}}


@router.post(
    "/executions/{execution}/redrive",
    tags=["actions"],
    summary="Redrive an execution",
    response_model=models.ActionResult,
    response_model_exclude_unset=True,
)
def redrive_execution(execution: ExecutionId, runtime: RuntimeDep, who: Operator) -> dict[str, Any]:
    """Re-run a failed, timed-out or aborted execution from the states that did not succeed (operators)."""
    _expect_status(runtime, execution, reads.REDRIVABLE, "redriven")
    loaded = runtime.executions.redrive(execution, by=who.owner)
    log.info("api.redriven", execution=execution, by=who.owner)
    return _summary(loaded)


# ---------------------------------------------------------------------- tokens
@router.get("/tokens", tags=["tokens"], summary="List API tokens", response_model=models.TokensList)
def list_tokens(tokens: TokensDep, _: Admin) -> dict[str, Any]:
    """Every token (never its secret), revoked and expired ones included (admins)."""
    return {"tokens": [t.to_json() for t in tokens.list()]}


@router.post(
    "/tokens",
    tags=["tokens"],
    summary="Create an API token",
    status_code=201,
    response_model=models.CreatedToken,
)
def create_token(body: TokenRequest, tokens: TokensDep, who: Admin) -> dict[str, Any]:
    """A new token (admins): the answer holds the token itself, shown this once; only its hash is stored."""
    expiry = parse_duration(body.expires_in, where="expiresIn") if body.expires_in is not None else None
    token, info = tokens.create(body.role.value, body.owner, by=who.owner, expires_in=expiry)
    log.info("api.token_created", token_id=info.id, role=info.role, by=who.owner)
    return {**info.to_json(), "token": token}


@router.delete(
    "/tokens/{token_id}", tags=["tokens"], summary="Revoke an API token", response_model=models.TokenModel
)
def revoke_token(token_id: TokenId, tokens: TokensDep, who: Admin) -> dict[str, Any]:
    """Revoke a token (admins): it stops working at once. Revoking a revoked token changes nothing."""
    if token_id not in {t.id for t in tokens.list()}:
        raise NotFound(f"unknown token id {token_id!r}")
    info = tokens.revoke(token_id, by=who.owner)
    log.info("api.token_revoked", token_id=token_id, by=who.owner)
    return info.to_json()


# ---------------------------------------------------------------------- helpers
def _expect_status(runtime: Runtime, execution: str, allowed: tuple[str, ...], verb: str) -> None:
    status = runtime.executions.load(execution).status
    if status not in allowed:
        raise Conflict(f"execution {execution!r} is {status}: only {' or '.join(allowed)} ones can be {verb}")


def _summary(loaded: Loaded) -> dict[str, Any]:
    out: dict[str, Any] = {
        "execution": loaded.id,
        "status": loaded.status,
        "stateMachine": loaded.meta.get("state_machine"),
        "version": loaded.meta.get("version"),
        "startedBy": loaded.meta.get("started_by", ""),
    }
    if loaded.status == "SUCCEEDED":
        out["output"] = loaded.machine.output
    elif loaded.status != "RUNNING":
        out["error"] = loaded.machine.error
        out["cause"] = loaded.machine.cause
    return out
