"""Run a definition in memory: no database, mocked tasks, a simulated clock (``run-local``).

The driver loop is the same one the durable worker runs, minus the store: start the execution,
answer its tasks (here from a mock file), let time pass to the next timer, repeat until it ends.

Mocks map a state name (or a Task ``Resource``) to the answers of its successive attempts, in the
vocabulary of Step Functions Local's mock configuration::

    {"ChargeCard": [{"Throw": {"Error": "Card.Declined", "Cause": "insufficient funds"}},
                    {"Return": {"charged": true}}],
     "arn:aws:states:::lambda:invoke": {"Return": {"StatusCode": 200}}}

A list is consumed one answer per attempt and its last answer repeats; a single object answers every
attempt. A Task with no mock fails with ``Local.MissingMock`` naming the state and its resource.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution, ExecutionInfo, Limits, TaskRequest
from orchestrator.errors import UsageError

MISSING_MOCK = "Local.MissingMock"


@dataclass
class Mocks:
    """Answers for Task states, by state name or resource."""

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
                    raise UsageError(f'{where}: each answer must be {{"Return": ...}} or {{"Throw": {{...}}}}')
                if "Throw" in answer:
                    throw = answer["Throw"]
                    if not isinstance(throw, dict) or not isinstance(throw.get("Error"), str):
                        raise UsageError(f'{where}: "Throw" needs {{"Error": "<name>", "Cause": "<text>"}}')
                    if not isinstance(throw.get("Cause", ""), str):
                        raise UsageError(f'{where}: "Throw".Cause must be a string')
        return cls(document)

    def answer(self, task: TaskRequest) -> dict[str, Any] | None:
        """The answer for this attempt of ``task``, or None when nothing mocks it."""
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

    ``{"status": "SUCCEEDED", "output": ...}`` or ``{"status": "FAILED", "error": ..., "cause": ...}``,
    with ``"history"`` (events in the ``get-execution-history`` shape) when asked. Raises
    ``UsageError`` for an invalid definition or mock document.
    """
    if validate:
        from orchestrator.asl.validate import validate_definition

        problems = validate_definition(definition)
        if problems:
            lines = "\n".join(f"  {p.pointer or '/'}: {p.message}" for p in problems)
            raise UsageError(f"invalid definition:\n{lines}")
    if mocks is None:
        mocks = Mocks()
    elif not isinstance(mocks, Mocks):
        mocks = Mocks.parse(mocks)
    events: list[HistoryEvent] = []
    start = clock()
    execution = Execution(
        dict(definition),
        info=ExecutionInfo(name=name, state_machine_name=state_machine_name),
        sink=events.append if history else None,
        seed=seed if seed is not None else int(start * 1000),
        limits=limits or Limits(max_events=None),
    )
    now = start
    execution.start(input_value, now)
    while execution.status == "RUNNING":
        pending = [t for t in execution.pending_tasks() if not t.started]
        if pending:
            for task in pending:
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
        execution.task_failed(task.id, throw["Error"], throw.get("Cause", ""), now)
    else:
        execution.task_succeeded(task.id, answer["Return"], now)


def load_json_file(path: str, what: str) -> Any:
    """Read a JSON file or raise ``UsageError`` saying which file and where it is broken."""
    try:
        with open(path, encoding="utf-8") as fh:  # noqa: PTH123
            text = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    return parse_json(text, f"{what} {path}")


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text or raise ``UsageError`` with line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
