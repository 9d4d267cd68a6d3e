"""The worker in this process, on SQLite and PostgreSQL: running executions, concurrency, timers,
wake-ups, graceful stop, lost leases, cancelled tasks, metrics and the workers registry."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from orchestrator.cli.worker import workers_command
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore, RecordedEvent
from orchestrator.worker import Worker, WorkerSettings

from .helpers import history_types, running, runs, start_many, statuses, tasks_machine, wait_until
from .plugin import PREFIX, install

FAST = {"lease_seconds": 30.0, "poll_seconds": 0.5, "registry_seconds": 0.5}


def test_runs_executions_with_tasks_and_timers_to_the_end(runtime: Runtime, runs_log: Path) -> None:
    executions = start_many(
        runtime, tasks_machine("echo", "sleep", wait_seconds=1), 5, {"log": str(runs_log), "seconds": 0.05}
    )
    worker = Worker(runtime, WorkerSettings(concurrency=3, until_idle=True, **FAST))
    worker.run()  # returns once everything, the Wait timers included, is done

    assert statuses(runtime, executions) == {"SUCCEEDED": 5}
    counted = runs(runs_log)
    assert len(counted) == 10 and set(counted.values()) == {1}  # each task ran once
    for execution in executions:
        types = history_types(runtime, execution)
        assert types.count("TaskSucceeded") == 2 and types.count("WaitStateExited") == 1
    samples = worker.metrics.registry
    assert (
        samples.get_sample_value("orchestrator_worker_claimed_total", {"queue": "tasks", "kind": "task"})
        == 10
    )
    assert (
        samples.get_sample_value("orchestrator_worker_claimed_total", {"queue": "timers", "kind": "timer"})
        == 5
    )
    assert (
        samples.get_sample_value("orchestrator_worker_succeeded_total", {"queue": "tasks", "kind": "task"})
        == 10
    )
    assert (
        samples.get_sample_value("orchestrator_worker_dispatch_latency_seconds_count", {"queue": "tasks"})
        == 10
    )
    assert runtime.store.workers() == []  # unregistered on the way out


def test_concurrency_bounds_the_items_running_at_once(runtime: Runtime) -> None:
    lock, now, peak = threading.Lock(), [0], [0]

    def slow(context: TaskContext) -> Any:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.3)
        with lock:
            now[0] -= 1
        return {}

    runtime.executors["arn"] = slow
    executions = start_many(runtime, tasks_machine("slow"), 6, {})
    Worker(runtime, WorkerSettings(concurrency=2, until_idle=True, **FAST)).run()
    assert statuses(runtime, executions) == {"SUCCEEDED": 6}
    assert peak[0] == 2


def test_an_idle_worker_wakes_for_new_work_and_for_timers(runtime: Runtime, runs_log: Path) -> None:
    # poll_seconds is long: only a notification (or SQLite's quick poll) and next_due wake it in time
    worker = Worker(runtime, WorkerSettings(concurrency=2, lease_seconds=30, poll_seconds=120))
    with running(worker):
        time.sleep(0.5)  # let it go idle
        [execution] = start_many(
            runtime, tasks_machine("echo", "echo", wait_seconds=1), 1, {"log": str(runs_log)}
        )
        wait_until(lambda: statuses(runtime, [execution]) == {"SUCCEEDED": 1}, 60, "the execution to end")


def test_stop_lets_running_tasks_finish(runtime: Runtime, runs_log: Path) -> None:
    [execution] = start_many(runtime, tasks_machine("sleep"), 1, {"log": str(runs_log), "seconds": 1.0})
    worker = Worker(runtime, WorkerSettings(concurrency=2, grace_seconds=60, **FAST))
    with running(worker) as thread:
        wait_until(lambda: bool(runs(runs_log)), what="the task to start")
        worker.stop()
        thread.join(60)
    assert statuses(runtime, [execution]) == {"SUCCEEDED": 1}


def test_past_the_grace_period_running_items_are_released_then_cancelled(
    runtime: Runtime, runs_log: Path
) -> None:
    [execution] = start_many(runtime, tasks_machine("sleep"), 1, {"log": str(runs_log), "seconds": 120})
    worker = Worker(runtime, WorkerSettings(concurrency=1, grace_seconds=0.2, **FAST))
    with running(worker) as thread:
        wait_until(lambda: bool(runs(runs_log)), what="the task to start")
        worker.stop()
        thread.join(60)
    # released: another worker claims it at once, and the cancelled run recorded nothing
    [claimed] = runtime.store.claim("next-worker", ["tasks"], 5, 30)
    assert claimed.payload["execution"] == execution and claimed.attempts == 2
    time.sleep(0.5)  # the cancelled executor's (fenced) append has had time to try
    types = history_types(runtime, execution)
    assert "TaskFailed" not in types and "TaskSucceeded" not in types


def steal_lease(url: str, work_id: str) -> None:
    """Make ``work_id`` leased by someone else, behind the worker's back."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE work_items SET leased_by = 'thief' WHERE id = ?", (work_id,))
    else:
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as db:
            db.execute("UPDATE work_items SET leased_by = 'thief' WHERE id = %s", (work_id,))


def test_a_lost_lease_cancels_the_task_and_its_result_is_fenced_off(
    runtime: Runtime, runs_log: Path, database_url: str
) -> None:
    [execution] = start_many(runtime, tasks_machine("sleep"), 1, {"log": str(runs_log), "seconds": 120})
    worker = Worker(runtime, WorkerSettings(concurrency=1, lease_seconds=1.5, poll_seconds=0.5))
    with running(worker):
        wait_until(lambda: bool(runs(runs_log)), what="the task to start")
        [item] = worker.in_flight.snapshot()
        steal_lease(database_url, item.work.id)
        wait_until(lambda: len(worker.in_flight) == 0, what="the task to be cancelled")
    types = history_types(runtime, execution)
    assert "TaskFailed" not in types and "TaskSucceeded" not in types
    expired = worker.metrics.registry.get_sample_value(
        "orchestrator_worker_lease_expirations_total", {"queue": "tasks", "kind": "task"}
    )
    assert expired is not None and expired >= 1


def test_a_task_no_longer_pending_is_cancelled(runtime: Runtime) -> None:
    started, cancelled = threading.Event(), threading.Event()

    def patient(context: TaskContext) -> Any:
        started.set()
        if context.cancelled.wait(120):
            cancelled.set()
            raise TaskError("Test.Cancelled", "cancelled")
        return {}

    runtime.executors["arn"] = patient
    [execution] = start_many(runtime, tasks_machine("patient"), 1, {})
    worker = Worker(runtime, WorkerSettings(concurrency=1, lease_seconds=1.5, poll_seconds=0.5))
    with running(worker):
        wait_until(started.is_set, what="the task to start")
        runtime.executions.stop(execution, "Test.Stopped", "by the test")
        wait_until(cancelled.is_set, what="the executor to see the cancellation")
        wait_until(lambda: len(worker.in_flight) == 0, what="the item to end")
    assert statuses(runtime, [execution]) == {"ABORTED": 1}
    assert runtime.store.queue_depths(["tasks"])["tasks"].leased == 0  # the item was completed


def json_output(output: str) -> Any:
    """The command's JSON line (the store's log lines may precede it: the test does not configure logs)."""
    return json.loads(output.strip().splitlines()[-1])


def test_workers_are_listed_with_their_current_tasks(
    runtime: Runtime, runs_log: Path, database_url: str
) -> None:
    [execution] = start_many(runtime, tasks_machine("sleep"), 1, {"log": str(runs_log), "seconds": 120})
    worker = Worker(runtime, WorkerSettings(concurrency=2, grace_seconds=0.1, **FAST), worker_id="w-listed")
    cli_runner = CliRunner()
    with running(worker):
        wait_until(lambda: bool(runs(runs_log)), what="the task to start")

        def listed() -> list[dict[str, Any]]:
            result = cli_runner.invoke(workers_command, ["--json", "--database-url", database_url])
            assert result.exit_code == 0, result.output
            rows: list[dict[str, Any]] = json_output(result.output)
            return rows

        wait_until(lambda: any(row["current"] for row in listed()), what="the registry to show the task")
        [row] = listed()
        assert row["id"] == "w-listed" and row["concurrency"] == 2 and row["queues"] == ["tasks", "timers"]
        assert row["heartbeatAgeSeconds"] < 60
        [current] = row["current"]
        assert (
            current["execution"] == execution and current["state"] == "T1-sleep" and current["attempt"] == 0
        )
        table = cli_runner.invoke(workers_command, ["--database-url", database_url])
        assert table.exit_code == 0
        assert (
            "w-listed" in table.output and f"{execution} T1-sleep" in table.output and "1/2" in table.output
        )
    gone = cli_runner.invoke(workers_command, ["--json", "--database-url", database_url])
    assert json_output(gone.output) == []


def test_metrics_are_served_in_the_prometheus_text_format(runtime: Runtime) -> None:
    start_many(runtime, tasks_machine("echo"), 2, {})
    worker = Worker(runtime, WorkerSettings(concurrency=2, until_idle=True, **FAST))
    server = worker.metrics.serve(0, "127.0.0.1")
    try:
        worker.run()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=30) as response:
            text = response.read().decode()
    finally:
        server.close()
    assert 'orchestrator_worker_claimed_total{kind="task",queue="tasks"} 2.0' in text
    assert 'orchestrator_worker_succeeded_total{kind="task",queue="tasks"} 2.0' in text
    assert "orchestrator_worker_dispatch_latency_seconds_bucket" in text
    assert 'orchestrator_queue_depth{queue="tasks",state="ready"}' in text
    assert "orchestrator_worker_in_flight 0.0" in text


@pytest.mark.parametrize("function", ["fail"])
def test_a_failing_task_is_recorded_and_the_item_completed(runtime: Runtime, function: str) -> None:
    definition = tasks_machine(function)
    definition["States"][f"T1-{function}"]["Retry"] = [
        {"ErrorEquals": ["Test.Failed"], "MaxAttempts": 1, "IntervalSeconds": 1}
    ]
    [execution] = start_many(runtime, definition, 1, {})
    worker = Worker(runtime, WorkerSettings(concurrency=1, until_idle=True, **FAST))
    worker.run()  # the retry's back-off is a durable timer: until_idle waits for it
    assert statuses(runtime, [execution]) == {"FAILED": 1}
    assert history_types(runtime, execution).count("TaskFailed") == 2
    assert runtime.store.next_due(["tasks", "timers"]) is None


def test_unknown_resources_fail_the_task_not_the_worker(runtime: Runtime) -> None:
    runtime.executors.pop("arn")
    [execution] = start_many(runtime, tasks_machine("echo"), 1, {})
    Worker(runtime, WorkerSettings(concurrency=1, until_idle=True, **FAST)).run()
    assert statuses(runtime, [execution]) == {"FAILED": 1}
    assert PREFIX  # the test functions' resources are Lambda ARNs nobody else runs


def test_items_claimed_ahead_are_given_back_at_once_when_stopping(runtime: Runtime, runs_log: Path) -> None:
    executions = start_many(runtime, tasks_machine("sleep"), 3, {"log": str(runs_log), "seconds": 120})
    settings = WorkerSettings(concurrency=1, prefetch=2, grace_seconds=0.2, **FAST)
    worker = Worker(runtime, settings)
    with running(worker) as thread:
        wait_until(lambda: bool(runs(runs_log)) and len(worker.in_flight) == 3, what="one running, two ahead")
        assert sum(item.started for item in worker.in_flight.snapshot()) == 1
        worker.stop()
        thread.join(60)
    # all three are claimable again; only the one that ran was ever started
    again = runtime.store.claim("next-worker", ["tasks"], 5, 30)
    assert sorted(work.payload["execution"] for work in again) == sorted(executions)
    assert len(runs(runs_log)) == 1
    assert sum(history_types(runtime, execution).count("TaskStarted") for execution in executions) == 1


class ReadCountingStore(EventStore):
    """The real store, noting which streams are read from their start."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.full_reads: list[str] = []

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        if from_version <= 1:
            self.full_reads.append(stream_id)
        return super().read_stream(stream_id, from_version, limit)


@pytest.mark.parametrize("claim_history", [100, 2])
def test_a_worker_meeting_executions_first_gets_their_histories_with_the_claim(
    runtime: Runtime, database_url: str, runs_log: Path, claim_history: int
) -> None:
    """Executions started elsewhere: the claims carry their histories, so the worker never reads
    them from the start (with a history limit below their length, it reads them as before)."""
    executions = start_many(runtime, tasks_machine("echo", "echo"), 4, {"log": str(runs_log)})
    store = ReadCountingStore.from_url(database_url)
    try:
        elsewhere = build_runtime(store, integrations=False)
        install(elsewhere)
        elsewhere.executions.claim_history = claim_history
        Worker(elsewhere, WorkerSettings(concurrency=2, until_idle=True, **FAST)).run()
    finally:
        store.close()

    assert statuses(runtime, executions) == {"SUCCEEDED": 4}
    assert set(runs(runs_log).values()) == {1} and len(runs(runs_log)) == 8
    streams = {f"execution:{execution}" for execution in executions}
    if claim_history == 100:
        assert not streams & set(store.full_reads)
    else:
        assert streams <= set(store.full_reads)
