"""The worker daemon: ``orchestrator worker`` claims ready work from the event store and runs it.

Many worker processes share one PostgreSQL (SQLite runs one). Each claims with
``SELECT ... FOR UPDATE SKIP LOCKED``, wakes on LISTEN/NOTIFY when work is enqueued (polling as a
fallback, and always on SQLite), sleeps until the next durable timer when idle, runs items
concurrently in a pool, renews their leases while they run, and stops gracefully on SIGTERM.

Modules: :mod:`.daemon` (:class:`Worker`, the threads and their story), :mod:`.settings` (the
``[worker]`` table), :mod:`.plugins` (``module:function`` callables that register executors),
:mod:`.metrics` (Prometheus), :mod:`.inflight` (the running items), :mod:`.pool` (daemon threads),
:mod:`.backoff` (retrying the database), :mod:`.signals` (SIGTERM/SIGINT).
"""

from __future__ import annotations

from orchestrator.worker.daemon import Worker, new_worker_id
from orchestrator.worker.metrics import WorkerMetrics
from orchestrator.worker.settings import WorkerSettings

__all__ = ["Worker", "WorkerMetrics", "WorkerSettings", "new_worker_id"]
