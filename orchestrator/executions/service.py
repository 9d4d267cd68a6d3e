"""Durable executions: start, advance, stop, reset, redrive and inspect them on the event store.

Each operation is one fenced transaction: load the execution, hand the machine one outside fact, and
append what it decided together with the work it now waits for. A second writer that got there first
makes the append fail with ``ConcurrencyError``; the caller reloads and tries again, and a fact that
no longer applies (a task answered twice, or after its deadline) changes nothing.

Loading restores the latest snapshot and replays only the events after it (a full replay when there
is none, or when it does not fit the definition); an execution cached in this process only replays
what other writers appended since. One execution's load-decide-commit runs under a lock, so a
worker's threads (tasks, their heartbeats, timers) can share this service.

Round trips are what a task costs, so an update does not read the stream first: it decides on the
execution cached in this process and lets the append's expected version say whether that was current
(when not, it reloads and decides again). Published versions are cached by the registry. A quick
task without deadlines appends ``TaskStarted`` together with its result (:mod:`.starts`), so a no-op
task is one read of its execution and one append.

Task deadlines are the machine's timers (stored as timer work items), so the answer to a task is
applied after letting due timers fire: an answer that comes after ``TimeoutSeconds`` or a missed
heartbeat is dropped. ``heartbeat`` (and ``TaskContext.heartbeat``) records ``TaskHeartbeat``,
throttled to one per quarter of ``HeartbeatSeconds``, and raises ``TaskCancelled`` once the task no
longer runs; ``task_pending`` is what a worker polls to cancel a running task.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from orchestrator.engine import snapshot
from orchestrator.engine.events import HistoryEvent, iso
from orchestrator.engine.interpreter import Execution, ExecutionInfo, Limits, TaskRequest
from orchestrator.engine.replay import HistoryDiverged, replay, resume
from orchestrator.engine.snapshot import SnapshotMismatch
from orchestrator.errors import UsageError
from orchestrator.executions import codec
from orchestrator.executions.starts import DeferredStarts
from orchestrator.executions.tasks import (
    PENDING,
    TaskCancelled,
    TaskContext,
    TaskError,
    TaskExecutor,
    identity_of,
)
from orchestrator.registry import model as registry_model
from orchestrator.registry.model import Version
from orchestrator.registry.service import Registry, Resolved
from orchestrator.store import (
    ClaimedWork,
    ConcurrencyError,
    DuplicateEventId,
    EventStore,
    ExecutionSummary,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamMoved,
)

log = structlog.get_logger(__name__)

FRESH_SECONDS = 0.1
"""A cached execution the store confirmed current this recently counts as current for running a task
whose ``TaskStarted`` is not appended first (a worker loads the execution just before it runs the
task). An append by another writer in between is the race a running task can lose at any moment (its
execution stopped, its token answered): the fenced append of its result then changes nothing."""
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
START_ATTEMPTS = 5
"""How many times a start resolves its reference and appends, when the state machine's registry stream
keeps moving between the resolution and the append (each move refused by the append's guard)."""


class UnknownExecution(UsageError):
    """No execution has that id."""


class ExecutionConflict(UsageError):
    """An execution with that name exists with another input (Step Functions' rule)."""


class Loaded:
    """An execution brought up to date from its stream: its machine, its history, its stream version.

    When the machine came from a snapshot, the events before it are only read from the store the
    first time ``history`` is asked for: deciding and committing never need them.
    """

    def __init__(
        self,
        id: str,
        machine: Execution,
        history: list[HistoryEvent],
        version: int,
        meta: dict[str, Any],
        *,
        sha256: str = "",
        earlier: Callable[[], list[HistoryEvent]] | None = None,
        earlier_count: int = 0,
    ) -> None:
        self.id = id
        self.machine = machine
        self.version = version
        self.verified_at = time.monotonic()  # when the store last confirmed ``version`` was its latest
        self.meta = meta
        self.sha256 = sha256  # of the definition version the execution runs
        self._events = history  # the machine's sink appends here
        self._earlier = earlier
        self._offset = earlier_count if earlier is not None else 0
        self._lock = threading.Lock()

    @property
    def status(self) -> str:
        """RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT."""
        return self.machine.status

    @property
    def history(self) -> list[HistoryEvent]:
        """Every event of the execution, in order (read in full on first use after a snapshot)."""
        with self._lock:
            if self._earlier is not None:
                self._events[:0] = self._earlier()  # in place: the machine's sink keeps appending here
                self._earlier = None
                self._offset = 0
            return self._events

    @property
    def event_count(self) -> int:
        """How many events the execution has (without reading the ones before a snapshot)."""
        with self._lock:
            return self._offset + len(self._events)

    def events_since(self, count: int) -> list[HistoryEvent]:
        """The events after the first ``count`` (``count`` at least the snapshot's version)."""
        with self._lock:
            return self._events[count - self._offset :]

    def _extend(self, events: list[HistoryEvent]) -> None:
        with self._lock:
            self._events.extend(events)


@dataclass
class Executions:
    """The durable side of executions, over one store and its registry."""

    store: EventStore
    registry: Registry
    executors: Mapping[str, TaskExecutor] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    limits: Limits = field(default_factory=Limits)
    cache_size: int = 256
    snapshot_every: int = 1000
    """Save a snapshot of the machine with the append that crosses every multiple of this many events;
    loading then replays only the events after the latest one. 0: no snapshots (saved or used)."""
    claim_history: int = 100
    """A worker claims work with the events of streams no longer than this (see :meth:`adopt`); 0: never."""
    start_grace: float = 0.05
    """A task without TimeoutSeconds or HeartbeatSeconds that finishes within this many seconds has its
    ``TaskStarted`` appended with its result, in one transaction (see :mod:`.starts`); a longer one gets
    it appended on its own once this time has passed. 0: always append it before the task runs."""
    _cache: OrderedDict[str, Loaded] = field(default_factory=OrderedDict)
    # Threads (a worker's tasks, their heartbeats, timers) share the cached machines: one execution's
    # load-decide-commit runs under its lock (striped, so the number of locks stays bounded).
    _locks: tuple[threading.RLock, ...] = field(
        default_factory=lambda: tuple(threading.RLock() for _ in range(64))
    )
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)
    _starts: DeferredStarts = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._starts = DeferredStarts(self.start_grace, self._start_late)

    def _lock(self, execution: str) -> threading.RLock:
        return self._locks[hash(execution) % len(self._locks)]

    # ------------------------------------------------------------------ loading
    def load(self, execution: str, *, work: ClaimedWork | None = None) -> Loaded:
        """Replay the execution's stream (reusing a cached replay when it is still current).

        ``work``: the claimed task item it is loaded for. Its payload says how long the stream was
        when the item was enqueued; a stream shorter than :attr:`snapshot_every` then cannot have had
        a snapshot, so it is read from its start without looking for one first (one round trip less).
        Should it have grown that long since, its snapshot is looked for after all.
        """
        hint = None if work is None else codec.events_when_enqueued(work.payload)
        with self._lock(execution):
            return self._load(execution, events_hint=hint)

    def adopt(self, work: ClaimedWork, read_at: float) -> bool:
        """Cache the execution of a claimed item from the history its claim carried, unless it is
        cached already: a worker meeting an execution for the first time needs no read of its stream.

        ``read_at``: the monotonic time the claim was sent (the history is at least that fresh).
        True when the execution is cached afterwards. A history that cannot be replayed is ignored
        (logged): the item's processing then reads the stream as usual.
        """
        history, execution = work.history, work.payload.get("execution")
        if not history or not isinstance(execution, str) or work.stream_id != codec.stream_of(execution):
            return False
        with self._lock(execution):
            with self._cache_lock:
                if execution in self._cache:
                    return True
            if self.snapshot_every > 0 and len(history) >= self.snapshot_every:
                return False  # long enough to have a snapshot: load() restores from it
            try:
                loaded = self._replayed(execution, list(history))
            except Exception as exc:  # the normal read path reports what is wrong, if anything
                log.warning("execution.history_not_adopted", execution=execution, reason=str(exc))
                return False
            loaded.verified_at = read_at
            self._remember(loaded)
            return True

    def cached(self, execution: str) -> Loaded | None:
        """The execution as cached in this process (possibly stale), without reading the store."""
        with self._cache_lock:
            return self._cache.get(execution)

    def _load(self, execution: str, *, trust: bool = False, events_hint: int | None = None) -> Loaded:
        """The execution, current as of this call; with ``trust``, a cached one as it is, without
        reading the store (for an update whose fenced append tells whether it was current).
        ``events_hint``: a length the stream had (see :meth:`load`)."""
        stream = codec.stream_of(execution)
        with self._cache_lock:
            cached = self._cache.get(execution)
        if cached is not None and trust:
            return cached  # the update that trusts it remembers it once it is committed
        began = time.monotonic()
        if cached is not None:
            newer = self.store.read_stream(stream, cached.version + 1)
            if not newer or self._caught_up(cached, newer):
                cached.verified_at = began
                self._remember(cached)
                return cached
            self._forget(execution)
        every, head = self.snapshot_every, None
        if every > 0 and events_hint is not None and events_hint < every:
            head = self.store.read_stream(stream, 1, every)
            if len(head) >= every:
                head = None  # grown long since: it may have a snapshot now
        restored = self._from_snapshot(execution) if every > 0 and head is None else None
        loaded = restored or self._replayed(execution, head)
        loaded.verified_at = began
        self._remember(loaded)
        return loaded

    def _caught_up(self, cached: Loaded, newer: list[RecordedEvent]) -> bool:
        """Bring a cached execution up to date with the events another writer appended."""
        events = codec.from_records(newer)
        try:
            resume(cached.machine, events)
        except HistoryDiverged:
            log.warning("execution.cache_diverged", execution=cached.id, version=cached.version)
            return False
        cached._extend(events)
        cached.version += len(events)
        return True

    def _replayed(self, execution: str, records: list[RecordedEvent] | None = None) -> Loaded:
        """Replay the whole stream (``records``: the whole stream, read already)."""
        if records is None:
            records = self.store.read_stream(codec.stream_of(execution))
        if not records:
            raise UnknownExecution(f"unknown execution {execution!r}")
        meta = dict(records[0].metadata)
        version = self._version(meta)
        history = codec.from_records(records)
        machine = self._machine(execution, version, meta, history)
        replay(machine, history)
        return Loaded(execution, machine, history, len(records), meta, sha256=version.sha256)

    def _from_snapshot(self, execution: str) -> Loaded | None:
        """The latest snapshot and the events after it; None when there is no usable snapshot.

        A snapshot of another format or another definition, or one the events after it do not
        follow, is ignored (logged): the caller replays the whole stream instead.
        """
        stream = codec.stream_of(execution)
        saved = self.store.load_snapshot(stream)
        if saved is None:
            return None
        state = saved.state
        try:
            meta = dict(state["meta"])
            version = self._version(meta)
            if state.get("sha256") != version.sha256:
                raise SnapshotMismatch("the snapshot was taken with another definition")
            history: list[HistoryEvent] = []
            machine = snapshot.restore(
                dict(version.definition),
                state["machine"],
                info=self._info(version, meta),
                limits=self.limits,
            )
            if machine.last_event_id != saved.version:
                raise SnapshotMismatch(
                    f"the machine is at event {machine.last_event_id}, not {saved.version}"
                )
            tail = codec.from_records(self.store.read_stream(stream, saved.version + 1))
            resume(machine, tail)
        except (SnapshotMismatch, HistoryDiverged, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "execution.snapshot_ignored", execution=execution, version=saved.version, reason=str(exc)
            )
            return None
        history.extend(tail)
        machine.sink = history.append
        store = self.store

        def earlier() -> list[HistoryEvent]:
            return codec.from_records(store.read_stream(stream, 1, saved.version))

        return Loaded(
            execution,
            machine,
            history,
            saved.version + len(tail),
            meta,
            sha256=version.sha256,
            earlier=earlier,
            earlier_count=saved.version,
        )

    def _version(self, meta: Mapping[str, Any]) -> Version:
        version = self.registry.published(str(meta["state_machine"]), int(meta["version"]))
        if version is None:
            raise UsageError(
                f"version {meta['version']} of {meta['state_machine']} is missing from the registry"
            )
        return version

    def _machine(
        self, execution: str, version: Version, meta: Mapping[str, Any], history: list[HistoryEvent]
    ) -> Execution:
        machine = Execution(
            dict(version.definition),
            info=self._info(version, meta),
            seed=codec.seed_of(execution),
            limits=self.limits,
        )
        machine.sink = history.append
        return machine

    @staticmethod
    def _info(version: Version, meta: Mapping[str, Any]) -> ExecutionInfo:
        return ExecutionInfo(name=str(meta["name"]), state_machine_name=version.name)

    def _remember(self, loaded: Loaded) -> None:
        with self._cache_lock:
            self._cache[loaded.id] = loaded
            self._cache.move_to_end(loaded.id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _forget(self, execution: str) -> None:
        with self._cache_lock:
            self._cache.pop(execution, None)

    # ------------------------------------------------------------------ committing
    def _commit(
        self,
        loaded: Loaded,
        produced_from: int,
        *,
        metadata: dict[str, Any] | None = None,
        complete: tuple[str, ...] = (),
        worker_id: str | None = None,
        expected: int | None = None,
        guard: tuple[str, int] | None = None,
    ) -> None:
        new = loaded.events_since(produced_from)
        if not new and not complete:
            return
        base = loaded.version if expected is None else expected
        began = time.monotonic()
        try:
            self.store.append(
                codec.stream_of(loaded.id),
                base,
                codec.to_new_events(loaded.id, new, metadata),
                enqueue=codec.work_items(loaded.id, loaded.machine, base + len(new)),
                complete=complete,
                worker_id=worker_id,
                snapshot=self._snapshot(loaded, base, base + len(new)),
                guard=guard,
            )
        except Exception:
            self._forget(loaded.id)
            raise
        loaded.version = base + len(new)
        loaded.verified_at = began

    def _snapshot(self, loaded: Loaded, before: int, after: int) -> Snapshot | None:
        """A snapshot to save with an append that takes the stream from ``before`` to ``after`` events:
        one whenever it crosses a multiple of ``snapshot_every``."""
        every = self.snapshot_every
        if every <= 0 or after // every == before // every or not loaded.sha256:
            return None
        try:
            machine = snapshot.dump(loaded.machine)
        except snapshot.SnapshotMismatch as exc:  # not quiescent: a bug, but the append must not suffer
            log.warning("execution.snapshot_skipped", execution=loaded.id, reason=str(exc))
            return None
        state = {"sha256": loaded.sha256, "meta": loaded.meta, "machine": machine}
        return Snapshot(codec.stream_of(loaded.id), after, state)

    def _apply(self, execution: str, fact: Callable[[Loaded], None], **commit: Any) -> Loaded:
        """Load, apply one fact, commit; on a concurrent append, reload and apply again.

        The first attempt applies the fact to the execution cached in this process as it is, without
        reading the store: the append names the version the cache is at, so a cache that another
        writer made stale fails it (``ConcurrencyError``, or ``DuplicateEventId`` when the other
        writer's events took the same ids) and the fact is applied again to the reloaded execution.
        A fact that fails on the cached execution is also tried again on the reloaded one (the cache
        may be why), and one that appends nothing is checked against the store before it counts.
        """
        stream = codec.stream_of(execution)
        for attempt in range(10):
            with self._lock(execution):
                with self._cache_lock:
                    trusted = attempt == 0 and execution in self._cache
                loaded = self._load(execution, trust=trusted)
                mark = loaded.event_count
                try:
                    fact(loaded)
                except Exception:
                    self._forget(execution)
                    if trusted:
                        continue  # perhaps only stale: try it on the current stream
                    raise
                if trusted and loaded.event_count == mark and not commit.get("complete"):
                    # nothing to append, so nothing fenced the cache: it counts only if current
                    if self.store.read_stream(stream, loaded.version + 1, 1):
                        self._forget(execution)
                        continue
                    self._remember(loaded)
                    return loaded
                try:
                    self._commit(loaded, mark, **commit)
                except ConcurrencyError:
                    log.info("execution.append_conflict", execution=execution, attempt=attempt)
                    continue
                except DuplicateEventId:
                    if not trusted:
                        raise
                    log.info("execution.append_conflict", execution=execution, attempt=attempt)
                    continue
                self._remember(loaded)
                return loaded
        raise UsageError(f"execution {execution!r} is too busy: gave up after 10 concurrent appends")

    # ------------------------------------------------------------------ starting
    def start(
        self,
        reference: str,
        input_value: Any,
        *,
        name: str | None = None,
        started_by: str = "",
        trigger: Mapping[str, Any] | None = None,
    ) -> tuple[Loaded, bool]:
        """Start an execution of ``name[:alias|:version]``; returns it and whether it is new.

        Same name and same input while it exists returns the existing one; another input is an
        ``ExecutionConflict``.

        The reference is resolved from the state machine as the registry last folded it in this
        process (no read), and the start's append is guarded by the registry stream's version that
        fold was made from: when another process published a version or moved an alias since, the
        store refuses the append (``StreamMoved``, nothing written), and the start resolves again
        from the refreshed registry (one read) and retries, up to ``START_ATTEMPTS`` times. So a
        start never commits on a registry state older than the last registry change committed
        before it.
        """
        resolved = self.registry.resolve(reference, fresh=False)
        name = name or _new_name()
        if not _valid_name(name):
            raise UsageError(f"invalid execution name {name!r}: 1-80 letters, digits, '-' or '_'")
        for attempt in range(START_ATTEMPTS):
            if attempt:
                resolved = self.registry.resolve(reference)
            try:
                return self._start(resolved, name, input_value, started_by, trigger)
            except StreamMoved as moved:
                log.info(
                    "execution.start_registry_moved",
                    state_machine=resolved.version.name,
                    registry_version=moved.expected_version,
                    actual=moved.actual_version,
                    attempt=attempt,
                )
        raise UsageError(
            f"could not start {reference!r}: its state machine's registry changed under each of "
            f"{START_ATTEMPTS} attempts (versions published or aliases moved meanwhile); try again"
        )

    def _start(
        self,
        resolved: Resolved,
        name: str,
        input_value: Any,
        started_by: str,
        trigger: Mapping[str, Any] | None,
    ) -> tuple[Loaded, bool]:
        """One attempt of :meth:`start` on ``resolved``; raises ``StreamMoved`` when the registry
        moved since it was resolved."""
        version = resolved.version
        execution = codec.execution_id(version.name, name)
        cached = self.cached(execution)  # an execution, once it exists, always does, with its input
        if cached is not None:
            return self._started_already(cached, input_value)
        meta = {
            "state_machine": version.name,
            "version": version.version,
            "alias": resolved.alias,
            "name": name,
            "started_by": started_by,
            "trigger": dict(trigger or {}),
        }
        history: list[HistoryEvent] = []
        machine = self._machine(execution, version, meta, history)
        machine.start(input_value, self.clock())
        loaded = Loaded(execution, machine, history, 0, meta, sha256=version.sha256)
        guard = (registry_model.stream_id(version.name), resolved.registry_version)
        try:
            # Appended at version 0, so it fails if the execution exists: no read before it.
            self._commit(loaded, 0, metadata=meta, guard=guard)
        except (ConcurrencyError, DuplicateEventId):
            return self._started_already(self.load(execution), input_value)
        self._remember(loaded)
        log.info("execution.started", execution=execution, version=version.version, by=started_by)
        return loaded, True

    @staticmethod
    def _started_already(existing: Loaded, input_value: Any) -> tuple[Loaded, bool]:
        """A start of an execution that exists: the same one if its input is the same (Step
        Functions' idempotent start), else a conflict."""
        if existing.machine.input == input_value:
            return existing, False
        raise ExecutionConflict(
            f"execution {existing.id!r} already exists with a different input "
            "(names are unique per state machine)"
        )

    # ------------------------------------------------------------------ outside facts
    def stop(
        self, execution: str, error: str | None = None, cause: str | None = None, *, by: str = ""
    ) -> Loaded:
        """Abort a running execution (``ExecutionAborted``; ``by`` goes in its metadata)."""

        def fact(loaded: Loaded) -> None:
            if loaded.status != "RUNNING":
                raise UsageError(f"execution {execution!r} is {loaded.status}, not RUNNING")
            loaded.machine.stop(error, cause, self.clock())

        return self._apply(execution, fact, metadata={"by": by} if by else None)

    def fire_timers(
        self, execution: str, *, complete: tuple[str, ...] = (), worker_id: str | None = None
    ) -> Loaded:
        """Let the execution's timers that fell due fire."""
        return self._apply(
            execution,
            lambda loaded: loaded.machine.advance_to(self.clock()),
            complete=complete,
            worker_id=worker_id,
        )

    def run_task(
        self,
        execution: str,
        task_id: str,
        *,
        complete: tuple[str, ...] = (),
        worker_id: str | None = None,
        cancelled: threading.Event | None = None,
    ) -> Loaded:
        """Run one task attempt with its executor and record the outcome.

        The executor runs only on a state known to be current: after this call appended the task's
        ``TaskStarted`` (a fenced append), or after reading what the store has beyond the cache.
        A task whose ``TaskStarted`` may wait (:attr:`start_grace`) has it appended with its result.
        """
        with self._lock(execution):
            loaded = self._load(execution, trust=True)
        task = loaded.machine.tasks.get(task_id)
        fresh = time.monotonic() - loaded.verified_at < FRESH_SECONDS
        if (
            task is None
            or loaded.status != "RUNNING"
            or ((task.started or self._defers_start(task)) and not fresh)
        ):
            loaded = self.load(execution)  # no fenced append before the executor: read what the cache lacks
            task = loaded.machine.tasks.get(task_id)
            if task is None or loaded.status != "RUNNING":
                return self._let_go(loaded, complete, worker_id)
        started_at = self.clock()
        deferred = not task.started and self._defers_start(task)
        if not task.started and not deferred:
            loaded = self._apply(execution, self._start_fact(task_id, started_at))
            if loaded.status != "RUNNING" or task_id not in loaded.machine.tasks:
                return self._let_go(loaded, complete, worker_id)
        start_first = self._start_fact(task_id, started_at) if deferred else _nothing
        executor = self.executors.get(_scheme(task.resource))
        outcome: tuple[str, Any]
        if executor is None:
            outcome = (
                "failed",
                (
                    "Orchestrator.NoExecutor",
                    f"no executor is configured for resource {task.resource} (state '{task.state_name}')",
                ),
            )
        else:
            context = self.task_context(loaded, task_id, started_at=started_at if deferred else None)
            if cancelled is not None:
                context.cancelled = cancelled
            if deferred:
                self._starts.add(execution, task_id, started_at)
            try:
                outcome = ("succeeded", executor(context))
            except TaskError as exc:
                outcome = ("failed", (exc.error, exc.cause))
            except TaskCancelled:
                # the task no longer runs (answered, timed out, stopped) or the worker is shutting
                # down: answer nothing and leave the work item; whoever claims it next finds the task
                # over (and completes the item) or runs it again
                log.info("task.cancelled", execution=execution, state=task.state_name)
                return self.load(execution)
            except Exception as exc:  # an executor bug fails the task, not the worker
                log.exception("task.executor_crashed", execution=execution, state=task.state_name)
                outcome = ("failed", ("States.TaskFailed", f"{type(exc).__name__}: {exc}"))
            finally:
                if deferred:
                    self._starts.discard(execution, task_id)
            if outcome[0] == "succeeded" and outcome[1] is PENDING:
                # an outside fact answers the task later: record TaskStarted, let go of the work item
                return self._apply(execution, start_first, complete=complete, worker_id=worker_id)

        def fact(lo: Loaded) -> None:
            start_first(lo)
            lo.machine.advance_to(self.clock())  # a deadline that passed meanwhile wins over the answer
            if lo.status != "RUNNING" or task_id not in lo.machine.tasks:
                return  # answered late: the task timed out or the execution ended; nothing changes
            if outcome[0] == "succeeded":
                lo.machine.task_succeeded(task_id, outcome[1], self.clock())
            else:
                error, cause = outcome[1]
                lo.machine.task_failed(task_id, error, cause, self.clock())

        return self._apply(execution, fact, complete=complete, worker_id=worker_id)

    def _defers_start(self, task: TaskRequest) -> bool:
        """Whether the task's ``TaskStarted`` may wait for its result: no deadline counts from it."""
        return self.start_grace > 0 and task.timeout_seconds is None and task.heartbeat_seconds is None

    @staticmethod
    def _start_fact(task_id: str, started_at: float) -> Callable[[Loaded], None]:
        """The fact "task ``task_id`` started at ``started_at``", when it still waits for that."""

        def fact(lo: Loaded) -> None:
            current = lo.machine.tasks.get(task_id)
            if lo.status == "RUNNING" and current is not None and not current.started:
                lo.machine.task_started(task_id, started_at)

        return fact

    def _start_late(self, execution: str, task_id: str, started_at: float) -> None:
        """Append the ``TaskStarted`` of a task that runs longer than :attr:`start_grace`."""
        self._apply(execution, self._start_fact(task_id, started_at))

    def _let_go(self, loaded: Loaded, complete: tuple[str, ...], worker_id: str | None) -> Loaded:
        """Complete the claimed work items of a task that needs nothing more (no events)."""
        if complete:
            self.store.append(
                codec.stream_of(loaded.id), loaded.version, [], complete=complete, worker_id=worker_id
            )
        return loaded

    def task_pending(self, execution: str, token: str) -> bool:
        """Whether the task ``token`` still waits for its answer (the worker's cancellation watch).

        False once it was answered, timed out or withdrawn, or the execution stopped or ended.
        """
        loaded = self.load(execution)
        return loaded.status == "RUNNING" and token in loaded.machine.tasks

    def heartbeat(self, execution: str, token: str) -> None:
        """The task ``token`` reports progress (``SendTaskHeartbeat``): its HeartbeatSeconds restart.

        Throttled: a ``TaskHeartbeat`` is appended only when the last one (or the start) is older than
        a quarter of ``HeartbeatSeconds``, so a chatty task does not flood the history; without
        ``HeartbeatSeconds`` nothing is recorded. Raises :class:`TaskCancelled` when the task no
        longer runs (answered, timed out, the execution stopped or ended).
        """
        loaded = self.load(execution)
        task = loaded.machine.tasks.get(token)
        if loaded.status != "RUNNING" or task is None:
            raise TaskCancelled(f"task {token!r} of {execution!r} no longer runs")
        if not _heartbeat_due(task, self.clock()):
            return
        gone: list[bool] = []

        def fact(lo: Loaded) -> None:
            now = self.clock()
            gone.clear()  # only the last attempt counts
            lo.machine.advance_to(now)  # a deadline that passed before this heartbeat still fires
            current = lo.machine.tasks.get(token)
            if lo.status != "RUNNING" or current is None:
                gone.append(True)
            elif _heartbeat_due(current, now):
                lo.machine.task_heartbeat(token, now)

        self._apply(execution, fact)
        if gone:
            raise TaskCancelled(f"task {token!r} of {execution!r} no longer runs")

    def task_context(self, loaded: Loaded, task_id: str, *, started_at: float | None = None) -> TaskContext:
        """The context an executor gets for the pending task ``task_id`` of ``loaded``.

        ``started_at``: the task's ``TaskStarted`` is not appended yet (it waits for the task's first
        append): a fact the task records appends it first.
        """
        task = loaded.machine.tasks[task_id]
        execution = loaded.id
        start_first = _nothing if started_at is None else self._start_fact(task_id, started_at)

        def record(kind: str, details: dict[str, Any]) -> int:
            ids: list[int] = []

            def fact(lo: Loaded) -> None:
                start_first(lo)
                ids[:] = [lo.machine.record(kind, details, task.scope, self.clock())]  # the last attempt's

            self._apply(execution, fact)
            if started_at is not None:
                self._starts.discard(execution, task_id)  # appended now
            return ids[0]

        context = TaskContext(
            execution=execution,
            task=task,
            state_machine=str(loaded.meta.get("state_machine", "")),
            version=int(loaded.meta.get("version", 0)),
            identity=identity_of(loaded.meta, loaded.history),
            meta=loaded.meta,
            history=tuple(loaded.history),
            record=record,
        )

        def heartbeat(details: Mapping[str, Any] | None = None) -> None:
            del details  # progress details are the executor's to log; the history keeps the fact
            try:
                self.heartbeat(execution, task_id)
            except TaskCancelled:
                context.cancelled.set()
                raise

        context.heartbeat = heartbeat
        return context

    def record(self, execution: str, kind: str, details: dict[str, Any]) -> int:
        """Record one of our own events (``OWN_TYPES``) in a running execution, outside any task (an
        approval revoked after its gate released); its event id. :class:`UsageError` when not running."""
        ids: list[int] = []

        def fact(lo: Loaded) -> None:
            if lo.status != "RUNNING":
                raise UsageError(f"execution {execution!r} is {lo.status}, not RUNNING")
            ids[:] = [lo.machine.record(kind, details, "", self.clock())]  # the last attempt's

        self._apply(execution, fact)
        return ids[0]

    def send_task_success(self, execution: str, token: str, output: Any) -> Loaded:
        """Answer the pending task whose token is ``token`` with ``output`` (``SendTaskSuccess``)."""
        return self._answer(
            execution, token, lambda lo: lo.machine.task_succeeded(token, output, self.clock())
        )

    def send_task_failure(self, execution: str, token: str, error: str, cause: str = "") -> Loaded:
        """Fail the pending task whose token is ``token`` (``SendTaskFailure``)."""
        return self._answer(
            execution, token, lambda lo: lo.machine.task_failed(token, error, cause, self.clock())
        )

    def _answer(self, execution: str, token: str, answer: Callable[[Loaded], None]) -> Loaded:
        def fact(lo: Loaded) -> None:
            lo.machine.advance_to(self.clock())  # an answer after a deadline fell due is too late
            if lo.status != "RUNNING" or token not in lo.machine.tasks:
                raise UsageError(f"execution {execution!r} has no pending task with token {token!r}")
            task = lo.machine.tasks[token]
            if not task.started:
                lo.machine.task_started(token, self.clock())
            answer(lo)

        return self._apply(execution, fact)

    def process(self, work: ClaimedWork, worker_id: str, cancelled: threading.Event | None = None) -> None:
        """Do one claimed work item and complete it in the same transaction as its events.

        ``cancelled`` is handed to a task's executor (:attr:`TaskContext.cancelled`); the worker sets
        it when the task must stop.
        """
        execution = str(work.payload["execution"])
        if work.kind == "task":
            with self._cache_lock:
                known = execution in self._cache
            if not known:
                self.load(execution, work=work)  # first met here: the item says how to load it
            self.run_task(
                execution,
                str(work.payload["task"]),
                complete=(work.id,),
                worker_id=worker_id,
                cancelled=cancelled,
            )
        else:
            self.fire_timers(execution, complete=(work.id,), worker_id=worker_id)

    def run_until_settled(
        self,
        execution: str,
        *,
        worker_id: str = "inline",
        poll: float = 0.05,
        timeout: float | None = None,
        on_event: Callable[[Loaded], None] | None = None,
    ) -> Loaded:
        """Drive an execution in this process until it ends (``start --wait``)."""
        deadline = None if timeout is None else self.clock() + timeout
        while True:
            loaded = self.load(execution)
            if on_event is not None:
                on_event(loaded)
            if loaded.status in TERMINAL:
                return loaded
            claimed = self.store.claim(worker_id, [codec.TASK_QUEUE, codec.TIMER_QUEUE], 10, 60.0)
            for work in claimed:
                self.process(work, worker_id)
            if not claimed:
                if deadline is not None and self.clock() > deadline:
                    return loaded
                time.sleep(poll)

    # ------------------------------------------------------------------ rollback
    def reset(self, execution: str, to_event: int, *, name: str | None = None, by: str = "") -> Loaded:
        """A new execution from the state ``execution`` had after event ``to_event``.

        The old execution is never changed; the two are linked both ways.
        """
        old = self.load(execution)
        if not 1 <= to_event <= len(old.history):
            raise UsageError(f"--to-event must be between 1 and {len(old.history)} for {execution!r}")
        version = self._version(old.meta)
        new_name = name or f"{old.meta['name']}-reset-{to_event}"
        if not _valid_name(new_name):
            raise UsageError(f"invalid execution name {new_name!r}")
        new_id = codec.execution_id(version.name, new_name)
        try:
            self.load(new_id)
        except UnknownExecution:
            pass
        else:
            raise ExecutionConflict(f"execution {new_id!r} already exists; choose another --name")
        meta = dict(
            old.meta,
            name=new_name,
            started_by=by or old.meta.get("started_by", ""),
            reset_from={"execution": execution, "event": to_event},
        )
        history: list[HistoryEvent] = []
        machine = self._machine(new_id, version, meta, history)
        prefix = _quiescent_prefix(old.history, to_event, lambda: self._machine(new_id, version, meta, []))
        replay(machine, old.history[:prefix])
        history.extend(old.history[:prefix])
        if machine.status != "RUNNING":
            raise UsageError(
                f"execution {execution!r} had already ended at event {to_event}: nothing to resume"
            )
        now = self.clock()
        machine.record(
            "ExecutionReset",
            {"executionArn": execution, "eventId": to_event, "resumedAfterEventId": prefix},
            "",
            now,
        )
        loaded = Loaded(new_id, machine, history, 0, meta, sha256=version.sha256)
        self._commit(loaded, 0, metadata=meta)
        self.store.append(
            codec.links_stream(execution),
            self.store.stream_version(codec.links_stream(execution)),
            [NewEvent(uuid.uuid4(), "ExecutionResetTo", {"execution": new_id, "event": to_event, "by": by})],
        )
        self._remember(loaded)
        return loaded

    def redrive(self, execution: str, *, by: str = "") -> Loaded:
        """Re-run a failed, timed-out or aborted execution from the states that did not succeed."""

        def fact(loaded: Loaded) -> None:
            if loaded.status not in ("FAILED", "TIMED_OUT", "ABORTED"):
                raise UsageError(
                    f"execution {execution!r} is {loaded.status}: "
                    "only FAILED, TIMED_OUT or ABORTED ones redrive"
                )
            try:
                loaded.machine.redrive(self.clock())
            except ValueError as exc:
                raise UsageError(str(exc)) from None

        return self._apply(execution, fact, metadata={"by": by} if by else None)

    # ------------------------------------------------------------------ inspecting
    def describe(self, execution: str) -> dict[str, Any]:
        """Status, version, input, output or error, times and links of an execution."""
        loaded = self.load(execution)
        return _describe(loaded, self._links(execution))

    def _links(self, execution: str) -> list[dict[str, Any]]:
        return [dict(r.data) for r in self.store.read_stream(codec.links_stream(execution))]

    def history(self, execution: str) -> list[HistoryEvent]:
        """The execution's events."""
        return list(self.load(execution).history)

    def list(
        self,
        *,
        state_machine: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Executions, newest first, optionally filtered; ``offset`` skips, ``limit`` bounds (None: all).

        One indexed read of the summaries the store keeps with every append (see
        :mod:`orchestrator.store.summaries`), not a fold of the global log.
        """
        if (limit is not None and limit < 0) or offset < 0:
            raise UsageError(f"limit and offset must be >= 0, not {limit} and {offset}")
        summaries = self.store.execution_summaries(
            state_machine=state_machine,
            status=None if status is None else status.upper(),
            limit=limit,
            offset=offset,
        )
        return [_listed(summary) for summary in summaries]

    def lineage(self, execution: str) -> dict[str, Any]:
        """What caused what: version and its publish event, trigger, resets and redrives, task runs."""
        loaded = self.load(execution)
        version = self._version(loaded.meta)
        tasks = []
        for event in loaded.history:
            if event.type in (
                "TaskScheduled",
                "RoleAssumed",
                "ExternalRunStarted",
                "ApprovalGranted",
                "ApprovalRejected",
                "TaskSucceeded",
                "TaskFailed",
            ):
                tasks.append(
                    {
                        "event": event.id,
                        "type": event.type,
                        "scope": event.scope,
                        **{k: v for k, v in event.details.items() if k not in ("output", "parameters")},
                    }
                )
        return {
            "execution": execution,
            "stateMachine": version.name,
            "version": {
                "number": version.version,
                "sha256": version.sha256,
                "publishedBy": version.published_by,
                "publishedAt": iso(version.published_at),
                "revision": version.revision,
                "approvedBy": version.approved_by,
                "publishEventPosition": version.event_position,
            },
            "alias": loaded.meta.get("alias"),
            "trigger": {"startedBy": loaded.meta.get("started_by", ""), **loaded.meta.get("trigger", {})},
            "resetFrom": loaded.meta.get("reset_from"),
            "resetTo": self._links(execution),
            "redrives": [
                {"event": e.id, **e.details} for e in loaded.history if e.type == "ExecutionRedriven"
            ],
            "tasks": tasks,
        }


def _describe(loaded: Loaded, links: list[dict[str, Any]]) -> dict[str, Any]:
    machine = loaded.machine
    first, last = loaded.history[0], loaded.history[-1]
    out: dict[str, Any] = {
        "execution": loaded.id,
        "name": loaded.meta.get("name"),
        "stateMachine": loaded.meta.get("state_machine"),
        "version": loaded.meta.get("version"),
        "alias": loaded.meta.get("alias"),
        "status": machine.status,
        "startDate": iso(first.timestamp),
        "stopDate": iso(last.timestamp) if machine.status in TERMINAL else None,
        "input": machine.input,
        "startedBy": loaded.meta.get("started_by", ""),
        "events": len(loaded.history),
        "redriveCount": sum(1 for e in loaded.history if e.type == "ExecutionRedriven"),
    }
    if machine.status == "SUCCEEDED":
        out["output"] = machine.output
    elif machine.status in TERMINAL:
        out["error"] = machine.error
        out["cause"] = machine.cause
    if loaded.meta.get("reset_from"):
        out["resetFrom"] = loaded.meta["reset_from"]
    if links:
        out["resetTo"] = links
    return out


def _quiescent_prefix(history: list[HistoryEvent], to_event: int, fresh: Callable[[], Execution]) -> int:
    """The length of the shortest prefix of ``history`` that reaches ``to_event`` and is a whole run.

    When ``to_event`` falls inside a run of events the machine decides in one go, the state "after"
    it is the end of that run: the machine continues deterministically to the next point where it
    waits for the outside world.
    """
    cut = to_event
    while True:
        try:
            replay(fresh(), history[:cut])
        except HistoryDiverged:
            if cut >= len(history):
                raise
            cut += 1
            continue
        return cut


def _listed(summary: ExecutionSummary) -> dict[str, Any]:
    """A row of :meth:`Executions.list`."""
    return {
        "execution": summary.execution,
        "name": summary.name,
        "stateMachine": summary.state_machine,
        "version": summary.version,
        "status": summary.status,
        "startDate": _iso_date(summary.started_at),
        "stopDate": None if summary.stopped_at is None else _iso_date(summary.stopped_at),
        "startedBy": summary.started_by or "",
    }


def _iso_date(moment: datetime) -> str:
    return iso(moment.timestamp())


def _nothing(loaded: Loaded) -> None:
    """A fact that changes nothing."""


def _heartbeat_due(task: TaskRequest, now: float) -> bool:
    """Whether a heartbeat at ``now`` is worth recording: started, with HeartbeatSeconds, and the last
    one older than a quarter of them."""
    if not task.started or task.heartbeat_seconds is None or task.heartbeat_at is None:
        return False
    return now - task.heartbeat_at >= task.heartbeat_seconds / 4


def _scheme(resource: str) -> str:
    return "arn" if resource.startswith("arn:") else resource.split(":", 1)[0]


def _valid_name(name: str) -> bool:
    return 1 <= len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)


def _new_name() -> str:
    return str(uuid.uuid4())
