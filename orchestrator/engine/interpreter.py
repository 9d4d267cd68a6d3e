"""The execution machine: a definition, an input and outside facts in; history events out.

This is the pure, deterministic core that both ``run-local`` and the durable worker drive. It never
reads a clock, never draws global randomness and never performs I/O: the driver passes the time with
every call, randomness comes from a seeded ``random.Random`` and a UUID factory, and the outside world
only enters through a few doors: ``start``, ``task_started``/``task_heartbeat``/``task_succeeded``/
``task_failed``/``task_timed_out``, ``advance_to`` (timers that fell due), ``stop``, ``redrive`` and
``record`` (our own events, such as approvals). Everything the machine decides comes out as
``HistoryEvent``s given to ``sink``, in Step Functions' vocabulary. Each door's first event is the
one that reports the outside fact (``TaskStarted``, ``TaskHeartbeat``, ``ExecutionAborted``...),
which is what lets ``replay`` fold a stored history back.

An execution is a tree of *frames*: the top-level thread, each Parallel branch and each Map iteration.
A frame walks its own States object; a frame blocked on a task or a timer simply waits, the others go
on. Frames are run depth-first, so a Map over 100,000 Pass items keeps one iteration alive at a time.

Timers are the machine's own: Wait states, retry back-offs (jittered from the seeded generator), a
Task's ``TimeoutSeconds`` (running from ``TaskStarted``) and ``HeartbeatSeconds`` (from ``TaskStarted``
or the last ``TaskHeartbeat``), and the execution's ``TimeoutSeconds``. ``next_due`` says when the next
one falls due; ``advance_to`` past a task's deadline records ``TaskTimedOut`` (``States.Timeout`` or
``States.HeartbeatTimeout``), which Retry and Catch then handle like any task failure. A durable driver
therefore only has to store ``next_due`` as a timer and call ``advance_to`` when it fires: deadlines
survive restarts because they are derived from the history. ``task_timed_out`` remains for drivers
that learn of a timeout from outside (run-local's mocks throwing ``States.Timeout``).

The history follows ``get-execution-history``:

* ids run 1..n without gaps; ``ExecutionStarted`` and the first state's ``...StateEntered`` have
  ``previousEventId`` 0, every other event points at the previous event of its own thread; the
  events that end a branch or an iteration are folded into the parent, so ``ParallelStateSucceeded``
  points at the last event of its branches;
* a Task state: ``TaskStateEntered``, ``TaskScheduled``, ``TaskStarted``, then ``TaskSucceeded`` and
  ``TaskStateExited``, or ``TaskFailed``/``TaskTimedOut`` followed by a retry (``TaskScheduled``
  again, after the back-off), by ``TaskStateExited`` when a catcher takes the error (its output is
  the catcher's), or by the failure of the enclosing thread;
* Parallel/Map: ``...StateEntered``, ``...StateStarted``, the branches or iterations (Map iterations
  framed by ``MapIterationStarted`` and ``MapIterationSucceeded``/``Failed``/``Aborted``), then
  ``...StateSucceeded`` and ``...StateExited``; a failure that no retrier takes records
  ``...StateFailed`` (then ``...StateExited`` if a catcher takes it);
* a branch or iteration aborted because a sibling failed records ``<Type>StateAborted`` for the
  Task, Wait, Parallel or Map state it was in (and ``MapIterationAborted``); ``stop`` and the
  execution's ``TimeoutSeconds`` record only ``ExecutionAborted``/``ExecutionTimedOut``.

Error matching (Retry and Catch): ``States.Runtime`` is never retried nor caught, whatever
``ErrorEquals`` says, and records no ``...StateFailed``; ``States.ALL`` matches every other error but
``States.DataLimitExceeded`` (which only its own name matches); ``States.TaskFailed`` matches what a
Task's task reported, timeouts excepted; ``States.Timeout`` also matches ``States.HeartbeatTimeout``.
"""

from __future__ import annotations

import heapq
import random
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from orchestrator import errors
from orchestrator.asl import paths
from orchestrator.asl.choice import evaluate_rule
from orchestrator.asl.dataflow import JsonPathEval, Scope, apply_result_path, dumps
from orchestrator.asl.jsonata_eval import Evaluator, is_expression
from orchestrator.asl.jsontypes import json_type
from orchestrator.asl.timestamps import format_timestamp, parse_timestamp
from orchestrator.engine.events import OWN_TYPES, HistoryEvent
from orchestrator.errors import StatesError

JSONPATH = "JSONPath"
JSONATA = "JSONata"
MAX_WAIT_SECONDS = 2**31 - 1
DEFAULT_PAYLOAD_LIMIT = 256 * 1024

# Errors raised while evaluating a state's own fields get AWS's "An error occurred while executing the
# state ..." prefix in their cause.
_LOCATED_ERRORS = frozenset(
    {
        errors.RUNTIME,
        errors.QUERY_EVALUATION_ERROR,
        errors.INTRINSIC_FAILURE,
        errors.RESULT_PATH_MATCH_FAILURE,
    }
)
# States that can be blocked, hence aborted (they have a ``<Type>StateAborted`` event).
_ABORTABLE = frozenset({"Task", "Wait", "Parallel", "Map"})
_RETRIABLE = frozenset({"Task", "Parallel", "Map"})
# Events that never count against ``Limits.max_events`` (the first and the last one).
_UNCAPPED = frozenset(
    {"ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
)

Source = Literal["state", "task", "children"]


class Phase(Enum):
    """Where a frame is within its current state."""

    ENTER = "enter"  # about to enter the state: record ``...StateEntered``, then run it
    RUN = "run"  # run the state (entered already; also after a retry back-off)
    TASK = "task"  # waiting for the outside world to answer a task
    WAIT = "wait"  # waiting for a Wait state's timer
    RETRY = "retry"  # waiting for a retry back-off timer
    CHILDREN = "children"  # running Parallel branches or Map iterations
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
    """A Task state asking the outside world to do something; answered through the execution.

    ``id`` is also the task token (``$$.Task.Token``); ``attempt`` counts retries (0 first).
    ``started_at`` is when ``TaskStarted`` was recorded, ``heartbeat_at`` the last heartbeat (or the
    start): the ``TimeoutSeconds`` deadline runs from the first, the ``HeartbeatSeconds`` one from the
    second.
    """

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
    started_at: float | None = None
    heartbeat_at: float | None = None

    @property
    def timeout_due(self) -> float | None:
        """When the task times out (``States.Timeout``): None until it started or without a limit."""
        if self.started_at is None or self.timeout_seconds is None:
            return None
        return self.started_at + self.timeout_seconds

    @property
    def heartbeat_due(self) -> float | None:
        """When the task misses its heartbeat (``States.HeartbeatTimeout``), if it has a deadline."""
        if self.heartbeat_at is None or self.heartbeat_seconds is None:
            return None
        return self.heartbeat_at + self.heartbeat_seconds


# What a timer does when it falls due: end a Wait or a retry back-off (``state``), or time a task out
# (``timeout``: its TimeoutSeconds; ``heartbeat``: its HeartbeatSeconds).
TimerKind = Literal["state", "timeout", "heartbeat"]
# A timer: due time, sequence number (ties fire in the order they were set), frame, kind, task token.
Timer = tuple[float, int, "Frame", TimerKind, str]


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
    failed: bool = False
    succeeded: set[int] = field(default_factory=set)
    # The branches/iterations that failed or were aborted, kept for a redrive (which re-runs only
    # these, from the state where each stopped, and the ones that never started).
    stopped: dict[int, Frame] = field(default_factory=dict)


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
    wait_output: Any = None  # a Wait state's output and assignments, applied when its timer fires
    assigned: dict[str, Any] | None = None
    token: str | None = None
    task: TaskRequest | None = None
    children: Children | None = None
    queued: bool = False
    alive: bool = True
    map_item: tuple[int, Any] | None = None
    unfinished: Children | None = None  # the branches/iterations of this frame's Parallel/Map that failed
    redriven: bool = False  # entering its state again for a redrive: a Parallel/Map resumes ``unfinished``


@dataclass(slots=True)
class Limits:
    """Service limits; Step Functions' defaults.

    ``payload_bytes`` bounds every input, output and task result (``States.DataLimitExceeded``).
    ``max_events`` bounds the history: when an event other than the first or a terminal one takes the
    id ``max_events - 1``, ``ExecutionFailed`` (``States.Runtime``) follows it, so a history never
    holds more than ``max_events`` events. None means no bound.
    """

    payload_bytes: int = DEFAULT_PAYLOAD_LIMIT
    max_events: int | None = 25_000


class _HistoryFull(Exception):
    """The history reached ``Limits.max_events``: unwinds to the door, which fails the execution."""


class _FinalError(StatesError):
    """A failure whose cause is final: shown as is, never prefixed with the state's location.

    ``name`` and ``reason`` keep a missing ``Error``/``Cause`` (a Fail state without them) as None;
    ``error``/``cause`` hold ``""`` then, which is what a catcher's error output shows.
    """

    def __init__(self, name: str | None, reason: str | None) -> None:
        super().__init__(name or "", reason or "")
        self.name = name
        self.reason = reason


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
        self._timers: list[Timer] = []
        self._timer_seq = 0
        self._ready: deque[Frame] = deque()
        self._root: Frame | None = None
        self._timeout_at: float | None = None
        max_events = self.limits.max_events
        # The last event id a non-terminal event may take (one is kept for ExecutionFailed).
        self._event_cap = max_events - 1 if max_events is not None else float("inf")

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
        self._root = root
        text = dumps(input_value)
        details: dict[str, Any] = {
            "input": text,
            "inputDetails": {"truncated": False},
            "roleArn": self.info.role_arn,
        }
        self._emit(None, "ExecutionStarted", details)
        if len(text.encode()) > self.limits.payload_bytes:
            self._fail_execution(
                root,
                errors.DATA_LIMIT_EXCEEDED,
                "The input to the execution exceeds the maximum number of bytes service limit.",
            )
            return
        timeout = self.definition.get("TimeoutSeconds")
        if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
            self._timeout_at = now + timeout
        with self._door():
            self._enter(root, self.definition.get("StartAt", ""), input_value)
            self._run()

    def task_started(self, task_id: str, now: float) -> None:
        """The outside world picked the task up (``TaskStarted``)."""
        task, frame = self._task(task_id)
        if task.started:
            raise ValueError(f"task {task_id!r} has started already")
        self.now = max(self.now, now)
        task.started = True
        task.started_at = task.heartbeat_at = self.now
        with self._door():
            self._emit(frame, "TaskStarted", _resource_details(task.resource))
            if task.timeout_seconds is not None:
                self._set_timer(frame, self.now + task.timeout_seconds, "timeout", task.id)
            if task.heartbeat_seconds is not None:
                self._set_timer(frame, self.now + task.heartbeat_seconds, "heartbeat", task.id)

    def task_heartbeat(self, task_id: str, now: float) -> None:
        """The started task reports progress (``TaskHeartbeat``): its HeartbeatSeconds deadline restarts.

        ``SendTaskHeartbeat`` of Step Functions. It does not move the TimeoutSeconds deadline.
        """
        task, frame = self._task(task_id)
        if not task.started:
            raise ValueError(f"task {task_id!r} has not started: only a started task heartbeats")
        self.now = max(self.now, now)
        task.heartbeat_at = self.now
        with self._door():
            self._emit(frame, "TaskHeartbeat", _resource_details(task.resource))
            if task.heartbeat_seconds is not None:
                self._set_timer(frame, self.now + task.heartbeat_seconds, "heartbeat", task.id)

    def task_succeeded(self, task_id: str, output: Any, now: float) -> None:
        """The task's result (``TaskSucceeded``); the state then completes."""
        task, frame = self._task(task_id)
        self.now = max(self.now, now)
        self._forget_task(task_id)
        text = dumps(output)
        details = _resource_details(task.resource)
        details["output"] = text
        details["outputDetails"] = {"truncated": False}
        with self._door():
            self._emit(frame, "TaskSucceeded", details)
            try:
                if len(text.encode()) > self.limits.payload_bytes:
                    raise StatesError(
                        errors.DATA_LIMIT_EXCEEDED,
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
        details = _resource_details(task.resource)
        details["error"] = error
        details["cause"] = cause
        with self._door():
            self._emit(frame, "TaskFailed", details)
            self._state_failed(frame, _FinalError(error, cause), source="task")
            self._run()

    def task_timed_out(self, task_id: str, now: float, *, heartbeat: bool = False) -> None:
        """The task ran past TimeoutSeconds or missed a heartbeat (``TaskTimedOut``).

        The error is ``States.Timeout``, or ``States.HeartbeatTimeout`` for a missed heartbeat (which a
        retrier or catcher naming ``States.Timeout`` also matches).
        """
        task, frame = self._task(task_id)
        self.now = max(self.now, now)
        with self._door():
            self._time_out(task, frame, heartbeat=heartbeat)
            self._run()

    def next_due(self) -> float | None:
        """When the next timer (Wait, retry back-off, task deadline, execution timeout) falls due."""
        if self.status != "RUNNING":
            return None
        timers = self._timers
        while timers and not self._timer_live(timers[0]):
            heapq.heappop(timers)
        due = timers[0][0] if timers else None
        timeout = self._timeout_at
        if timeout is not None and (due is None or timeout <= due):
            return timeout
        return due

    def advance_to(self, now: float) -> None:
        """Let time pass: fire every timer due at or before ``now``, in order."""
        while self.status == "RUNNING":
            due = self.next_due()
            if due is None or due > now:
                break
            self.now = max(self.now, due)
            if due == self._timeout_at:
                self._halt("ExecutionTimedOut", "TIMED_OUT", errors.TIMEOUT, "Execution timed out.")
                break
            _, _, frame, kind, token = heapq.heappop(self._timers)
            with self._door():
                if kind == "state":
                    self._fire(frame)
                else:
                    self._time_out(self.tasks[token], frame, heartbeat=kind == "heartbeat")
                self._run()
        self.now = max(self.now, now)

    def stop(self, error: str | None, cause: str | None, now: float) -> None:
        """Abort the execution (``ExecutionAborted``); pending tasks and timers are dropped."""
        if self.status != "RUNNING":
            return
        self.now = max(self.now, now)
        self._halt("ExecutionAborted", "ABORTED", error, cause)

    def redrive(self, now: float) -> None:
        """Run a FAILED, TIMED_OUT or ABORTED execution again from where it stopped (``ExecutionRedriven``).

        The top-level state that failed or was running when the execution ended is entered again with
        the input it had; the states before it keep their results and are not run again. A Parallel or
        Map state re-runs only the branches or iterations that did not succeed (each from the state
        where it stopped, recursively) and those that never started, keeping the results of the
        others; a distributed-mode Map records ``MapRunRedriven``. ``$$.Execution.RedriveCount`` counts
        the redrives.
        """
        root = self._root
        if self.status not in ("FAILED", "TIMED_OUT", "ABORTED") or root is None or not root.state_name:
            raise ValueError(f"an execution that is {self.status} cannot be redriven")
        self.now = max(self.now, now)
        self.info = replace(self.info, redrive_count=self.info.redrive_count + 1)
        self.status = "RUNNING"
        self.error = self.cause = None
        with self._door():
            self._emit(None, "ExecutionRedriven", {"redriveCount": self.info.redrive_count})
            timeout = self.definition.get("TimeoutSeconds")
            if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
                self._timeout_at = self.now + timeout
            _freeze(root)  # stopped or timed out while branches ran: they are unfinished now
            root.alive = True
            self._redrive(root)
            self._run()

    def _redrive(self, frame: Frame) -> None:
        """Enter ``frame``'s state again with the input it had; a Parallel/Map resumes its unfinished run."""
        frame.task = None
        frame.queued = False
        frame.children = None
        frame.redriven = True
        self._enter(frame, frame.state_name, frame.raw_input)

    def record(self, kind: str, details: dict[str, Any], scope: str, now: float) -> int:
        """Record one of our own events (``OWN_TYPES``: approvals, role sessions...) and return its id.

        The event belongs to the running thread ``scope`` (``""`` for the top level) and changes
        nothing else; the history replays it through this door.
        """
        if kind not in OWN_TYPES:
            raise ValueError(f"{kind!r} is not one of our own event types; the machine emits the others")
        if kind == "TaskHeartbeat":
            raise ValueError("a TaskHeartbeat moves a deadline: report it through task_heartbeat")
        frame = self._find_frame(scope) if self.status == "RUNNING" else None
        if frame is None:
            raise KeyError(f"no running thread {scope!r}")
        self.now = max(self.now, now)
        with self._door():
            return self._emit(frame, kind, details)
        return self.last_event_id - 1  # the history is full: ExecutionFailed followed the event

    def pending_tasks(self) -> list[TaskRequest]:
        """Tasks scheduled and not yet answered, in the order they were scheduled."""
        return list(self.tasks.values())

    def _find_frame(self, scope: str) -> Frame | None:
        stack = [self._root] if self._root is not None else []
        while stack:
            frame = stack.pop()
            if frame.scope == scope:
                return frame if frame.alive else None
            if frame.children is not None:
                stack.extend(frame.children.active.values())
        return None

    # ------------------------------------------------------------------ events
    @contextmanager
    def _door(self) -> Iterator[None]:
        """Around the work of a door: a full history fails the execution (``States.Runtime``)."""
        try:
            yield
        except _HistoryFull:
            self._fail_execution(
                None,
                errors.RUNTIME,
                f"The execution history reached the limit of {self.limits.max_events} events.",
            )

    def _emit(self, frame: Frame | None, kind: str, details: dict[str, Any]) -> int:
        self.last_event_id += 1
        event_id = self.last_event_id
        if frame is None:
            prev = event_id - 1
        else:
            prev = frame.last_event_id
            frame.last_event_id = event_id
        if self.sink is not None:
            self.sink(HistoryEvent(event_id, prev, self.now, kind, details, frame.scope if frame else ""))
        if event_id >= self._event_cap and kind not in _UNCAPPED:
            raise _HistoryFull
        return event_id

    def _end(self, frame: Frame | None, kind: str, details: dict[str, Any]) -> None:
        self._emit(frame, kind, details)
        self.tasks.clear()
        self._task_frames.clear()
        self._timers.clear()
        self._ready.clear()

    def _halt(self, kind: str, status: str, error: str | None, cause: str | None) -> None:
        """End a running execution from outside its states (``stop``, the execution timing out).

        Only the terminal event is recorded: what the execution was doing simply stops.
        """
        self.status = status
        self.error, self.cause = error, cause
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        self._end(None, kind, details)

    # ------------------------------------------------------------------ scheduling
    def _run(self) -> None:
        ready = self._ready
        while ready and self.status == "RUNNING":
            frame = ready.popleft()
            frame.queued = False
            if frame.alive:
                self._step(frame)

    def _wake(self, frame: Frame) -> None:
        if not frame.queued and frame.alive:
            frame.queued = True
            self._ready.append(frame)

    def _set_timer(self, frame: Frame, due: float, kind: TimerKind = "state", token: str = "") -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, frame, kind, token))

    def _timer_live(self, timer: Timer) -> bool:
        """Whether a timer still means something; the others are dropped lazily, when they surface.

        A task's deadline dies with the task (answered, withdrawn) and a heartbeat deadline also
        when a later heartbeat replaced it.
        """
        due, _, frame, kind, token = timer
        if not frame.alive:
            return False
        if kind == "state":
            return True
        task = frame.task
        if task is None or task.id != token or token not in self.tasks:
            return False
        return due == (task.timeout_due if kind == "timeout" else task.heartbeat_due)

    def _time_out(self, task: TaskRequest, frame: Frame, *, heartbeat: bool) -> None:
        """The task ran past a deadline (``TaskTimedOut``); Retry and Catch apply."""
        self._forget_task(task.id)
        error = errors.HEARTBEAT_TIMEOUT if heartbeat else errors.TIMEOUT
        details = _resource_details(task.resource)
        details["error"] = error
        self._emit(frame, "TaskTimedOut", details)
        self._state_failed(frame, _FinalError(error, ""), source="task")

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
        frame.raw_input = raw_input
        frame.phase = Phase.ENTER
        frame.retry_counts = []
        frame.retry_total = 0
        frame.token = None
        self._wake(frame)

    def _step(self, frame: Frame) -> None:
        """Run ``frame`` until it blocks, finishes or hands over to a child."""
        while frame.alive and self.status == "RUNNING":
            phase = frame.phase
            if phase is Phase.ENTER or phase is Phase.RUN:
                if phase is Phase.ENTER:
                    states = frame.program.get("States")
                    state = states.get(frame.state_name) if isinstance(states, dict) else None
                    if not isinstance(state, dict):
                        frame.state = {}
                        self._frame_failed(
                            frame,
                            _FinalError(
                                errors.RUNTIME, f"The state machine has no state named '{frame.state_name}'."
                            ),
                        )
                        return
                    frame.state = state
                    frame.entered_time = self.now
                    frame.entered_id = self._emit(
                        frame,
                        f"{state.get('Type')}StateEntered",
                        {
                            "name": frame.state_name,
                            # the input was size-checked as the previous output; encode it only for a history
                            "input": dumps(frame.raw_input) if self.sink is not None else "",
                            "inputDetails": {"truncated": False},
                        },
                    )
                    frame.phase = Phase.RUN
                handler = _HANDLERS.get(frame.state.get("Type", ""))
                try:
                    if handler is None:
                        raise StatesError(
                            errors.RUNTIME, f"Unsupported state type {frame.state.get('Type')!r}."
                        )
                    handler(self, frame)
                except StatesError as exc:
                    self._state_failed(frame, exc)
                frame.redriven = False
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
        """A timer of ``frame`` fell due: a Wait state ends or a retry back-off is over."""
        if not frame.alive:
            return
        if frame.phase is Phase.WAIT:
            try:
                self._exit_state(frame, frame.wait_output, assigned=frame.assigned)
            except StatesError as exc:
                self._state_failed(frame, exc)
        elif frame.phase is Phase.RETRY:
            frame.phase = Phase.RUN
            self._wake(frame)

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
        if frame.state.get("Type") in _RETRIABLE:
            ctx["State"]["RetryCount"] = frame.retry_total
        if frame.token is not None:
            ctx["Task"] = {"Token": frame.token}
        if frame.map_item is not None:
            ctx["Map"] = {"Item": {"Index": frame.map_item[0], "Value": frame.map_item[1]}}
        return ctx

    def _jsonpath(self, frame: Frame, data: Any) -> JsonPathEval:
        return JsonPathEval(data, lambda: self._context(frame), frame.variables, self.rng, self.new_uuid)

    def _jsonata(self, frame: Frame, **states: Any) -> Evaluator:
        bound = {"input": frame.raw_input, "context": self._context(frame)}
        bound.update(states)
        return Evaluator(bound, frame.variables.visible(), self.rng, self.new_uuid)

    def _effective_input(self, frame: Frame, jp: JsonPathEval) -> Any:
        """JSONPath: InputPath, then the Parameters template."""
        state = frame.state
        data = jp.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
        if "Parameters" in state:
            data = jp.with_data(data).template(state["Parameters"])
        return data

    def _check_size(self, frame: Frame, value: Any, what: str) -> str:
        text = dumps(value)
        if len(text.encode()) > self.limits.payload_bytes:
            raise StatesError(
                errors.DATA_LIMIT_EXCEEDED,
                f"The state/task '{frame.state_name}' {what} with a size exceeding the maximum number of "
                "bytes service limit.",
            )
        return text

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
        self,
        frame: Frame,
        output: Any,
        *,
        assigned: dict[str, Any] | None = None,
        next_state: str | None = None,
    ) -> None:
        """Record ``...StateExited`` and go on: to ``next_state`` (or the state's Next), or end the frame."""
        state = frame.state
        if self.sink is None and output is frame.raw_input:
            text = ""  # unchanged input, size-checked already, and no history to write it to
        else:
            text = self._check_size(frame, output, "returned a result")
        details: dict[str, Any] = {
            "name": frame.state_name,
            "output": text,
            "outputDetails": {"truncated": False},
        }
        if assigned:
            frame.variables.values.update(assigned)
            details["assignedVariables"] = {k: dumps(v) for k, v in assigned.items()}
            details["assignedVariablesDetails"] = {"truncated": False}
        self._emit(frame, f"{state['Type']}StateExited", details)
        frame.unfinished = None
        target = next_state if next_state is not None else state.get("Next")
        if target is None:
            self._frame_succeeded(frame, output)
        else:
            self._enter(frame, target, output)

    # ------------------------------------------------------------------ errors, Retry, Catch
    def _state_failed(self, frame: Frame, exc: StatesError, *, source: Source = "state") -> None:
        """A state failed: retry it, catch it, or fail the frame.

        ``source`` says where the error comes from: the state's own evaluation (its cause gets the
        state's location), the task it ran (``task``: ``States.TaskFailed`` may match it) or its
        branches/iterations (``children``).
        """
        if source == "state" and exc.error in _LOCATED_ERRORS and not isinstance(exc, _FinalError):
            exc = _located(exc, frame)
        state = frame.state
        kind = state.get("Type")
        if kind in _RETRIABLE and exc.error != errors.RUNTIME:
            delay = self._retry_delay(frame, exc, from_task=source == "task")
            if delay is not None:
                frame.phase = Phase.RETRY
                frame.retry_total += 1
                self._set_timer(frame, self.now + delay)
                return
            if kind != "Task":
                self._emit(frame, f"{kind}StateFailed", {})
            catcher = _matching(state.get("Catch", ()), exc.error, from_task=source == "task")
            if catcher is not None:
                self._catch(frame, catcher, exc)
                return
        self._frame_failed(frame, exc)

    def _retry_delay(self, frame: Frame, exc: StatesError, *, from_task: bool) -> float | None:
        """The back-off before the next attempt, or None when no retrier takes the error.

        The first retrier whose ErrorEquals matches decides; when its MaxAttempts are used up the
        error goes on to the catchers (later retriers are not consulted).
        """
        retriers = frame.state.get("Retry")
        if not retriers:
            return None
        if len(frame.retry_counts) != len(retriers):
            frame.retry_counts = [0] * len(retriers)
        for i, retrier in enumerate(retriers):
            if not _matches(retrier.get("ErrorEquals", ()), exc.error, from_task=from_task):
                continue
            attempts = frame.retry_counts[i]
            if attempts >= retrier.get("MaxAttempts", 3):
                return None
            frame.retry_counts[i] = attempts + 1
            delay = (
                float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** attempts
            )
            cap = retrier.get("MaxDelaySeconds")
            if cap is not None:
                delay = min(delay, float(cap))
            if retrier.get("JitterStrategy") == "FULL":
                delay = self.rng.uniform(0, delay)
            return delay
        return None

    def _catch(self, frame: Frame, catcher: dict[str, Any], exc: StatesError) -> None:
        """A catcher took the error: record ``...StateExited`` with its output and go to its Next."""
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
            self._exit_state(frame, output, assigned=assigned, next_state=catcher["Next"])
        except StatesError as inner:
            if inner.error in _LOCATED_ERRORS and not isinstance(inner, _FinalError):
                inner = _located(inner, frame)
            self._frame_failed(frame, inner)

    # ------------------------------------------------------------------ frames ending
    def _frame_succeeded(self, frame: Frame, output: Any) -> None:
        frame.phase = Phase.DONE
        frame.alive = False
        parent = frame.parent
        if parent is None:
            self.status = "SUCCEEDED"
            self.output = output
            self._end(
                frame, "ExecutionSucceeded", {"output": dumps(output), "outputDetails": {"truncated": False}}
            )
            return
        children = parent.children
        assert children is not None
        if children.is_map:
            self._emit(frame, "MapIterationSucceeded", {"name": parent.state_name, "index": frame.index})
        _fold(parent, frame)
        children.active.pop(frame.index, None)
        children.results[frame.index] = output
        children.succeeded.add(frame.index)
        children.finished += 1
        self._wake(parent)

    def _frame_failed(self, frame: Frame, exc: StatesError) -> None:
        frame.phase = Phase.DONE
        frame.alive = False
        parent = frame.parent
        if parent is None:
            if isinstance(exc, _FinalError):
                self._fail_execution(frame, exc.name, exc.reason)
            else:
                self._fail_execution(frame, exc.error, exc.cause)
            return
        children = parent.children
        assert children is not None
        children.active.pop(frame.index, None)
        children.stopped[frame.index] = frame
        children.finished += 1
        if children.is_map:
            self._emit(frame, "MapIterationFailed", {"name": parent.state_name, "index": frame.index})
            children.failures += 1
            if exc.error != errors.RUNTIME and (
                children.tolerated_count is not None or children.tolerated_percentage is not None
            ):
                if not _threshold_exceeded(children):
                    _fold(parent, frame)
                    children.results[frame.index] = {"Error": exc.error, "Cause": exc.cause}
                    self._wake(parent)
                    return
                exc = _FinalError(
                    errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                )
        _fold(parent, frame)
        children.failed = True
        self._abort_children(parent)
        parent.children = None
        parent.unfinished = children
        self._state_failed(parent, exc, source="children")

    def _fail_execution(self, frame: Frame | None, error: str | None, cause: str | None) -> None:
        self.status = "FAILED"
        self.error, self.cause = error, cause
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        self._end(frame, "ExecutionFailed", details)

    def _abort_children(self, parent: Frame) -> None:
        children = parent.children
        if children is None:
            return
        for child in list(children.active.values()):
            self._abort(child)
            children.stopped[child.index] = child
            if children.is_map:
                self._emit(child, "MapIterationAborted", {"name": parent.state_name, "index": child.index})
            _fold(parent, child)
        children.active.clear()
        children.next_index = len(children.inputs)

    def _abort(self, frame: Frame) -> None:
        """Stop a live frame: withdraw its task, abort its children, record ``<Type>StateAborted``."""
        if frame.phase is Phase.CHILDREN:
            frame.unfinished = frame.children
            self._abort_children(frame)
        if frame.task is not None:
            self.tasks.pop(frame.task.id, None)
            self._task_frames.pop(frame.task.id, None)
            frame.task = None
        kind = frame.state.get("Type")
        if frame.phase is not Phase.ENTER and frame.phase is not Phase.DONE and kind in _ABORTABLE:
            self._emit(frame, f"{kind}StateAborted", {})
        frame.phase = Phase.DONE
        frame.alive = False
        frame.children = None

    # ------------------------------------------------------------------ Parallel and Map
    def _start_children(self, frame: Frame, children: Children) -> None:
        frame.children = children
        frame.phase = Phase.CHILDREN
        self._wake(frame)

    def _pump(self, frame: Frame) -> None:
        """Start branches/iterations while the concurrency allows; complete the state when all are done."""
        children = frame.children
        assert children is not None
        total = len(children.inputs)
        limit = children.max_concurrency or total
        while children.next_index < total and len(children.active) < limit:
            index = children.next_index
            children.next_index += 1
            if index in children.succeeded:
                continue  # a redrive keeps what succeeded
            program = children.programs[0 if children.is_map else index]
            child = children.stopped.pop(index, None)
            if child is None:
                child = Frame(
                    scope=f"{frame.scope}/{frame.state_name}/{index}"
                    if frame.scope
                    else f"{frame.state_name}/{index}",
                    program=program,
                    query_language=program.get("QueryLanguage", self._ql(frame)),
                    variables=frame.variables.child(),
                    parent=frame,
                    index=index,
                )
            else:
                child.alive = True  # redriven: from the state where it stopped
            child.last_event_id = frame.last_event_id
            children.active[index] = child
            if children.is_map:
                self._emit(child, "MapIterationStarted", {"name": frame.state_name, "index": index})
            if child.state_name:
                self._redrive(child)
            else:
                self._enter(child, program.get("StartAt", ""), children.inputs[index])
            self._ready.remove(child)
            child.queued = False
            self._step(child)
            if children.failed or not frame.alive or self.status != "RUNNING":
                return
        if children.finished == total and frame.children is children:
            frame.children = None
            self._emit(frame, f"{frame.state['Type']}StateSucceeded", {})
            frame.phase = Phase.RUN
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
        jp = self._jsonpath(frame, frame.raw_input)
        result = state["Result"] if "Result" in state else self._effective_input(frame, jp)
        assigned = jp.with_data(result).assign(state["Assign"]) if "Assign" in state else None
        output = apply_result_path(
            frame.raw_input, state.get("ResultPath"), result, present="ResultPath" in state
        )
        if "OutputPath" in state:
            output = jp.with_data(output).select_path(state["OutputPath"])
        self._exit_state(frame, output, assigned=assigned)

    def _succeed(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            output = (
                self._jsonata(frame).template(state["Output"], "Output")
                if "Output" in state
                else frame.raw_input
            )
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            output = jp.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
            if "OutputPath" in state:
                output = jp.with_data(output).select_path(state["OutputPath"])
        self._exit_state(frame, output)

    def _fail(self, frame: Frame) -> None:
        state = frame.state
        error: Any = state.get("Error")
        cause: Any = state.get("Cause")
        jsonata = self._ql(frame) == JSONATA
        if jsonata:
            ev = self._jsonata(frame)
            if is_expression(error):
                error = ev.evaluate(error, "Error")
            if is_expression(cause):
                cause = ev.evaluate(cause, "Cause")
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            if "ErrorPath" in state:
                error = jp.value_of(state["ErrorPath"], "ErrorPath")
            if "CausePath" in state:
                cause = jp.value_of(state["CausePath"], "CausePath")
        for name, value in (("Error", error), ("Cause", cause)):
            if value is not None and not isinstance(value, str):
                raise StatesError(
                    errors.RUNTIME,
                    f"The {name}{'' if jsonata else 'Path'} field must resolve to a string, "
                    f"got {dumps(value)}",
                )
        self._frame_failed(frame, _FinalError(error, cause))

    def _choice(self, frame: Frame) -> None:
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            for i, rule in enumerate(state.get("Choices", ())):
                cond = rule.get("Condition")
                value = ev.evaluate(cond, f"Choices[{i}].Condition") if is_expression(cond) else cond
                if not isinstance(value, bool):
                    raise StatesError(
                        errors.QUERY_EVALUATION_ERROR,
                        f"The JSONata expression '{cond}' specified for the field 'Condition' returned "
                        "an unexpected result type. Expected 'boolean' but was "
                        f"'{json_type(value)}' for value: {dumps(value)}",
                    )
                if value:
                    assigned = ev.template(rule["Assign"], "Assign") if "Assign" in rule else None
                    output = ev.template(rule["Output"], "Output") if "Output" in rule else frame.raw_input
                    self._exit_state(frame, output, assigned=assigned, next_state=rule["Next"])
                    return
            if "Default" not in state:
                raise _FinalError(errors.NO_CHOICE_MATCHED, "No Matches!")
            assigned = ev.template(state["Assign"], "Assign") if "Assign" in state else None
            output = ev.template(state["Output"], "Output") if "Output" in state else frame.raw_input
            self._exit_state(frame, output, assigned=assigned, next_state=state["Default"])
            return
        jp = self._jsonpath(frame, frame.raw_input)
        data = jp.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
        jd = jp.with_data(data)
        target: str | None = None
        assign: Any = None
        for rule in state.get("Choices", ()):
            if evaluate_rule(rule, jd.resolve):
                target, assign = rule["Next"], rule.get("Assign")
                break
        else:
            if "Default" not in state:
                raise _FinalError(errors.NO_CHOICE_MATCHED, "No Matches!")
            target, assign = state["Default"], state.get("Assign")
        assigned = jd.assign(assign) if assign is not None else None
        output = jd.select_path(state["OutputPath"]) if "OutputPath" in state else data
        self._exit_state(frame, output, assigned=assigned, next_state=target)

    def _wait(self, frame: Frame) -> None:
        state = frame.state
        seconds: int | None = None
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
                        errors.QUERY_EVALUATION_ERROR,
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time "
                        f"format string: {value if isinstance(value, str) else dumps(value)}",
                    )
                timestamp = value
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            data = jp.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
            jd = jp.with_data(data)
            assigned = jd.assign(state["Assign"]) if "Assign" in state else None
            output = jd.select_path(state["OutputPath"]) if "OutputPath" in state else data
            if "Seconds" in state:
                seconds = _wait_seconds(state["Seconds"], "Seconds", None)
            elif "Timestamp" in state:
                value = state["Timestamp"]
                if not isinstance(value, str) or parse_timestamp(value) is None:
                    raise StatesError(
                        errors.RUNTIME,
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time "
                        f"format string: {value}",
                    )
                timestamp = value
            elif "SecondsPath" in state:
                path = state["SecondsPath"]
                try:
                    value = jd.resolve(path)
                except paths.PathNotFound:
                    raise StatesError(
                        errors.RUNTIME, f"The SecondsPath parameter does not reference an input value: {path}"
                    ) from None
                seconds = _wait_seconds(value, "SecondsPath", path)
            elif "TimestampPath" in state:
                path = state["TimestampPath"]
                try:
                    value = jd.resolve(path)
                except paths.PathNotFound:
                    value = None
                if not isinstance(value, str) or parse_timestamp(value) is None:
                    shown = value if isinstance(value, str) else dumps(value)
                    raise StatesError(
                        errors.RUNTIME,
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
            due = max(self.now, parsed.timestamp())  # a time in the past ends the wait at once
            if due - self.now > MAX_WAIT_SECONDS:
                raise StatesError(errors.RUNTIME, "Wait state delay is too long.")
        if due <= self.now:
            self._exit_state(frame, output, assigned=assigned)
            return
        frame.wait_output = output
        frame.assigned = assigned
        frame.phase = Phase.WAIT
        self._set_timer(frame, due)

    def _task_state(self, frame: Frame) -> None:
        """Schedule the task (``TaskScheduled``); on a retry its arguments are evaluated again."""
        state = frame.state
        attempt = frame.retry_total
        frame.token = f"{frame.scope}#{frame.state_name}#{frame.entered_id}#{attempt}"
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            arguments = (
                ev.template(state["Arguments"], "Arguments") if "Arguments" in state else frame.raw_input
            )
            timeout = _int_field(state, "TimeoutSeconds", ev=ev)
            heartbeat = _int_field(state, "HeartbeatSeconds", ev=ev)
            credentials = ev.template(state["Credentials"], "Credentials") if "Credentials" in state else None
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            arguments = self._effective_input(frame, jp)
            timeout = _path_int(state, "TimeoutSeconds", jp)
            heartbeat = _path_int(state, "HeartbeatSeconds", jp)
            credentials = jp.template(state["Credentials"]) if "Credentials" in state else None
        parameters = self._check_size(frame, arguments, "has an input")
        resource = str(state.get("Resource", ""))
        request = TaskRequest(
            id=frame.token,
            state_name=frame.state_name,
            resource=resource,
            parameters=arguments,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            credentials=credentials,
            attempt=attempt,
            scope=frame.scope,
        )
        details = _resource_details(resource)
        details["region"] = self.info.region
        details["parameters"] = parameters
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        if heartbeat is not None:
            details["heartbeatInSeconds"] = heartbeat
        if credentials is not None:
            role = credentials.get("RoleArn") if isinstance(credentials, dict) else None
            details["taskCredentials"] = {"roleArn": role} if isinstance(role, str) else {}
        frame.task = request
        frame.phase = Phase.TASK
        self.tasks[request.id] = request
        self._task_frames[request.id] = frame
        self._emit(frame, "TaskScheduled", details)

    def _resume_children(self, frame: Frame) -> bool:
        """On a redrive, run the unfinished branches/iterations of the last run again; False if none."""
        children = frame.unfinished
        frame.unfinished = None
        if not frame.redriven or children is None:
            return False
        children.next_index = 0
        children.finished = len(children.succeeded)
        children.failures = 0
        children.failed = False
        children.active = {}
        if children.is_map:
            self._emit(frame, "MapStateStarted", {"length": len(children.inputs)})
            processor = frame.state.get("ItemProcessor") or {}
            config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
            if isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED":
                self._emit(
                    frame,
                    "MapRunRedriven",
                    {
                        "mapRunArn": f"arn:aws:states:{self.info.region}:{self.info.account}:mapRun:"
                        f"{self.info.state_machine_name}/{frame.state_name}:{self.info.name}",
                        "redriveCount": self.info.redrive_count,
                    },
                )
        else:
            self._emit(frame, "ParallelStateStarted", {})
        self._start_children(frame, children)
        return True

    def _parallel(self, frame: Frame) -> None:
        if self._resume_children(frame):
            return
        state = frame.state
        if self._ql(frame) == JSONATA:
            ev = self._jsonata(frame)
            data = ev.template(state["Arguments"], "Arguments") if "Arguments" in state else frame.raw_input
        else:
            data = self._effective_input(frame, self._jsonpath(frame, frame.raw_input))
        branches = state.get("Branches", [])
        self._emit(frame, "ParallelStateStarted", {})
        children = Children(
            is_map=False,
            inputs=[data] * len(branches),
            programs=list(branches),
            results=[None] * len(branches),
        )
        self._start_children(frame, children)

    def _map(self, frame: Frame) -> None:
        if self._resume_children(frame):
            return
        state = frame.state
        processor = state.get("ItemProcessor") or state.get("Iterator") or {}
        jsonata = self._ql(frame) == JSONATA
        ev: Evaluator | None = None
        if jsonata:
            ev = self._jsonata(frame)
            if "Items" in state:
                items_field = state["Items"]
                items = ev.template(items_field, "Items")
                if not isinstance(items, list):
                    body = items_field[2:-2].strip() if is_expression(items_field) else dumps(items_field)
                    raise StatesError(
                        errors.QUERY_EVALUATION_ERROR,
                        f"The JSONata expression '{body}' specified for the field 'Items' returned an "
                        f"unexpected result type. Expected 'array', but was '{json_type(items)}' for value: "
                        f"{dumps(items)}",
                    )
            else:
                items = frame.raw_input
            base = frame.raw_input
            max_conc: float = _int_field(state, "MaxConcurrency", ev=ev) or 0
            tol_count: float | None = _int_field(state, "ToleratedFailureCount", ev=ev)
            tol_pct = _number_field(state, "ToleratedFailurePercentage", ev=ev)
        else:
            jp = self._jsonpath(frame, frame.raw_input)
            base = jp.select_path(state["InputPath"]) if "InputPath" in state else frame.raw_input
            jb = jp.with_data(base)
            items = jb.select_path(state["ItemsPath"]) if "ItemsPath" in state else base
            max_conc = _map_number(state, "MaxConcurrency", jb, integer=True) or 0
            tol_count = _map_number(state, "ToleratedFailureCount", jb, integer=True)
            tol_pct = _map_number(state, "ToleratedFailurePercentage", jb, integer=False)
        if tol_count is not None and tol_count < 0:
            raise StatesError(errors.RUNTIME, "ToleratedFailureCount cannot be negative.")
        if tol_pct is not None and not (0 <= tol_pct <= 100):
            raise StatesError(errors.RUNTIME, "ToleratedFailurePercentage must be between 0 and 100.")
        if not isinstance(items, list):
            raise StatesError(
                errors.QUERY_EVALUATION_ERROR if jsonata else errors.RUNTIME,
                f"Map state input must be an array but was: {dumps(items)}",
            )
        selector_key = (
            "ItemSelector" if "ItemSelector" in state else ("Parameters" if "Parameters" in state else None)
        )
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
        if "ItemBatcher" in state:
            inputs = self._batch(frame, state["ItemBatcher"], inputs, base, ev)
        self._emit(frame, "MapStateStarted", {"length": len(inputs)})
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

    def _batch(
        self, frame: Frame, batcher: dict[str, Any], items: list[Any], base: Any, ev: Evaluator | None
    ) -> list[Any]:
        """ItemBatcher: group the (selected) items into ``{"BatchInput": ..., "Items": [...]}`` inputs."""
        if ev is not None:
            max_items = _number_field(batcher, "MaxItemsPerBatch", ev=ev)
            max_bytes = _number_field(batcher, "MaxInputBytesPerBatch", ev=ev)
            batch_input = (
                ev.template(batcher["BatchInput"], "BatchInput") if "BatchInput" in batcher else None
            )
        else:
            jp = self._jsonpath(frame, base)
            max_items = _map_number(batcher, "MaxItemsPerBatch", jp, integer=True)
            max_bytes = _map_number(batcher, "MaxInputBytesPerBatch", jp, integer=True)
            batch_input = jp.template(batcher["BatchInput"]) if "BatchInput" in batcher else None
        for name, limit in (("MaxItemsPerBatch", max_items), ("MaxInputBytesPerBatch", max_bytes)):
            if limit is not None and limit <= 0:
                raise StatesError(
                    errors.RUNTIME, f"The {name} value must be a positive integer, got {dumps(limit)}."
                )
        batches: list[list[Any]] = []
        current: list[Any] = []
        size = 0
        for item in items:
            item_size = len(dumps(item).encode())
            full = (max_items is not None and len(current) >= max_items) or (
                max_bytes is not None and bool(current) and size + item_size > max_bytes
            )
            if full:
                batches.append(current)
                current, size = [], 0
            current.append(item)
            size += item_size
        if current:
            batches.append(current)
        if batch_input is None:
            return [{"Items": batch} for batch in batches]
        return [{"BatchInput": batch_input, "Items": batch} for batch in batches]


def _fold(parent: Frame, child: Frame) -> None:
    """A branch/iteration ended: the parent's next event follows the child's last one."""
    parent.last_event_id = max(parent.last_event_id, child.last_event_id)


def _freeze(frame: Frame) -> None:
    """The execution ended while ``frame`` ran branches/iterations: keep them as unfinished."""
    children = frame.children
    if children is None:
        return
    for index, child in children.active.items():
        _freeze(child)
        child.alive = False
        children.stopped[index] = child
    children.active = {}
    frame.unfinished = children
    frame.children = None


def _threshold_exceeded(children: Children) -> bool:
    """Map tolerated failures: exceeding either threshold (count or percentage) fails the Map."""
    if children.tolerated_count is not None and children.failures > children.tolerated_count:
        return True
    if children.tolerated_percentage is not None:
        total = len(children.inputs)
        return total > 0 and 100.0 * children.failures / total > children.tolerated_percentage
    return False


def _located(exc: StatesError, frame: Frame) -> StatesError:
    return _FinalError(
        exc.error,
        f"An error occurred while executing the state '{frame.state_name}' (entered at the event id "
        f"#{frame.entered_id}). {exc.cause}",
    )


def _matches(error_equals: Any, error: str, *, from_task: bool) -> bool:
    """Whether an ``ErrorEquals`` list matches ``error``.

    ``States.ALL`` matches everything but ``States.DataLimitExceeded`` (and ``States.Runtime``, which
    never reaches a retrier or catcher); ``States.TaskFailed`` matches what a task reported, except
    timeouts; ``States.Timeout`` also matches ``States.HeartbeatTimeout``.
    """
    for name in error_equals:
        if name == error:
            return True
        if name == errors.ALL and error != errors.DATA_LIMIT_EXCEEDED:
            return True
        if (
            name == errors.TASK_FAILED
            and from_task
            and error not in (errors.TIMEOUT, errors.HEARTBEAT_TIMEOUT)
        ):
            return True
        if name == errors.TIMEOUT and error == errors.HEARTBEAT_TIMEOUT:
            return True
    return False


def _matching(catchers: Any, error: str, *, from_task: bool) -> dict[str, Any] | None:
    for catcher in catchers:
        if _matches(catcher.get("ErrorEquals", ()), error, from_task=from_task):
            return catcher  # type: ignore[no-any-return]
    return None


def _split_resource(resource: str) -> tuple[str, str]:
    """The ``resourceType`` and ``resource`` that task events show for a Task's ``Resource``.

    Service integrations ``arn:aws:states:::<service>:<action>`` give (service, action):
    ``arn:aws:states:::lambda:invoke`` -> (``lambda``, ``invoke``),
    ``arn:aws:states:::states:startExecution.sync:2`` -> (``states``, ``startExecution.sync:2``);
    SDK integrations keep the service in the type: ``arn:aws:states:::aws-sdk:s3:getObject`` ->
    (``aws-sdk:s3``, ``getObject``). Any other ARN gives (its service, the whole ARN):
    ``arn:aws:lambda:us-east-1:123456789012:function:f`` -> (``lambda``, the ARN). A non-ARN resource
    splits at its first colon: ``reflow:net`` -> (``reflow``, ``net``); ``noop`` -> (``noop``, ``noop``).
    """
    if resource.startswith("arn:"):
        parts = resource.split(":")
        if len(parts) >= 7 and parts[2] == "states" and not parts[3] and not parts[4] and parts[5]:
            if parts[5] == "aws-sdk" and len(parts) >= 8:
                return f"aws-sdk:{parts[6]}", ":".join(parts[7:])
            return parts[5], ":".join(parts[6:])
        return parts[2] if len(parts) > 2 and parts[2] else "arn", resource
    kind, sep, rest = resource.partition(":")
    return (kind, rest) if sep else (resource, resource)


def _resource_details(resource: str) -> dict[str, Any]:
    rtype, res = _split_resource(resource)
    return {"resourceType": rtype, "resource": res}


def _wait_seconds(value: Any, field_name: str, path: str | None) -> int:
    """A Wait duration: a literal or JSONata value (``path`` None) or what ``SecondsPath`` selected."""
    shown = f"{path} == {dumps(value)}" if path else dumps(value)
    literal = path is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        if literal:
            raise StatesError(
                errors.QUERY_EVALUATION_ERROR, f"The {field_name} field must be a number, got {shown}"
            )
        raise StatesError(
            errors.RUNTIME, f"The {field_name} parameter cannot be parsed as a long value: {shown}"
        )
    if isinstance(value, float) and not value.is_integer():
        if literal:
            raise StatesError(
                errors.QUERY_EVALUATION_ERROR, f"The {field_name} field must be an integer, got {shown}"
            )
        raise StatesError(
            errors.RUNTIME, f"The {field_name} parameter cannot be parsed as a long value: {shown}"
        )
    if value < 0:
        if literal:
            raise StatesError(
                errors.QUERY_EVALUATION_ERROR, f"The {field_name} field must be non-negative, got {shown}"
            )
        raise StatesError(errors.RUNTIME, f"The {field_name} parameter references a negative value: {shown}")
    if value > MAX_WAIT_SECONDS:
        raise StatesError(errors.RUNTIME, "Wait state delay is too long.")
    return int(value)


def _int_field(state: dict[str, Any], name: str, *, ev: Evaluator) -> int | None:
    """A JSONata-state integer field: a literal or a ``{% %}`` expression."""
    value = _number_field(state, name, ev=ev)
    if value is None:
        return None
    if not float(value).is_integer():
        raise StatesError(
            errors.QUERY_EVALUATION_ERROR, f"The {name} field must be an integer, got {dumps(value)}"
        )
    return int(value)


def _number_field(state: dict[str, Any], name: str, *, ev: Evaluator) -> float | None:
    """A JSONata-state number field: a literal or a ``{% %}`` expression."""
    value = state.get(name)
    if isinstance(value, str) and is_expression(value):
        value = ev.evaluate(value, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatesError(
            errors.QUERY_EVALUATION_ERROR, f"The {name} field must be a number, got {dumps(value)}"
        )
    return value


def _path_int(state: dict[str, Any], name: str, jp: JsonPathEval) -> int | None:
    """A JSONPath-state positive integer: ``<name>`` or the value ``<name>Path`` selects."""
    if name in state:
        return int(state[name])
    path = state.get(name + "Path")
    if path is None:
        return None
    value = jp.select_path(path)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StatesError(
            errors.RUNTIME,
            f"The {name}Path field refers to value {dumps(value)} which is not a valid positive integer",
        )
    return value


def _map_number(state: dict[str, Any], name: str, jp: JsonPathEval, *, integer: bool) -> float | None:
    """A JSONPath-state number: ``<name>`` or the value ``<name>Path`` selects (numeric strings too)."""
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
        raise StatesError(
            errors.RUNTIME,
            f'The {name}Path field refers to value "{shown}" which is not a valid {kind}: {path}',
        )
    return number


def format_timestamp_f(timestamp: float) -> str:
    """Seconds since the epoch in the context object's format."""
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


def _seeded_uuid_factory(rng: random.Random) -> Callable[[], str]:
    def make() -> str:
        return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))

    return make
