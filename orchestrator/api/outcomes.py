"""What happened to each state of an execution, folded from its history (pure: no I/O).

The execution page colors each state of the graph by its outcome and shows, on click, its input,
output, error and attempts; ``GET /api/executions/{id}/states`` returns the same. A state's outcome is

* ``succeeded``: it exited normally (a retried task that finally succeeded included);
* ``caught``: it exited after an error, so a ``Catch`` sent the execution elsewhere;
* ``failed``: a Fail state was entered, or the state was still in progress when the execution failed,
  timed out or was aborted;
* ``running``: entered and not yet exited while the execution runs;
* ``not-reached``: never entered.

States are keyed by their place in the definition: ``Deploy`` at the top level, ``Fan/0/Build`` for
state ``Build`` of branch 0 of Parallel state ``Fan``, ``Items/*/Work`` for state ``Work`` of Map state
``Items`` (all iterations are the same states). A state entered several times (loops, Map iterations,
redrives) keeps its latest visit per thread, and the node shows the worst of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.events import HistoryEvent

SUCCEEDED, CAUGHT, FAILED, RUNNING, NOT_REACHED = "succeeded", "caught", "failed", "running", "not-reached"
_RANK = {NOT_REACHED: 0, SUCCEEDED: 1, CAUGHT: 2, RUNNING: 3, FAILED: 4}
_ERROR_TYPES = frozenset(
    {"TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "EvaluationFailed"}
    | {f"{kind}StateFailed" for kind in ("Map", "Parallel")}
)
_EXECUTION_ENDS = frozenset({"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"})


@dataclass
class Attempt:
    """One scheduled try of a Task state."""

    event: int
    outcome: str = RUNNING
    error: str | None = None
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON for the API and the page."""
        return {"event": self.event, "outcome": self.outcome, "error": self.error, "cause": self.cause}


@dataclass
class Visit:
    """One entry into a state, in one thread (``scope``) of the execution."""

    key: str
    name: str
    scope: str
    entered: int
    status: str = RUNNING
    input: str | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    exited: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    errored: bool = False


@dataclass
class StateOutcome:
    """What happened to one state of the definition, over all its visits."""

    key: str
    name: str
    status: str = NOT_REACHED
    visits: int = 0
    latest: Visit | None = None
    threads: dict[str, Visit] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON for the API and the page: the status, and the latest visit's data."""
        latest = self.latest
        out: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "status": self.status,
            "visits": self.visits,
        }
        if latest is not None:
            out.update(
                scope=latest.scope,
                enteredEvent=latest.entered,
                exitedEvent=latest.exited,
                input=latest.input,
                output=latest.output,
                error=latest.error,
                cause=latest.cause,
                attempts=[a.to_json() for a in latest.attempts],
            )
        worst = self._worst_visit()
        if worst is not None and worst is not latest and worst.error:
            out["worstVisit"] = {"scope": worst.scope, "error": worst.error, "cause": worst.cause}
        return out

    def _worst_visit(self) -> Visit | None:
        return max(self.threads.values(), key=lambda v: _RANK[v.status], default=None)


def state_keys(definition: Mapping[str, Any], prefix: str = "") -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Every state of ``definition``, nested ones included: key -> (name, state)."""
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    states = definition.get("States")
    if not isinstance(states, Mapping):
        return out
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        key = f"{prefix}{name}"
        out[key] = (str(name), state)
        for index, program in enumerate(_children(state)):
            part = "*" if state.get("Type") == "Map" else str(index)
            out.update(state_keys(program, f"{key}/{part}/"))
    return out


def _children(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if state.get("Type") == "Parallel":
        branches = state.get("Branches")
        return [b for b in branches if isinstance(b, Mapping)] if isinstance(branches, list) else []
    if state.get("Type") == "Map":
        program = state.get("ItemProcessor", state.get("Iterator"))
        return [program] if isinstance(program, Mapping) else []
    return []


def key_of(definition: Mapping[str, Any], scope: str, name: str) -> str:
    """The key of state ``name`` entered in thread ``scope`` (``Items/3`` -> ``Items/*/name``)."""
    if not scope:
        return name
    parts = scope.split("/")
    states: Any = definition.get("States", {})
    keyed: list[str] = []
    for owner, index in zip(parts[::2], parts[1::2], strict=False):
        state = states.get(owner, {}) if isinstance(states, Mapping) else {}
        is_map = isinstance(state, Mapping) and state.get("Type") == "Map"
        keyed += [owner, "*" if is_map else index]
        programs = _children(state) if isinstance(state, Mapping) else []
        program = programs[0 if is_map else min(int(index), len(programs) - 1)] if programs else {}
        states = program.get("States", {})
    return "/".join([*keyed, name])


def fold(definition: Mapping[str, Any], history: Iterable[HistoryEvent]) -> dict[str, StateOutcome]:
    """The outcome of every state of ``definition`` after ``history`` (keys as :func:`state_keys`)."""
    keys = state_keys(definition)
    outcomes = {key: StateOutcome(key, name) for key, (name, _) in keys.items()}
    current: dict[str, Visit] = {}
    for event in history:
        kind = event.type
        d = event.details
        if kind.endswith("StateEntered"):
            name = str(d.get("name", ""))
            key = key_of(definition, event.scope, name)
            outcome = outcomes.setdefault(key, StateOutcome(key, name))
            visit = Visit(key, name, event.scope, event.id, input=d.get("input"))
            outcome.visits += 1
            outcome.latest = visit
            outcome.threads[event.scope] = visit
            current[event.scope] = visit
            if kind == "FailStateEntered":
                visit.status = FAILED
                _, state = keys.get(key, (name, {}))
                visit.error = _text(state.get("Error"))
                visit.cause = _text(state.get("Cause"))
        elif kind.endswith("StateExited"):
            visit_or_none = current.get(event.scope)
            if visit_or_none is not None:
                visit_or_none.status = CAUGHT if visit_or_none.errored else SUCCEEDED
                visit_or_none.output = d.get("output")
                visit_or_none.exited = event.id
        elif kind == "TaskScheduled" and event.scope in current:
            current[event.scope].attempts.append(Attempt(event.id))
        elif kind == "TaskSucceeded" and event.scope in current:
            visit = current[event.scope]
            visit.errored = False
            if visit.attempts:
                visit.attempts[-1].outcome = SUCCEEDED
        elif kind in _ERROR_TYPES and event.scope in current:
            visit = current[event.scope]
            visit.errored = True
            visit.error, visit.cause = _text(d.get("error")), _text(d.get("cause"))
            if visit.attempts and kind.startswith("Task"):
                visit.attempts[-1].outcome = FAILED
                visit.attempts[-1].error, visit.attempts[-1].cause = visit.error, visit.cause
        elif kind.endswith("StateAborted") and event.scope in current:
            visit = current[event.scope]
            if visit.status == RUNNING:
                visit.status, visit.error = FAILED, "States.Aborted"
        elif kind in _EXECUTION_ENDS:
            for visit in current.values():
                if visit.status == RUNNING:
                    visit.status = FAILED
                    if not visit.error:
                        visit.error, visit.cause = _text(d.get("error")) or kind, _text(d.get("cause"))
    for outcome in outcomes.values():
        if outcome.threads:
            outcome.status = max((v.status for v in outcome.threads.values()), key=_RANK.__getitem__)
    return outcomes


def summary(outcomes: Mapping[str, StateOutcome]) -> dict[str, int]:
    """How many states have each status."""
    counts = dict.fromkeys((SUCCEEDED, CAUGHT, FAILED, RUNNING, NOT_REACHED), 0)
    for outcome in outcomes.values():
        counts[outcome.status] += 1
    return counts


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
