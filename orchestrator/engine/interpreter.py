"""The execution machine: a definition, an input and outside facts in; history events out.

This is the pure, deterministic core that both ``run-local`` and the durable worker drive. It never
reads a clock, never draws global randomness and never performs I/O: the driver passes the time with
every call, randomness comes from a seeded ``random.Random`` and a UUID factory, and the outside world
only enters through four doors: ``start``, ``task_succeeded``/``task_failed``/``task_timed_out`` and
``advance_to`` (timers that fell due). Everything the machine decides comes out as ``HistoryEvent``s
given to ``sink``, in Step Functions' vocabulary.

An execution is a tree of *frames*: the top-level thread, each Parallel branch and each Map iteration.
A frame walks its own States object; a frame blocked on a task or a timer simply waits, the others go
on. Frames are run depth-first, so a Map over 100,000 Pass items keeps one iteration alive at a time.
"""

from __future__ import annotations

import heapq
import random
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orchestrator import errors as E
from orchestrator.asl import paths
from orchestrator.asl.choice import evaluate_rule
from orchestrator.asl.dataflow import JsonPathEval, Scope, apply_result_path, dumps
from orchestrator.asl.jsonata_eval import Evaluator, JsonataFailure, is_expression
from orchestrator.asl.timestamps import format_timestamp, parse_timestamp
from orchestrator.engine.events import HistoryEvent
from orchestrator.errors import StatesError

JSONPATH = "JSONPath"
JSONATA = "JSONata"
MAX_WAIT_SECONDS = 2**31 - 1
DEFAULT_PAYLOAD_LIMIT = 256 * 1024


class Phase(Enum):
    """Where a frame is within its current state."""

    ENTER = "enter"
    TASK = "task"
    WAIT = "wait"
    RETRY = "retry"
    CHILDREN = "children"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """What the context object ``$$`` says about the execution and its state machine."""

    name: str = "local"
    state_machine_name: str = "StateMachine"
    region: str = "us-east-1"
    account: str = "123456789012"
    role_arn: str = "arn:aws:iam::123456789012:role/orchestrator"
    redrive_count: int = 0

    @property
    def state_machine_arn(self) -> str:
        """The state machine's ARN."""
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.state_machine_name}"

    @property
    def execution_arn(self) -> str:
        """The execution's ARN."""
        return f"arn:aws:states:{self.region}:{self.account}:execution:{self.state_machine_name}:{self.name}"


@dataclass(slots=True)
class TaskRequest:
    """A Task state asking the outside world to do something; answered through the execution."""

    id: str
    state_name: str
    resource: str
    parameters: Any
    timeout_seconds: int | None
    heartbeat_seconds: int | None
    credentials: Any
    attempt: int
    scope: str
    started: bool = False


@dataclass(slots=True, eq=False)
class Children:
    """The branches of a running Parallel state or the iterations of a running Map state."""

    is_map: bool
    inputs: list[Any]
    programs: list[dict[str, Any]]
    results: list[Any]
    max_concurrency: int = 0
    tolerated_count: int | None = None
    tolerated_percentage: float | None = None
    next_index: int = 0
    finished: int = 0
    failures: int = 0
    active: dict[int, Frame] = field(default_factory=dict)
    failure: StatesError | None = None


@dataclass(slots=True, eq=False)
class Frame:
    """One thread of an execution: the top level, a Parallel branch or a Map iteration."""

    scope: str
    program: dict[str, Any]
    query_language: str
    variables: Scope
    parent: Frame | None = None
    index: int = 0
    state_name: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    raw_input: Any = None
    entered_id: int = 0
    entered_time: float = 0.0
    last_event_id: int = 0
    phase: Phase = Phase.ENTER
    retry_counts: list[int] = field(default_factory=list)
    retry_total: int = 0
    effective: Any = None
    task: TaskRequest | None = None
    due: float = 0.0
    children: Children | None = None
    queued: bool = False
    alive: bool = True
    map_item: tuple[int, Any] | None = None
    assigned: dict[str, Any] | None = None


@dataclass(slots=True)
class Limits:
    """Service limits; Step Functions' defaults."""

    payload_bytes: int = DEFAULT_PAYLOAD_LIMIT
    max_events: int | None = 25_000


class Execution:
    """One execution of a definition: feed it facts, it emits history events."""

    def __init__(
        self,
        definition: dict[str, Any],
        *,
        info: ExecutionInfo | None = None,
        sink: Callable[[HistoryEvent], None] | None = None,
        seed: int = 0,
        new_uuid: Callable[[], str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.definition = definition
        self.info = info or ExecutionInfo()
        self.sink = sink
        self.rng = random.Random(seed)  # noqa: S311 - deterministic simulation, not cryptography
        self.new_uuid = new_uuid or _seeded_uuid_factory(self.rng)
        self.limits = limits or Limits()
        self.status = "RUNNING"
        self.input: Any = None
        self.output: Any = None
        self.error: str | None = None
        self.cause: str | None = None
        self.start_time = 0.0
        self.now = 0.0
        self.last_event_id = 0
        self.tasks: dict[str, TaskRequest] = {}
        self._task_frames: dict[str, Frame] = {}
        self._timers: list[tuple[float, int, Frame]] = []
        self._timer_seq = 0
        self._ready: deque[Frame] = deque()
        self._task_seq = 0

    # ------------------------------------------------------------------ doors from the outside
    def start(self, input_value: Any, now: float) -> None:
        """Emit ``ExecutionStarted`` and run until every thread is blocked or the execution ended."""
        self.now = self.start_time = now
        self.input = input_value
        root = Frame(
            scope="",
            program=self.definition,
            query_language=self.definition.get("QueryLanguage", JSONPATH),
            variables=Scope(),
        )
        text = dumps(input_value)
        details: dict[str, Any] = {
            "input": text,
            "inputDetails": {"truncated": False},
            "roleArn": self.info.role_arn,
        }
        self._emit(root, "ExecutionStarted", details)
        if len(text.encode()) > self.limits.payload_bytes:
            self._fail_execution(
                root,
                E.DATA_LIMIT_EXCEEDED,
                "The input to the execution exceeds the maximum number of bytes service limit.",
            )
            return
        timeout = self.definition.get("TimeoutSeconds")
        if isinstance(timeout, int) and timeout > 0:
            self._execution_timeout = now + timeout
        self._enter(root, self.definition["StartAt"], input_value)
        self._run()

    def task_started(self, task_id: str, now: float) -> None:
        """The outside world picked the task up (``TaskStarted``)."""
        task, frame = self._task(task_id)
        self.now = max(self.now, now)
        task.started = True
        rtype, res = _split_resource(task.resource)
        self._emit(frame, "TaskStarted", {"resourceType": rtype, "resource": res})

    def task_succeeded(self, task_id: str, output: Any, now: float) -> None:
        """The task's result (``TaskSucceeded``); the state then completes."""
        task, frame = self._task(task_id)
        self.now = max(self.now, now)
        self._forget_task(task_id)
        rtype, res = _split_resource(task.resource)
        text = dumps(output)
        self._emit(
            frame,
            "TaskSucceeded",
            {"resourceType": rtype, "resource": res, "output": text, "outputDetails": {"truncated": False}},
        )
        try:
            if len(text.encode()) > self.limits.payload_bytes:
                raise StatesError(
                    E.DATA_LIMIT_EXCEEDED,
                    f"The state/task '{frame.state_name}' returned a result with a size exceeding the "
                    "maximum number of bytes service limit.",
                )
            self._complete_state(frame, output)
        except StatesError as exc:
            self._state_failed(frame, exc)
        self._run()

    def task_failed(self, task_id: str, error: str, cause: str, now: float) -> None:
        """The task failed (``TaskFailed``); Retry and Catch apply."""
        task, frame = self._task(task_id)
        self.now = max(self.now, now)
        self._forget_task(task_id)
        rtype, res = _split_resource(task.resource)
        self._emit(frame, "TaskFailed", {"resourceType": rtype, "resource": res, "error": error, "cause": cause})
        self._state_failed(frame, StatesError(error, cause), evaluated=False)
        self._run()

    def task_timed_out(self, task_id: str, now: float, *, heartbeat: bool = False) -> None:
        """The task ran past TimeoutSeconds or missed a heartbeat (``TaskTimedOut``)."""
        task, frame = self._task(task_id)
        self.now = max(self.now, now)
        self._forget_task(task_id)
        rtype, res = _split_resource(task.resource)
        error = E.HEARTBEAT_TIMEOUT if heartbeat else E.TIMEOUT
        self._emit(frame, "TaskTimedOut", {"resourceType": rtype, "resource": res, "error": error, "cause": ""})
        self._state_failed(frame, StatesError(error, ""), evaluated=False)
        self._run()

    def next_due(self) -> float | None:
        """When the next timer (Wait, retry back-off, execution timeout) falls due, if any."""
        while self._timers and not self._timers[0][2].alive:
            heapq.heappop(self._timers)
        due = self._timers[0][0] if self._timers else None
        timeout = getattr(self, "_execution_timeout", None)
        if timeout is not None and self.status == "RUNNING" and (due is None or timeout < due):
            return float(timeout)
        return due

    def advance_to(self, now: float) -> None:
        """Let time pass: fire every timer due at or before ``now``, in order."""
        while self.status == "RUNNING":
            due = self.next_due()
            if due is None or due > now:
                break
            self.now = max(self.now, due)
            timeout = getattr(self, "_execution_timeout", None)
            if timeout is not None and due == timeout:
                self._end(None, "ExecutionTimedOut", {"error": E.TIMEOUT, "cause": "Execution timed out."})
                self.status = "TIMED_OUT"
                self.error, self.cause = E.TIMEOUT, "Execution timed out."
                break
            _, _, frame = heapq.heappop(self._timers)
            if not frame.alive:
                continue
            self._fire(frame)
            self._run()
        self.now = max(self.now, now)

    def stop(self, error: str | None, cause: str | None, now: float) -> None:
        """Abort the execution (``ExecutionAborted``)."""
        if self.status != "RUNNING":
            return
        self.now = max(self.now, now)
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        self._end(None, "ExecutionAborted", details)
        self.status = "ABORTED"
        self.error, self.cause = error, cause

    def pending_tasks(self) -> list[TaskRequest]:
        """Tasks scheduled and not yet answered."""
        return list(self.tasks.values())

    # ------------------------------------------------------------------ events
    def _emit(self, frame: Frame | None, kind: str, details: dict[str, Any]) -> int:
        self.last_event_id += 1
        event_id = self.last_event_id
        prev = frame.last_event_id if frame is not None else event_id - 1
        if frame is not None:
            frame.last_event_id = event_id
        if self.sink is not None:
            self.sink(HistoryEvent(event_id, prev, self.now, kind, details, frame.scope if frame else ""))
        return event_id

    def _end(self, frame: Frame | None, kind: str, details: dict[str, Any]) -> None:
        self._emit(frame, kind, details)
        self.tasks.clear()
        self._task_frames.clear()
        self._timers.clear()
        self._ready.clear()

    # ------------------------------------------------------------------ scheduling
    def _run(self) -> None:
        while self._ready and self.status == "RUNNING":
            frame = self._ready.popleft()
            frame.queued = False
            if frame.alive:
                self._step(frame)

    def _wake(self, frame: Frame) -> None:
        if not frame.queued and frame.alive:
            frame.queued = True
            self._ready.append(frame)

    def _set_timer(self, frame: Frame, due: float) -> None:
        frame.due = due
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, frame))

    def _task(self, task_id: str) -> tuple[TaskRequest, Frame]:
        task = self.tasks.get(task_id)
        if task is None or self.status != "RUNNING":
            raise KeyError(f"no pending task {task_id!r}")
        return task, self._task_frames[task_id]

    def _forget_task(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)
        frame = self._task_frames.pop(task_id, None)
        if frame is not None:
            frame.task = None

    # ------------------------------------------------------------------ walking states
    def _enter(self, frame: Frame, name: str, raw_input: Any) -> None:
        frame.state_name = name
        frame.state = frame.program["States"][name]
        frame.raw_input = raw_input
        frame.phase = Phase.ENTER
        frame.retry_counts = []
        frame.retry_total = 0
        self._wake(frame)

    def _step(self, frame: Frame) -> None:
        """Run ``frame`` until it blocks, finishes or hands over to a child."""
        while frame.alive and self.status == "RUNNING":
            phase = frame.phase
            if phase is Phase.ENTER:
                state = frame.state
                kind = state["Type"]
                frame.entered_time = self.now
                frame.entered_id = self._emit(
                    frame,
                    f"{kind}StateEntered",
                    {"name": frame.state_name, "input": dumps(frame.raw_input), "inputDetails": {"truncated": False}},
                )
                try:
                    _HANDLERS[kind](self, frame)
                except StatesError as exc:
                    self._state_failed(frame, exc)
            elif phase is Phase.CHILDREN:
                try:
                    self._pump(frame)
                except StatesError as exc:
                    self._state_failed(frame, exc)
                if frame.phase is Phase.CHILDREN:
                    return
            else:
                return

    def _fire(self, frame: Frame) -> None:
        """A timer of ``frame`` fell due."""
        try:
            if frame.phase is Phase.WAIT:
                self._exit_state(frame, frame.effective, assigned=frame.assigned, kind="Wait")
            elif frame.phase is Phase.RETRY:
                _HANDLERS_RETRY[frame.state["Type"]](self, frame)
        except StatesError as exc:
            self._state_failed(frame, exc)

    # ------------------------------------------------------------------ evaluation helpers
    def _ql(self, frame: Frame) -> str:
        return str(frame.state.get("QueryLanguage", frame.query_language))

    def _context(self, frame: Frame) -> dict[str, Any]:
        info = self.info
        ctx: dict[str, Any] = {
            "Execution": {
                "Id": info.execution_arn,
                "Input": self.input,
                "Name": info.name,
                "RoleArn": info.role_arn,
                "StartTime": format_timestamp_f(self.start_time),
                "RedriveCount": info.redrive_count,
            },
            "State": {"EnteredTime": format_timestamp_f(frame.entered_time), "Name": frame.state_name},
            "StateMachine": {"Id": info.state_machine_arn, "Name": info.state_machine_name},
        }
        if frame.state.get("Type") in ("Task", "Parallel", "Map"):
            ctx["State"]["RetryCount"] = frame.retry_total
        if frame.task is not None:
            ctx["Task"] = {"Token": frame.task.id}
        if frame.map_item is not None:
            ctx["Map"] = {"Item": {"Index": frame.map_item[0], "Value": frame.map_item[1]}}
        return ctx

    def _jsonpath(self, frame: Frame, data: Any) -> JsonPathEval:
        return JsonPathEval(data, lambda: self._context(frame), frame.variables, self.rng, self.new_uuid)

    def _jsonata(self, frame: Frame, **states: Any) -> Evaluator:
        bound = {"input": frame.raw_input, "context": self._context(frame)}
        bound.update(states)
        return Evaluator(bound, frame.variables.visible(), self.rng, self.new_uuid)

    def _effective_input(self, frame: Frame, *, parameters: str | None = "Parameters") -> Any:
        """JSONPath: InputPath, then the Parameters template."""
        state = frame.state
        ev = self._jsonpath(frame, frame.raw_input)
        data = ev.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
        if parameters and parameters in state:
            data = ev.with_data(data).template(state[parameters])
        return data

    def _complete_state(self, frame: Frame, result: Any) -> None:
        """A Task/Parallel/Map state has its result: process it and leave the state."""
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame, result=result)
            assigned = ev.template(state["Assign"], "Assign") if "Assign" in state else None
            output = ev.template(state["Output"], "Output") if "Output" in state else result
        else:
            jp = self._jsonpath(frame, result)
            if "ResultSelector" in state:
                result = jp.template(state["ResultSelector"])
                jp = jp.with_data(result)
            assigned = jp.assign(state["Assign"]) if "Assign" in state else None
            output = apply_result_path(
                frame.raw_input, state.get("ResultPath"), result, present="ResultPath" in state
            )
            if "OutputPath" in state:
                output = jp.with_data(output).select_path(state["OutputPath"])
        self._exit_state(frame, output, assigned=assigned)

    def _exit_state(
        self, frame: Frame, output: Any, *, assigned: dict[str, Any] | None = None, kind: str | None = None,
        next_state: str | None = None,
    ) -> None:
        state = frame.state
        kind = kind or state["Type"]
        text = dumps(output)
        if len(text.encode()) > self.limits.payload_bytes:
            raise StatesError(
                E.DATA_LIMIT_EXCEEDED,
                f"The state/task '{frame.state_name}' returned a result with a size exceeding the maximum "
                "number of bytes service limit.",
            )
        details: dict[str, Any] = {"name": frame.state_name, "output": text, "outputDetails": {"truncated": False}}
        if assigned:
            frame.variables.values.update(assigned)
            details["assignedVariables"] = {k: dumps(v) for k, v in assigned.items()}
            details["assignedVariablesDetails"] = {"truncated": False}
        self._emit(frame, f"{kind}StateExited", details)
        target = next_state if next_state is not None else state.get("Next")
        if kind == "Succeed" or (target is None and (state.get("End") or kind == "Succeed")):
            self._frame_succeeded(frame, output)
        elif target is None:
            self._frame_succeeded(frame, output)
        else:
            self._enter(frame, target, output)

    # ------------------------------------------------------------------ errors, Retry, Catch
    def _state_failed(self, frame: Frame, exc: StatesError, *, evaluated: bool = True) -> None:
        """A state failed: retry it, catch it, or fail the frame."""
        if evaluated and exc.error not in (E.DATA_LIMIT_EXCEEDED,) and not getattr(exc, "prefixed", False):
            if exc.error in (E.RUNTIME, E.QUERY_EVALUATION_ERROR, E.INTRINSIC_FAILURE, E.RESULT_PATH_MATCH_FAILURE):
                exc = _prefixed(exc, frame)
        state = frame.state
        kind = state.get("Type")
        if kind in ("Task", "Parallel", "Map"):
            delay = self._retry_delay(frame, exc)
            if delay is not None:
                frame.phase = Phase.RETRY
                frame.retry_total += 1
                self._set_timer(frame, self.now + delay)
                return
            catcher = _matching(state.get("Catch", ()), exc.error)
            if catcher is not None:
                self._catch(frame, catcher, exc)
                return
        self._frame_failed(frame, exc)

    def _retry_delay(self, frame: Frame, exc: StatesError) -> float | None:
        retriers = frame.state.get("Retry", ())
        if exc.error in (E.RUNTIME,) or not retriers:
            return None
        if len(frame.retry_counts) < len(retriers):
            frame.retry_counts = [0] * len(retriers)
        for i, retrier in enumerate(retriers):
            if _matches(retrier.get("ErrorEquals", ()), exc.error):
                attempts = frame.retry_counts[i]
                max_attempts = retrier.get("MaxAttempts", 3)
                if attempts >= max_attempts:
                    return None
                frame.retry_counts[i] = attempts + 1
                interval = retrier.get("IntervalSeconds", 1)
                rate = retrier.get("BackoffRate", 2.0)
                delay = float(interval) * float(rate) ** attempts
                cap = retrier.get("MaxDelaySeconds")
                if cap is not None:
                    delay = min(delay, float(cap))
                if retrier.get("JitterStrategy") == "FULL":
                    delay = self.rng.uniform(0, delay)
                return delay
        return None

    def _catch(self, frame: Frame, catcher: dict[str, Any], exc: StatesError) -> None:
        error_output = {"Error": exc.error, "Cause": exc.cause}
        try:
            if self._ql(frame) == JSONATA:
                ev = self._jsonata(frame, errorOutput=error_output)
                assigned = ev.template(catcher["Assign"], "Assign") if "Assign" in catcher else None
                output = ev.template(catcher["Output"], "Output") if "Output" in catcher else error_output
            else:
                jp = self._jsonpath(frame, error_output)
                assigned = jp.assign(catcher["Assign"]) if "Assign" in catcher else None
                output = apply_result_path(
                    frame.raw_input, catcher.get("ResultPath"), error_output, present="ResultPath" in catcher
                )
        except StatesError as inner:
            self._frame_failed(frame, _prefixed(inner, frame))
            return
        if assigned:
            frame.variables.values.update(assigned)
        self._enter(frame, catcher["Next"], output)

    # ------------------------------------------------------------------ frames ending
    def _frame_succeeded(self, frame: Frame, output: Any) -> None:
        frame.phase = Phase.DONE
        frame.alive = False
        parent = frame.parent
        if parent is None:
            self.status = "SUCCEEDED"
            self.output = output
            self._end(frame, "ExecutionSucceeded", {"output": dumps(output), "outputDetails": {"truncated": False}})
            return
        children = parent.children
        assert children is not None
        if children.is_map:
            self._emit(frame, "MapIterationSucceeded", {"name": parent.state_name, "index": frame.index})
        children.active.pop(frame.index, None)
        children.results[frame.index] = output
        children.finished += 1
        self._wake(parent)

    def _frame_failed(self, frame: Frame, exc: StatesError) -> None:
        frame.phase = Phase.DONE
        frame.alive = False
        parent = frame.parent
        if parent is None:
            self._fail_execution(frame, exc.error, exc.cause)
            return
        children = parent.children
        assert children is not None
        children.active.pop(frame.index, None)
        children.finished += 1
        if children.is_map:
            self._emit(frame, "MapIterationFailed", {"name": parent.state_name, "index": frame.index})
            children.failures += 1
            if self._tolerated(children):
                children.results[frame.index] = {"Error": exc.error, "Cause": exc.cause}
                self._wake(parent)
                return
            if children.tolerated_count is not None or children.tolerated_percentage is not None:
                exc = StatesError(
                    E.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                )
        if children.failure is None:
            children.failure = exc
        self._abort_children(parent)
        self._children_failed(parent, exc)

    def _fail_execution(self, frame: Frame | None, error: str | None, cause: str | None) -> None:
        self.status = "FAILED"
        self.error, self.cause = error, cause
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        self._end(frame, "ExecutionFailed", details)

    def _tolerated(self, children: Children) -> bool:
        if children.tolerated_count is None and children.tolerated_percentage is None:
            return False
        if children.tolerated_count is not None and children.failures <= children.tolerated_count:
            return True
        if children.tolerated_percentage is not None:
            total = len(children.inputs)
            return total > 0 and 100.0 * children.failures / total <= children.tolerated_percentage
        return False

    def _abort_children(self, parent: Frame) -> None:
        children = parent.children
        if children is None:
            return
        for child in list(children.active.values()):
            self._kill(child)
            if children.is_map:
                self._emit(child, "MapIterationAborted", {"name": parent.state_name, "index": child.index})
        children.active.clear()
        children.next_index = len(children.inputs)

    def _kill(self, frame: Frame) -> None:
        frame.alive = False
        if frame.task is not None:
            self.tasks.pop(frame.task.id, None)
            self._task_frames.pop(frame.task.id, None)
        if frame.children is not None:
            for child in list(frame.children.active.values()):
                self._kill(child)

    def _children_failed(self, parent: Frame, exc: StatesError) -> None:
        kind = parent.state["Type"]
        self._emit(parent, f"{kind}StateFailed", {})
        parent.children = None
        parent.phase = Phase.ENTER  # failure handling decides what comes next
        self._state_failed(parent, exc, evaluated=False)

    # ------------------------------------------------------------------ Parallel and Map
    def _start_children(self, frame: Frame, children: Children) -> None:
        frame.children = children
        frame.phase = Phase.CHILDREN
        self._wake(frame)

    def _pump(self, frame: Frame) -> None:
        children = frame.children
        assert children is not None
        total = len(children.inputs)
        limit = children.max_concurrency or total
        while children.next_index < total and len(children.active) < limit and frame.alive:
            index = children.next_index
            children.next_index += 1
            program = children.programs[index if not children.is_map else 0]
            child = Frame(
                scope=f"{frame.scope}/{frame.state_name}/{index}" if frame.scope else f"{frame.state_name}/{index}",
                program=program,
                query_language=program.get("QueryLanguage", self._ql(frame)),
                variables=frame.variables.child(),
                parent=frame,
                index=index,
            )
            child.last_event_id = frame.last_event_id
            children.active[index] = child
            if children.is_map:
                self._emit(child, "MapIterationStarted", {"name": frame.state_name, "index": index})
            self._enter(child, program["StartAt"], children.inputs[index])
            self._ready.remove(child)
            child.queued = False
            self._step(child)
            if children.failure is not None or not frame.alive or frame.children is not children:
                return
        if children.finished == total and frame.children is children:
            frame.children = None
            kind = frame.state["Type"]
            self._emit(frame, f"{kind}StateSucceeded", {})
            frame.phase = Phase.ENTER
            self._complete_state(frame, children.results)

    # ------------------------------------------------------------------ state types
    def _pass(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            assigned = ev.template(state["Assign"], "Assign") if "Assign" in state else None
            output = ev.template(state["Output"], "Output") if "Output" in state else frame.raw_input
            self._exit_state(frame, output, assigned=assigned)
            return
        ev = self._jsonpath(frame, frame.raw_input)
        data = ev.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
        if "Parameters" in state:
            data = ev.with_data(data).template(state["Parameters"])
        result = state["Result"] if "Result" in state else data
        assigned = ev.with_data(result).assign(state["Assign"]) if "Assign" in state else None
        output = apply_result_path(frame.raw_input, state.get("ResultPath"), result, present="ResultPath" in state)
        if "OutputPath" in state:
            output = ev.with_data(output).select_path(state["OutputPath"])
        self._exit_state(frame, output, assigned=assigned)

    def _succeed(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            output = (
                self._jsonata(frame).template(state["Output"], "Output") if "Output" in state else frame.raw_input
            )
        else:
            ev = self._jsonpath(frame, frame.raw_input)
            output = ev.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
            if "OutputPath" in state:
                output = ev.with_data(output).select_path(state["OutputPath"])
        self._exit_state(frame, output)

    def _fail(self, frame: Frame) -> None:
        state = frame.state
        error: Any = state.get("Error")
        cause: Any = state.get("Cause")
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            if is_expression(error):
                error = ev.evaluate(error, "Error")
            if is_expression(cause):
                cause = ev.evaluate(cause, "Cause")
        else:
            ev2 = self._jsonpath(frame, frame.raw_input)
            if "ErrorPath" in state:
                error = ev2.value_of(state["ErrorPath"], "ErrorPath")
            if "CausePath" in state:
                cause = ev2.value_of(state["CausePath"], "CausePath")
        for name, value in (("Error", error), ("Cause", cause)):
            if value is not None and not isinstance(value, str):
                raise StatesError(
                    E.RUNTIME,
                    f"The {name}{'Path' if self._ql(frame) != JSONATA else ''} field must resolve to a string, "
                    f"got {dumps(value)}",
                )
        frame.phase = Phase.DONE
        self._frame_failed(frame, _UnprefixedError(error, cause))

    def _choice(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            for i, rule in enumerate(state.get("Choices", ())):
                cond = rule.get("Condition")
                value = ev.evaluate(cond, f"Choices[{i}].Condition") if is_expression(cond) else cond
                if not isinstance(value, bool):
                    raise StatesError(
                        E.QUERY_EVALUATION_ERROR,
                        f"The JSONata expression '{cond}' specified for the field 'Condition' returned an "
                        f"unexpected result type. Expected 'boolean' but was '{_type_name(value)}' for value: "
                        f"{dumps(value)}",
                    )
                if value:
                    assigned = ev.template(rule["Assign"], "Assign") if "Assign" in rule else None
                    output = ev.template(rule["Output"], "Output") if "Output" in rule else frame.raw_input
                    self._exit_state(frame, output, assigned=assigned, next_state=rule["Next"])
                    return
            if "Default" not in state:
                raise _UnprefixedError(E.NO_CHOICE_MATCHED, "No Matches!")
            assigned = ev.template(state["Assign"], "Assign") if "Assign" in state else None
            output = ev.template(state["Output"], "Output") if "Output" in state else frame.raw_input
            self._exit_state(frame, output, assigned=assigned, next_state=state["Default"])
            return
        ev2 = self._jsonpath(frame, frame.raw_input)
        data = ev2.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
        ev_data = ev2.with_data(data)
        target: str | None = None
        assign: Any = None
        for rule in state.get("Choices", ()):
            if evaluate_rule(rule, ev_data.resolve):
                target, assign = rule["Next"], rule.get("Assign")
                break
        else:
            if "Default" not in state:
                raise _UnprefixedError(E.NO_CHOICE_MATCHED, "No Matches!")
            target, assign = state["Default"], state.get("Assign")
        assigned = ev_data.assign(assign) if assign is not None else None
        output = ev_data.select_path(state["OutputPath"]) if "OutputPath" in state else data
        self._exit_state(frame, output, assigned=assigned, next_state=target)

    def _wait(self, frame: Frame) -> None:
        state = frame.state
        seconds: float | None = None
        timestamp: str | None = None
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            output = ev.template(state["Output"], "Output") if "Output" in state else frame.raw_input
            assigned = ev.template(state["Assign"], "Assign") if "Assign" in state else None
            if "Seconds" in state:
                value = state["Seconds"]
                if is_expression(value):
                    value = ev.evaluate(value, "Seconds")
                seconds = _wait_seconds(value, "Seconds", None)
            elif "Timestamp" in state:
                value = state["Timestamp"]
                if is_expression(value):
                    value = ev.evaluate(value, "Timestamp")
                if not isinstance(value, str) or parse_timestamp(value) is None:
                    raise StatesError(
                        E.QUERY_EVALUATION_ERROR,
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
                        f"string: {value if isinstance(value, str) else dumps(value)}",
                    )
                timestamp = value
        else:
            ev2 = self._jsonpath(frame, frame.raw_input)
            data = ev2.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
            evd = ev2.with_data(data)
            assigned = evd.assign(state["Assign"]) if "Assign" in state else None
            output = evd.select_path(state["OutputPath"]) if "OutputPath" in state else data
            if "Seconds" in state:
                seconds = _wait_seconds(state["Seconds"], "Seconds", None)
            elif "Timestamp" in state:
                timestamp = state["Timestamp"]
                if parse_timestamp(str(timestamp)) is None:
                    raise StatesError(
                        E.RUNTIME,
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
                        f"string: {timestamp}",
                    )
            elif "SecondsPath" in state:
                path = state["SecondsPath"]
                try:
                    value = evd.resolve(path)
                except paths.PathNotFound:
                    raise StatesError(
                        E.RUNTIME, f"The SecondsPath parameter does not reference an input value: {path}"
                    ) from None
                seconds = _wait_seconds(value, "SecondsPath", path)
            elif "TimestampPath" in state:
                path = state["TimestampPath"]
                try:
                    value = evd.resolve(path)
                except paths.PathNotFound:
                    value = None
                if not isinstance(value, str) or parse_timestamp(value) is None:
                    shown = value if isinstance(value, str) else dumps(value)
                    raise StatesError(
                        E.RUNTIME,
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                        f"date-time format string: {path} == {shown}",
                    )
                timestamp = value
        due = self.now
        if seconds is not None:
            due = self.now + seconds
        elif timestamp is not None:
            parsed = parse_timestamp(timestamp)
            assert parsed is not None
            due = max(self.now, parsed.timestamp())
            if due - self.now > MAX_WAIT_SECONDS:
                raise StatesError(E.RUNTIME, "Wait state delay is too long.")
        frame.effective = output
        frame.assigned = assigned
        frame.phase = Phase.WAIT
        if due <= self.now:
            self._exit_state(frame, output, assigned=assigned, kind="Wait")
            return
        self._set_timer(frame, due)

    def _task_state(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            arguments = ev.template(state["Arguments"], "Arguments") if "Arguments" in state else frame.raw_input
            timeout = _int_field(state, "TimeoutSeconds", ev=ev)
            heartbeat = _int_field(state, "HeartbeatSeconds", ev=ev)
            credentials = ev.template(state["Credentials"], "Credentials") if "Credentials" in state else None
        else:
            arguments = self._effective_input(frame)
            jp = self._jsonpath(frame, frame.raw_input)
            timeout = _path_int(state, "TimeoutSeconds", jp)
            heartbeat = _path_int(state, "HeartbeatSeconds", jp)
            credentials = jp.template(state["Credentials"]) if "Credentials" in state else None
        frame.effective = arguments
        self._schedule_task(frame, arguments, timeout, heartbeat, credentials)

    def _schedule_task(
        self, frame: Frame, arguments: Any, timeout: int | None, heartbeat: int | None, credentials: Any
    ) -> None:
        state = frame.state
        self._task_seq += 1
        attempt = frame.retry_total
        task_id = f"{frame.scope}#{frame.state_name}#{frame.entered_id}#{attempt}"
        resource = str(state["Resource"])
        request = TaskRequest(
            id=task_id,
            state_name=frame.state_name,
            resource=resource,
            parameters=arguments,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            credentials=credentials,
            attempt=attempt,
            scope=frame.scope,
        )
        rtype, res = _split_resource(resource)
        details: dict[str, Any] = {
            "resourceType": rtype,
            "resource": res,
            "region": self.info.region,
            "parameters": dumps(arguments),
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        if heartbeat is not None:
            details["heartbeatInSeconds"] = heartbeat
        if credentials is not None:
            details["taskCredentials"] = {"roleArn": credentials.get("RoleArn") if isinstance(credentials, dict) else None}
        frame.task = request
        frame.phase = Phase.TASK
        self.tasks[task_id] = request
        self._task_frames[task_id] = frame
        self._emit(frame, "TaskScheduled", details)

    def _retry_task(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            timeout = _int_field(state, "TimeoutSeconds", ev=ev)
            heartbeat = _int_field(state, "HeartbeatSeconds", ev=ev)
            credentials = ev.template(state["Credentials"], "Credentials") if "Credentials" in state else None
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            timeout = _path_int(state, "TimeoutSeconds", jp)
            heartbeat = _path_int(state, "HeartbeatSeconds", jp)
            credentials = jp.template(state["Credentials"]) if "Credentials" in state else None
        self._schedule_task(frame, frame.effective, timeout, heartbeat, credentials)

    def _parallel(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            data = ev.template(state["Arguments"], "Arguments") if "Arguments" in state else frame.raw_input
        else:
            data = self._effective_input(frame)
        frame.effective = data
        self._launch_parallel(frame)

    def _launch_parallel(self, frame: Frame) -> None:
        branches = frame.state["Branches"]
        self._emit(frame, "ParallelStateStarted", {})
        children = Children(
            is_map=False,
            inputs=[frame.effective] * len(branches),
            programs=list(branches),
            results=[None] * len(branches),
        )
        self._start_children(frame, children)

    def _map(self, frame: Frame) -> None:
        state = frame.state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        jsonata = self._ql(frame) == JSONATA
        if jsonata:
            ev = self._jsonata(frame)
            if "Items" in state:
                items_field = state["Items"]
                items = ev.template(items_field, "Items")
                if not isinstance(items, list):
                    body = items_field[2:-2].strip() if is_expression(items_field) else dumps(items_field)
                    raise StatesError(
                        E.QUERY_EVALUATION_ERROR,
                        f"The JSONata expression '{body}' specified for the field 'Items' returned an unexpected "
                        f"result type. Expected 'array', but was '{_type_name(items)}' for value: {dumps(items)}",
                    )
            else:
                items = frame.raw_input
            base = frame.raw_input
            max_conc = _int_field(state, "MaxConcurrency", ev=ev) or 0
            tol_count = _int_field(state, "ToleratedFailureCount", ev=ev)
            tol_pct_raw = state.get("ToleratedFailurePercentage")
            tol_pct = ev.evaluate(tol_pct_raw, "ToleratedFailurePercentage") if is_expression(tol_pct_raw) else tol_pct_raw
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            base = jp.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
            jb = jp.with_data(base)
            if "ItemsPath" in state:
                items = jb.select_path(state["ItemsPath"])
            else:
                items = base
            max_conc = _map_number(state, "MaxConcurrency", jb, integer=True) or 0
            tol_count = _map_number(state, "ToleratedFailureCount", jb, integer=True)
            tol_pct = _map_number(state, "ToleratedFailurePercentage", jb, integer=False)
        if tol_count is not None and tol_count < 0:
            raise StatesError(E.RUNTIME, "ToleratedFailureCount cannot be negative.")
        if tol_pct is not None and not (0 <= tol_pct <= 100):
            raise StatesError(E.RUNTIME, "ToleratedFailurePercentage must be between 0 and 100.")
        if not isinstance(items, list):
            raise StatesError(
                E.QUERY_EVALUATION_ERROR if jsonata else E.RUNTIME,
                f"Map state input must be an array but was: {dumps(items)}",
            )
        if "ItemBatcher" in state:
            items = self._batch(frame, state["ItemBatcher"], items, base)
        selector_key = "ItemSelector" if "ItemSelector" in state else ("Parameters" if "Parameters" in state else None)
        inputs: list[Any] = items
        if selector_key is not None:
            selector = state[selector_key]
            inputs = []
            for index, item in enumerate(items):
                frame.map_item = (index, item)
                if jsonata:
                    inputs.append(self._jsonata(frame).template(selector, selector_key))
                else:
                    inputs.append(self._jsonpath(frame, base).template(selector))
            frame.map_item = None
        distributed = (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
        frame.effective = base
        self._emit(frame, "MapStateStarted", {"length": len(inputs)})
        if distributed:
            processor = dict(processor)
        children = Children(
            is_map=True,
            inputs=inputs,
            programs=[processor],
            results=[None] * len(inputs),
            max_concurrency=int(max_conc) if max_conc else 0,
            tolerated_count=int(tol_count) if tol_count is not None else None,
            tolerated_percentage=float(tol_pct) if tol_pct is not None else None,
        )
        self._start_children(frame, children)

    def _batch(self, frame: Frame, batcher: dict[str, Any], items: list[Any], base: Any) -> list[Any]:
        jp = self._jsonpath(frame, base)
        max_items = batcher.get("MaxItemsPerBatch")
        if "MaxItemsPerBatchPath" in batcher:
            max_items = jp.select_path(batcher["MaxItemsPerBatchPath"])
        max_bytes = batcher.get("MaxInputBytesPerBatch")
        if "MaxInputBytesPerBatchPath" in batcher:
            max_bytes = jp.select_path(batcher["MaxInputBytesPerBatchPath"])
        batch_input = jp.template(batcher["BatchInput"]) if "BatchInput" in batcher else None
        batches: list[Any] = []
        current: list[Any] = []
        size = 0
        for item in items:
            item_size = len(dumps(item).encode())
            full = (max_items and len(current) >= int(max_items)) or (
                max_bytes and current and size + item_size > int(max_bytes)
            )
            if full:
                batches.append(current)
                current, size = [], 0
            current.append(item)
            size += item_size
        if current:
            batches.append(current)
        out = []
        for batch in batches:
            entry: dict[str, Any] = {}
            if batch_input is not None:
                entry["BatchInput"] = batch_input
            entry["Items"] = batch
            out.append(entry)
        return out

    def _retry_children(self, frame: Frame) -> None:
        if frame.state["Type"] == "Parallel":
            self._launch_parallel(frame)
        else:
            self._map(frame)


class _UnprefixedError(StatesError):
    """An error whose cause is shown as is (Fail states, no-choice-matched)."""

    prefixed = True

    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error or "", cause or "")
        self.error = error  # type: ignore[assignment]
        self.cause = cause  # type: ignore[assignment]


def _prefixed(exc: StatesError, frame: Frame) -> StatesError:
    out = StatesError(
        exc.error,
        f"An error occurred while executing the state '{frame.state_name}' (entered at the event id "
        f"#{frame.entered_id}). {exc.cause}",
    )
    out.prefixed = True  # type: ignore[attr-defined]
    return out


def _matches(error_equals: Any, error: str | None) -> bool:
    for name in error_equals:
        if name == error:
            return True
        if name == E.ALL and error not in (E.RUNTIME, E.DATA_LIMIT_EXCEEDED):
            return True
        if name == E.TASK_FAILED and error not in (E.TIMEOUT, E.RUNTIME, E.DATA_LIMIT_EXCEEDED) and error and not error.startswith("States.") :
            return True
    return False


def _matching(catchers: Any, error: str | None) -> dict[str, Any] | None:
    for catcher in catchers:
        if _matches(catcher.get("ErrorEquals", ()), error):
            return catcher  # type: ignore[no-any-return]
    return None


def _split_resource(resource: str) -> tuple[str, str]:
    """``arn:aws:states:::lambda:invoke`` -> (``lambda``, ``invoke``); ``reflow:net`` -> (``reflow``, ``net``)."""
    if resource.startswith("arn:"):
        parts = resource.split(":")
        if len(parts) >= 7 and parts[2] == "states" and parts[5]:
            return parts[5], ":".join(parts[6:])
        return parts[2] if len(parts) > 2 else "arn", resource
    kind, _, rest = resource.partition(":")
    return kind, rest


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "function"


def _wait_seconds(value: Any, field_name: str, path: str | None) -> int:
    shown = f"{path} == {dumps(value)}" if path else dumps(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        if path is None:
            raise StatesError(E.QUERY_EVALUATION_ERROR, f"The {field_name} field must be a number, got {shown}")
        raise StatesError(E.RUNTIME, f"The {field_name} parameter cannot be parsed as a long value: {shown}")
    if isinstance(value, float) and not value.is_integer():
        if path is None:
            raise StatesError(E.QUERY_EVALUATION_ERROR, f"The {field_name} field must be an integer, got {shown}")
        raise StatesError(E.RUNTIME, f"The {field_name} parameter cannot be parsed as a long value: {shown}")
    if value < 0:
        if path is None:
            raise StatesError(E.QUERY_EVALUATION_ERROR, f"The {field_name} field must be non-negative, got {shown}")
        raise StatesError(E.RUNTIME, f"The {field_name} parameter references a negative value: {shown}")
    if value > MAX_WAIT_SECONDS:
        raise StatesError(E.RUNTIME, "Wait state delay is too long.")
    return int(value)


def _int_field(state: dict[str, Any], name: str, *, ev: Evaluator) -> int | None:
    value = state.get(name)
    if is_expression(value):
        value = ev.evaluate(value, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise StatesError(E.QUERY_EVALUATION_ERROR, f"The {name} field must be an integer, got {dumps(value)}")
    return int(value)


def _path_int(state: dict[str, Any], name: str, jp: JsonPathEval) -> int | None:
    if name in state:
        return int(state[name])
    path = state.get(name + "Path")
    if path is None:
        return None
    value = jp.select_path(path)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StatesError(
            E.RUNTIME, f"The {name}Path field refers to value {dumps(value)} which is not a valid positive integer"
        )
    return value


def _map_number(state: dict[str, Any], name: str, jp: JsonPathEval, *, integer: bool) -> float | None:
    if name in state:
        return state[name]  # type: ignore[no-any-return]
    path = state.get(name + "Path")
    if path is None:
        return None
    value = jp.select_path(path)
    number: float | None = None
    if isinstance(value, str):
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            number = None
    elif not isinstance(value, bool) and isinstance(value, int | float):
        number = value if not integer or float(value).is_integer() else None
    if number is None:
        shown = value if isinstance(value, str) else dumps(value)
        kind = "integer" if integer else "float"
        raise StatesError(E.RUNTIME, f'The {name}Path field refers to value "{shown}" which is not a valid {kind}: {path}')
    return number


def format_timestamp_f(timestamp: float) -> str:
    """Seconds since the epoch in the context object's format."""
    from datetime import UTC, datetime

    return format_timestamp(datetime.fromtimestamp(timestamp, UTC))


_HANDLERS: dict[str, Callable[[Execution, Frame], None]] = {
    "Pass": Execution._pass,
    "Succeed": Execution._succeed,
    "Fail": Execution._fail,
    "Choice": Execution._choice,
    "Wait": Execution._wait,
    "Task": Execution._task_state,
    "Parallel": Execution._parallel,
    "Map": Execution._map,
}

_HANDLERS_RETRY: dict[str, Callable[[Execution, Frame], None]] = {
    "Task": Execution._retry_task,
    "Parallel": Execution._retry_children,
    "Map": Execution._retry_children,
}


def _seeded_uuid_factory(rng: random.Random) -> Callable[[], str]:
    def make() -> str:
        return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))

    return make

