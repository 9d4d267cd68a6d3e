"""The shapes of the JSON API's answers, as pydantic models, so that the OpenAPI document describes them.

The services answer with plain dicts (camelCase keys, as the CLI prints them); the routes declare these
models as their ``response_model`` and FastAPI checks each answer against its model and drops nothing
the model does not know: every model allows extra keys (a history event's ``...EventDetails``, a task's
integration-specific fields), and routes serialize with ``response_model_exclude_unset`` so that keys a
service leaves out (``output`` of a failed execution) stay out rather than turning into ``null``.
Field names are snake_case in Python and camelCase on the wire (``alias_generator=to_camel``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire; extra keys kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class PageFields(ApiModel):
    """Where a page sits in the whole list."""

    total: int = Field(description="How many items there are in all.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last one.")


# ---------------------------------------------------------------------- state machines
class Route(ApiModel):
    """One version an alias routes to, with its share of the starts."""

    version: int
    weight: int


class VersionInfo(ApiModel):
    """A published version: who published it, from which revision, who approved it."""

    version: int
    sha256: str
    description: str
    published_by: str
    published_at: str
    revision: str | None
    approved_by: str | None


class VersionWithDefinition(VersionInfo):
    """A version with its definition (Amazon States Language)."""

    name: str
    definition: dict[str, Any]


class VersionsList(ApiModel):
    """The versions of a state machine, oldest first."""

    name: str
    versions: list[VersionInfo]


class AliasChange(ApiModel):
    """One change of an alias: ``AliasUpdated`` or ``AliasRolledBack``."""

    type: str
    routing: list[Route]
    at: str
    by: str


class AliasInfo(ApiModel):
    """An alias: where it routes now and every change, oldest first."""

    alias: str
    routing: list[Route]
    history: list[AliasChange]


class AliasesList(ApiModel):
    """The aliases of a state machine."""

    name: str
    aliases: list[AliasInfo]


class AliasTarget(ApiModel):
    """An alias and where it routes."""

    alias: str
    routing: list[Route]


class AliasRouting(AliasTarget):
    """Where an alias of a state machine routes after a change."""

    name: str


class StateMachineDescription(ApiModel):
    """A state machine's versions and aliases."""

    name: str
    versions: list[VersionInfo]
    aliases: list[AliasInfo]


class StateMachineItem(ApiModel):
    """A state machine in the list: its latest version and its aliases' routing."""

    name: str
    versions: int = Field(description="How many versions it has.")
    latest: VersionInfo | None
    aliases: dict[str, list[Route]]


class StateMachinesList(ApiModel):
    """Every published state machine."""

    state_machines: list[StateMachineItem]


class PublishResult(VersionInfo):
    """The published version (``created`` false: identical content, the existing version)."""

    name: str
    created: bool
    alias: AliasTarget | None = None


class DiffResult(ApiModel):
    """The changes from one version's definition to another's, as JSON Pointer paths."""

    name: str
    from_: int = Field(alias="from")
    to: int
    changes: list[dict[str, Any]] = Field(description="``{op, path, old?, new?}`` each.")


# ---------------------------------------------------------------------- executions
class ExecutionItem(ApiModel):
    """An execution in the list."""

    execution: str = Field(description="``STATE_MACHINE:NAME``.")
    name: str | None
    state_machine: str | None
    version: int | None
    status: str
    start_date: str
    stop_date: str | None
    started_by: str
    approved_by: str | None = None
    revision: str | None = None
    duration_seconds: float | None = None


class ExecutionsPage(PageFields):
    """A page of executions, newest first."""

    executions: list[ExecutionItem]


class ResetLink(ApiModel):
    """One end of a reset: the other execution and the event it was reset after."""

    execution: str
    event: int
    by: str | None = None


class ExecutionDescription(ApiModel):
    """An execution: status, version, input, output or error, times, links."""

    execution: str
    name: str | None
    state_machine: str | None
    version: int | None
    alias: str | None = None
    status: str
    start_date: str
    stop_date: str | None
    input: Any = None
    output: Any = Field(default=None, description="Only when it succeeded.")
    error: str | None = Field(default=None, description="Only when it failed, timed out or was aborted.")
    cause: str | None = None
    started_by: str
    events: int = Field(description="How many history events it has.")
    redrive_count: int = 0
    reset_from: ResetLink | None = None
    reset_to: list[ResetLink] = Field(default_factory=list)


class ActionResult(ApiModel):
    """An execution after an action: started, stopped, reset or redriven."""

    execution: str
    status: str
    state_machine: str | None
    version: int | None
    started_by: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    created: bool | None = Field(default=None, description="Start: false when it existed already.")
    reset_from: ResetLink | None = None


class HistoryEventModel(ApiModel):
    """One event in the shape of ``get-execution-history``: its details are under ``<type>EventDetails``
    (camel-cased type, e.g. ``taskFailedEventDetails``), an extra key."""

    timestamp: str
    type: str
    id: int
    previous_event_id: int
    scope: str | None = Field(default=None, description="The Map iteration or Parallel branch, if any.")


class HistoryPage(PageFields):
    """A page of an execution's events."""

    execution: str
    events: list[HistoryEventModel]


class StateOutcome(ApiModel):
    """What happened to one state (its latest visit), with its attempts."""

    key: str
    status: str = Field(description="succeeded, caught, failed, running or not-reached.")


class StatesResult(ApiModel):
    """Every state's outcome."""

    execution: str
    status: str
    states: list[StateOutcome]
    summary: dict[str, int]


class LineageVersion(ApiModel):
    """The version an execution ran, and its publish event."""

    number: int
    sha256: str
    published_by: str
    published_at: str
    revision: str | None
    approved_by: str | None
    publish_event_position: int | None = None


class Lineage(ApiModel):
    """What caused what: revision, approver, version, trigger, resets, redrives, role sessions, runs."""

    execution: str
    state_machine: str
    version: LineageVersion
    alias: str | None
    trigger: dict[str, Any] = Field(description="``startedBy`` and what started it (api, webhook, ...).")
    reset_from: ResetLink | None
    reset_to: list[ResetLink]
    redrives: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    approvals: list[dict[str, Any]]
    role_sessions: list[dict[str, Any]]
    external_runs: list[dict[str, Any]]


# ---------------------------------------------------------------------- tokens
class TokenModel(ApiModel):
    """An API token as listed: never its secret."""

    id: str
    owner: str
    role: str
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None
    expires_at: str | None


class TokensList(ApiModel):
    """Every token, revoked and expired ones included."""

    tokens: list[TokenModel]


class CreatedToken(TokenModel):
    """A new token: ``token`` is shown this once and never stored."""

    token: str
