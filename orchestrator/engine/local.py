"""Run a definition in memory: no database, mocked tasks, a simulated clock (``run-local``).

The driver loop is the same one the durable worker runs, minus the store: start the execution,
answer its tasks (here from a mock file), let time pass to the next timer, repeat until it ends.
Time is simulated unless ``real_time`` is set: a one-hour Wait finishes at once, and the history's
timestamps still show the hour.

Mocks map a state name (or a Task ``Resource``) to the answers of its successive attempts, in the
vocabulary of Step Functions Local's mock configuration::

    {"ChargeCard": [{"Throw": {"Error": "Card.Declined", "Cause": "insufficient funds"}},
                    {"Return": {"charged": true}}],
     "arn:aws:states:::lambda:invoke": {"Return": {"StatusCode": 200}}}

A state name wins over a resource. A list is consumed one answer per call and its last answer
repeats; a single object answers every call. Calls are counted per key across the whole execution (a
Map's iterations share their Task's list). A ``Throw`` of ``States.Timeout`` or
``States.HeartbeatTimeout`` is reported as the task timing out (``TaskTimedOut``). A Task with no mock
fails with ``Local.MissingMock`` naming the state and its resource.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.asl.dataflow import dumps
from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import (
    DEFAULT_PAYLOAD_LIMIT,
    Execution,
    ExecutionInfo,
    Limits,
    TaskRequest,
)
from orchestrator.errors import HEARTBEAT_TIMEOUT, TIMEOUT, UsageError

MISSING_MOCK = "Local.MissingMock"


@dataclass
class Mocks:
    """Answers for Task states, by state name or resource; counts the calls of one execution."""

    answers: Mapping[str, Any] = field(default_factory=dict)
    _calls: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, document: Any, source: str = "mocks") -> Mocks:
        """Validate a mock document; raise ``UsageError`` naming what is wrong."""
        if not isinstance(document, dict):
            raise UsageError(f"{source}: must be a JSON object mapping state names or resources to answers")
        for key, value in document.items():
            answers = value if isinstance(value, list) else [value]
            if not answers:
                raise UsageError(f"{source}: {key!r} has an empty list of answers")
            for i, answer in enumerate(answers):
                where = f"{source}: {key!r}" + (f"[{i}]" if isinstance(value, list) else "")
                if not isinstance(answer, dict) or len({"Return", "Throw"} & answer.keys()) != 1:
                    raise UsageError(
                        f'{where}: each answer must be {{"Return": <result>}} or '
                        '{"Throw": {"Error": "<name>", "Cause": "<text>"}}'
                    )
                if "Throw" in answer:
                    throw = answer["Throw"]
                    if not isinstance(throw, dict) or not isinstance(throw.get("Error"), str):
                        raise UsageError(f'{where}: "Throw" needs {{"Error": "<name>", "Cause": "<text>"}}')
                    if not isinstance(throw.get("Cause", ""), str):
                        raise UsageError(f'{where}: "Throw".Cause must be a string')
        return cls(document)

    def answer(self, task: TaskRequest) -> dict[str, Any] | None:
        """The answer for this call of ``task``, or None when nothing mocks it."""
        key = task.state_name if task.state_name in self.answers else task.resource
        if key not in self.answers:
            return None
        value = self.answers[key]
        if not isinstance(value, list):
            return value  # type: ignore[no-any-return]
        n = self._calls.get(key, 0)
        self._calls[key] = n + 1
        return value[min(n, len(value) - 1)]  # type: ignore[no-any-return]


def run_local(
    definition: Mapping[str, Any],
    input_value: Any = None,
    *,
    mocks: Mocks | Mapping[str, Any] | None = None,
    history: bool = False,
    real_time: bool = False,
    name: str = "local",
    state_machine_name: str = "StateMachine",
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    limits: Limits | None = None,
    seed: int | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Run ``definition`` on ``input_value`` to the end and return what ``run-local`` prints.

    ``{"status": "SUCCEEDED", "output": ...}``, or ``{"status": "FAILED", "error": ..., "cause": ...}``
    (``TIMED_OUT`` when the definition's ``TimeoutSeconds`` ran out; ``error``/``cause`` are left out
    when a Fail state has none), with ``"history"`` (events in the ``get-execution-history`` shape)
    when asked. ``clock`` is read once, for the start time (and while waiting, with ``real_time``);
    ``seed`` defaults to one derived from that time, so a fixed clock gives a reproducible run.

    Raises ``UsageError`` for an invalid definition or mock document, and for an input larger than
    the payload limit (Step Functions refuses to start such an execution).
    """
    if validate:
        # Imported here: the validator is only needed by callers that ask for it.
        from orchestrator.asl.validate import validate_definition  # noqa: PLC0415

        problems = validate_definition(definition)
        if problems:
            lines = "\n".join(f"  {p.pointer or '/'}: {p.message}" for p in problems)
            raise UsageError(f"invalid definition:\n{lines}")
    limits = limits or Limits(max_events=None)
    check_input_size(input_value, limits.payload_bytes)
    if mocks is None:
        mocks = Mocks()
    elif isinstance(mocks, Mocks):
        mocks = Mocks(mocks.answers)  # a fresh call count for this execution
    else:
        mocks = Mocks.parse(mocks)
    events: list[HistoryEvent] = []
    start = clock()
    execution = Execution(
        dict(definition),
        info=ExecutionInfo(name=name, state_machine_name=state_machine_name),
        sink=events.append if history else None,
        seed=seed if seed is not None else int(start * 1000),
        limits=limits,
    )
    now = start
    execution.start(input_value, now)
    while execution.status == "RUNNING":
        pending = [t for t in execution.pending_tasks() if not t.started]
        if pending:
            for task in pending:
                if execution.status == "RUNNING" and task.id in execution.tasks:
                    _answer(execution, mocks, task, now)
            continue
        due = execution.next_due()
        if due is None:
            break
        if real_time:
            delay = due - clock()
            if delay > 0:
                sleep(delay)
            now = max(now, clock(), due)
        else:
            now = max(now, due)
        execution.advance_to(now)
    result: dict[str, Any] = {"status": execution.status}
    if execution.status == "SUCCEEDED":
        result["output"] = execution.output
    else:
        if execution.error is not None:
            result["error"] = execution.error
        if execution.cause is not None:
            result["cause"] = execution.cause
    if history:
        result["history"] = [e.to_aws() for e in events]
    return result


def _answer(execution: Execution, mocks: Mocks, task: TaskRequest, now: float) -> None:
    execution.task_started(task.id, now)
    answer = mocks.answer(task)
    if answer is None:
        execution.task_failed(
            task.id,
            MISSING_MOCK,
            f"No mock answers the Task state '{task.state_name}' (resource {task.resource}): add it to the "
            "--mock file under the state name or the resource.",
            now,
        )
    elif "Throw" in answer:
        throw = answer["Throw"]
        error = throw["Error"]
        if error in (TIMEOUT, HEARTBEAT_TIMEOUT):
            execution.task_timed_out(task.id, now, heartbeat=error == HEARTBEAT_TIMEOUT)
        else:
            execution.task_failed(task.id, error, throw.get("Cause", ""), now)
    else:
        execution.task_succeeded(task.id, answer["Return"], now)


def check_input_size(input_value: Any, limit: int = DEFAULT_PAYLOAD_LIMIT) -> None:
    """Refuse an execution input over the payload limit (measured as compact UTF-8 JSON)."""
    size = len(dumps(input_value).encode())
    if size > limit:
        raise UsageError(
            f"the execution input is {size} bytes; Step Functions accepts at most {limit} bytes "
            f"({limit // 1024} KiB)"
        )


def read_text(path: str | Path, what: str) -> str:
    """Read a UTF-8 text file or raise ``UsageError`` saying which file and why not."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"cannot read {what} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def load_json_file(path: str, what: str) -> Any:
    """Read a JSON file or raise ``UsageError`` saying which file and where it is broken."""
    return parse_json(read_text(path, what), f"{what} {path}")


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text or raise ``UsageError`` with line and column.

    Only standard JSON is accepted: ``NaN`` and ``Infinity`` are refused, as AWS refuses them.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except _NotJsonError as exc:
        raise UsageError(f"{where}: invalid JSON: {exc} is not a JSON value") from None
    except RecursionError:
        raise UsageError(f"{where}: invalid JSON: nested too deeply") from None


class _NotJsonError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJsonError(name)
