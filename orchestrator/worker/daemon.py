"""The worker: claim ready work, run it concurrently, keep its leases, report, stop gracefully.

One :class:`Worker` runs four kinds of threads:

- the **loop** (the caller of :meth:`Worker.run`): claims up to its free capacity with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and hands each item to the pool; with nothing to claim it
  sleeps until the next item falls due (:meth:`EventStore.next_due`: a timer, a retry back-off, an
  expiring lease), a notification, a freed slot, or ``poll_seconds``, whichever comes first;
- the **pool** (``concurrency`` threads) runs the items: ``task`` and ``timer`` items through
  :meth:`Executions.process`, other kinds through the handler an integration registered. Every
  append that completes an item is fenced by its lease, so a worker that lost it cannot apply a stale
  result (``LeaseLost``), and by the stream's expected version;
- the **waker** blocks in :meth:`EventStore.wait_for_work` (LISTEN/NOTIFY on PostgreSQL, polling on
  SQLite) and wakes the loop when work is enqueued or released;
- the **heartbeat** renews the leases of the items in flight every third of a lease, cancels a task
  whose lease was lost or which is no longer pending (stopped execution, answered or timed-out task),
  and every ``registry_seconds`` upserts this worker's row in the workers registry and samples the
  queue depths.

Database outages: every call to the store is retried after a jittered, growing back-off, never
in a tight loop and never by exiting; appends are idempotent by event id and fenced by version and
lease, so nothing is lost or applied twice, and an item whose processing failed is claimed again
when its lease expires.

Stopping (:meth:`Worker.stop`, SIGTERM): stop claiming, let the running items finish for up to
``grace_seconds``, then release the leases of the rest (other workers claim them at once) and set
their ``cancelled`` events, in that order, so a cancelled task's result is fenced off rather than
recorded as a failure.

All threads share the runtime's :class:`Executions` (and its cache of replayed executions): it runs
each execution's load-decide-commit under a lock of that execution, never around an executor.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from orchestrator.backoff import Backoff
from orchestrator.runtime import Runtime
from orchestrator.store import ClaimedWork, LeaseLost, StoreError, WorkerRecord
from orchestrator.worker.inflight import InFlight, InFlightItems
from orchestrator.worker.metrics import WorkerMetrics
from orchestrator.worker.pool import DaemonPool
from orchestrator.worker.settings import WorkerSettings, describe

log = structlog.get_logger(__name__)

#: Registry rows silent for this long are deleted when a worker starts (killed workers' rows).
PRUNE_AFTER = timedelta(days=1)
#: The shortest sleep of an idle loop (guards against spinning on a clock skew).
MIN_SLEEP = 0.05


def new_worker_id() -> str:
    """``<host>-<pid>-<random>``: unique, and says where to look."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker process's engine; :meth:`run` blocks until :meth:`stop` (or idle with ``until_idle``)."""

    def __init__(
        self,
        runtime: Runtime,
        settings: WorkerSettings | None = None,
        *,
        worker_id: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.settings = settings or WorkerSettings()
        self.queues = list(self.settings.queues or runtime.queues)
        self.id = worker_id or new_worker_id()
        self.metrics = metrics or WorkerMetrics()
        self.in_flight = InFlightItems()
        self.started_at = datetime.now(UTC)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask the worker to stop gracefully (thread-safe, and safe from a signal handler)."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def run(self) -> None:
        """Claim and run work until stopped; then finish or release what is running, and return."""
        with structlog.contextvars.bound_contextvars(worker_id=self.id):
            log.info("worker.started", queues=self.queues, settings=describe(self.settings))
            pool = DaemonPool(self.settings.concurrency, name=f"worker-{self.id}")
            self._start_thread("waker", self._waker)
            self._start_thread("heartbeat", self._heartbeat)
            try:
                self._prune_registry()
                self._report()
                self._loop(pool)
                self._drain()
            finally:
                self._finished.set()
                for thread in self._threads:
                    thread.join(self.settings.poll_seconds + 5)
                pool.shutdown()
                self._unregister()
                log.info("worker.stopped")

    def _start_thread(self, name: str, target: Callable[[], None]) -> None:
        worker_id = self.id

        def run() -> None:
            with structlog.contextvars.bound_contextvars(worker_id=worker_id):
                target()

        thread = threading.Thread(target=run, name=f"{name}-{self.id}", daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ the loop
    def _loop(self, pool: DaemonPool) -> None:
        backoff = Backoff()
        concurrency, prefetch = self.settings.concurrency, self.settings.claim_ahead
        while not self._stopping.is_set():
            self._wake.clear()
            running = len(self.in_flight)
            # Claim when a thread is (or is about to be) idle: with prefetch, up to that many more
            # than the threads, in batches, so a claim (one commit) serves several items.
            free = concurrency + prefetch - running if running < concurrency + min(prefetch, 1) else 0
            sleep = self.settings.poll_seconds
            if free > 0:
                claimed_at = time.monotonic()
                try:
                    claimed = self.store.claim(
                        self.id,
                        self.queues,
                        free,
                        self.settings.lease_seconds,
                        history_limit=self.runtime.executions.claim_history,
                    )
                    due = None if len(claimed) == free else self.store.next_due(self.queues)
                except StoreError as error:
                    self._store_trouble("claim", error, backoff)
                    continue
                except Exception:
                    log.exception("worker.claim_crashed")
                    self._stopping.wait(backoff.next())
                    continue
                backoff.reset()
                for work in claimed:
                    self._dispatch(pool, work, claimed_at)
                if len(claimed) == free:
                    continue
                if self.settings.until_idle and running == 0 and not claimed and due is None:
                    log.info("worker.idle")
                    return
                if due is not None:
                    sleep = min(sleep, (due - self.store.now()).total_seconds())
            self._wake.wait(max(sleep, MIN_SLEEP))

    def _store_trouble(self, what: str, error: StoreError, backoff: Backoff) -> None:
        delay = backoff.next()
        log.warning("worker.store_unavailable", during=what, error=str(error), retry_in=round(delay, 2))
        self._stopping.wait(delay)

    def _dispatch(self, pool: DaemonPool, work: ClaimedWork, claimed_at: float) -> None:
        now = datetime.now(UTC)
        item = InFlight(work, now, claimed_at)
        self.in_flight.add(item)
        self.metrics.in_flight.set(len(self.in_flight))
        self.metrics.claimed.labels(work.queue, work.kind).inc()
        if work.attempts > 1:
            self.metrics.retried.labels(work.queue, work.kind).inc()
        else:
            self.metrics.dispatch_latency.labels(work.queue).observe(
                max(0.0, (now - work.run_at).total_seconds())
            )
        pool.submit(lambda: self._run(item))

    # ------------------------------------------------------------------ one item
    def _run(self, item: InFlight) -> None:
        if not item.begin():
            return  # withdrawn at shutdown before it started: released, another worker runs it
        work = item.work
        labels = (work.queue, work.kind)
        context = {"worker_id": self.id, "work_id": work.id, "kind": work.kind, "execution": item.execution}
        with structlog.contextvars.bound_contextvars(**context):
            try:
                if work.history is not None:
                    self.runtime.executions.adopt(work, item.claimed_at)
                self._describe_task(item)
                with structlog.contextvars.bound_contextvars(state=item.state, attempt=item.attempt):
                    log.debug("worker.item_started", claims=work.attempts)
                    handler = self.runtime.handlers.get(work.kind)
                    if handler is not None:
                        handler(work, self.id)
                    else:
                        self.runtime.executions.process(work, self.id, cancelled=item.cancelled)
                    item.finished = True  # at once: the heartbeat must not cancel a task just answered
                    self.metrics.succeeded.labels(*labels).inc()
                    log.debug("worker.item_done")
            except LeaseLost:
                self.metrics.lease_expirations.labels(*labels).inc()
                log.warning("worker.lease_lost", note="another worker has it; this result is not applied")
            except StoreError as error:
                self.metrics.failed.labels(*labels).inc()
                log.warning(
                    "worker.item_interrupted",
                    error=str(error),
                    note="claimed again when its lease expires",
                    lease_expires_at=work.lease_expires_at.isoformat(),
                )
            except Exception:
                self.metrics.failed.labels(*labels).inc()
                log.exception("worker.item_crashed", note="claimed again when its lease expires")
            finally:
                item.finished = True
                self.in_flight.remove(work.id)
                self.metrics.in_flight.set(len(self.in_flight))
                self._wake.set()

    def _describe_task(self, item: InFlight) -> None:
        """Fill in the state name and attempt of a task item (for logs and the registry), from the
        execution as cached (possibly stale: processing the item brings it up to date)."""
        execution, token = item.execution, item.task
        if execution is None or token is None:
            return
        executions = self.runtime.executions
        loaded = executions.cached(execution) or executions.load(execution, work=item.work)
        task = loaded.machine.tasks.get(token)
        if task is not None:
            item.state, item.attempt = task.state_name, task.attempt

    # ------------------------------------------------------------------ waker
    def _waker(self) -> None:
        backoff = Backoff()
        while not self._finished.is_set():
            try:
                woken = self.store.wait_for_work(self.queues, min(1.0, self.settings.poll_seconds))
            except StoreError as error:
                delay = backoff.next()
                log.warning("worker.listen_failed", error=str(error), retry_in=round(delay, 2))
                self._finished.wait(delay)
                continue
            except Exception:
                log.exception("worker.waker_crashed")
                self._finished.wait(backoff.next())
                continue
            backoff.reset()
            if woken:
                self._wake.set()

    # ------------------------------------------------------------------ heartbeat
    def _heartbeat(self) -> None:
        every = {"renew": self.settings.renew_every, "report": self.settings.registry_seconds}
        due = {name: time.monotonic() + seconds for name, seconds in every.items()}
        steps = {"renew": (self._renew, self._check_tasks), "report": (self._report,)}
        while not self._finished.wait(max(MIN_SLEEP, min(due.values()) - time.monotonic())):
            now = time.monotonic()
            for name, actions in steps.items():
                if now < due[name]:
                    continue
                due[name] = now + every[name]
                for action in actions:
                    try:
                        action()
                    except Exception:  # this thread keeps the leases: it must outlive any bug
                        log.exception("worker.heartbeat_crashed", step=action.__name__)

    def _renew(self) -> None:
        items = [item for item in self.in_flight.snapshot() if not item.finished]
        if not items:
            return
        try:
            held = set(
                self.store.renew(self.id, [item.work.id for item in items], self.settings.lease_seconds)
            )
        except Exception as error:
            log.warning("worker.renew_failed", error=str(error), items=len(items))
            return
        for item in items:
            if item.work.id in held or item.finished or item.cancelled.is_set():
                continue
            item.cancelled.set()
            self.metrics.lease_expirations.labels(item.work.queue, item.work.kind).inc()
            log.warning(
                "worker.lease_expired",
                work_id=item.work.id,
                execution=item.execution,
                state=item.state,
                note="cancelling the task: another worker may run it",
            )

    def _check_tasks(self) -> None:
        """Cancel the running tasks that are no longer pending (stopped, answered, timed out)."""
        for item in self.in_flight.snapshot():
            execution, token = item.execution, item.task
            if execution is None or token is None or item.finished or item.cancelled.is_set():
                continue
            try:
                pending = self.runtime.executions.task_pending(execution, token)
            except StoreError as error:
                log.warning("worker.task_check_failed", error=str(error))
                return
            except Exception:
                log.exception("worker.task_check_crashed", execution=execution)
                continue
            if not pending and not item.finished:
                item.cancelled.set()
                log.info(
                    "worker.task_cancelled",
                    work_id=item.work.id,
                    execution=execution,
                    state=item.state,
                    reason="no longer pending",
                )

    # ------------------------------------------------------------------ registry
    def _record(self) -> WorkerRecord:
        return WorkerRecord(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=tuple(self.queues),
            concurrency=self.settings.concurrency,
            started_at=self.started_at,
            heartbeat_at=self.started_at,
            current=tuple(item.describe() for item in self.in_flight.snapshot()),
        )

    def _report(self) -> None:
        """Upsert this worker's registry row and sample the queue depths (best effort)."""
        try:
            self.store.save_worker(self._record())
            self.metrics.record_depths(self.store.queue_depths(self.queues))
        except Exception as error:  # the registry is informative: never fatal
            log.warning("worker.report_failed", error=str(error))

    def _prune_registry(self) -> None:
        try:
            self.store.prune_workers(PRUNE_AFTER)
        except Exception as error:
            log.warning("worker.prune_failed", error=str(error))

    def _unregister(self) -> None:
        try:
            self.store.remove_worker(self.id)
        except Exception as error:
            log.warning("worker.unregister_failed", error=str(error), note="the row goes stale instead")

    # ------------------------------------------------------------------ stopping
    def _drain(self) -> None:
        """Give back the items claimed ahead at once; let running ones finish within the grace
        period; release and cancel the rest."""
        waiting = [item for item in self.in_flight.snapshot() if item.withdraw()]
        if waiting:
            self._release([item.work.id for item in waiting], "not started")
            for item in waiting:
                self.in_flight.remove(item.work.id)
        if not len(self.in_flight):
            return
        deadline = time.monotonic() + self.settings.grace_seconds
        log.info("worker.draining", running=len(self.in_flight), grace_seconds=self.settings.grace_seconds)
        while len(self.in_flight) and (remaining := deadline - time.monotonic()) > 0:
            self._wake.clear()
            if len(self.in_flight):
                self._wake.wait(min(remaining, 0.5))
        rest = [item for item in self.in_flight.snapshot() if not item.finished]
        if not rest:
            return
        self._release([item.work.id for item in rest], "grace period over")
        for item in rest:
            item.cancelled.set()

    def _release(self, ids: list[str], reason: str) -> None:
        try:
            self.store.release(self.id, ids)
            log.info("worker.released", work_ids=ids, reason=reason)
        except Exception as error:
            log.warning("worker.release_failed", work_ids=ids, error=str(error), note="leases will expire")
