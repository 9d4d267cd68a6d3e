"""Fault tests with real worker processes (``orchestrator worker``) on PostgreSQL, and the command line.

The workers run the test functions of :mod:`.plugin` (``--plugin worker.plugin:install`` with
``tests/`` on ``PYTHONPATH``), which log every run to a file: that is how "each task ran exactly once
per attempt" is counted across processes. Histories are read from the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore, StoreUnavailable

from . import plugin
from .helpers import history_types, runs, start_many, statuses, tasks_machine, wait_until

REPO = Path(__file__).resolve().parents[2]
ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")


class Workers:
    """Worker processes of one test; every one still running is killed at the end."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``orchestrator worker --plugin worker.plugin:install ARGS`` (stderr to a log file)."""
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "tests"),
            "ORCHESTRATOR_DATABASE_URL": self.url,
        }
        env.pop("ORCHESTRATOR_CONFIG", None)
        log = (self.folder / f"worker-{len(self.processes)}.log").open("wb")
        self._logs.append(log)
        process = subprocess.Popen(
            [str(ORCHESTRATOR), "--log-level", "info", "worker", "--plugin", "worker.plugin:install", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.folder,
        )
        self.processes.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.folder / f"worker-{index}.log").read_text(errors="replace")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        for log in self._logs:
            log.close()


@pytest.fixture
def pg_runtime(postgres_url: str) -> Iterator[Runtime]:
    """A runtime (no integrations) on a fresh PostgreSQL database, schema at head."""
    store = EventStore.from_url(postgres_url, auto_upgrade=True)
    runtime = build_runtime(store, integrations=False)
    plugin.install(runtime)
    yield runtime
    store.close()


@pytest.fixture
def workers(postgres_url: str, tmp_path: Path) -> Iterator[Workers]:
    spawned = Workers(postgres_url, tmp_path)
    yield spawned
    spawned.close()


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM ``process`` and return its exit status."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def psql(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def reconnect(store: EventStore) -> None:
    """Use ``store`` until its pool, whose connections were terminated, has reconnected."""
    for _ in range(10):
        try:
            store.last_position()
            return
        except StoreUnavailable:
            continue
    store.last_position()


def succeeded(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT count(*) FROM events WHERE type = 'ExecutionSucceeded'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
def test_a_worker_killed_mid_task_loses_its_lease_and_another_finishes_the_execution(
    pg_runtime: Runtime, workers: Workers, runs_log: Path, tmp_path: Path
) -> None:
    value = {"log": str(runs_log), "seconds": 600, "block_first": str(tmp_path / "first-run")}
    [execution] = start_many(pg_runtime, tasks_machine("sleep", "echo"), 1, value)
    doomed = workers.spawn("--lease-seconds", "2", "--poll-seconds", "1")
    wait_until(lambda: bool(runs(runs_log)), 120, "the first worker to start the task")
    doomed.kill()  # SIGKILL: no clean-up, the lease is left to expire
    assert doomed.wait(30) == -signal.SIGKILL

    survivor = workers.spawn("--lease-seconds", "2", "--poll-seconds", "1")
    wait_until(lambda: statuses(pg_runtime, [execution]) == {"SUCCEEDED": 1}, 120, "the execution to end")
    assert stop(survivor) == 0

    types = history_types(pg_runtime, execution)
    assert types.count("TaskStarted") == 2  # one per Task state: the second claim did not start it again
    assert types.count("TaskSucceeded") == 2 and types.count("TaskFailed") == 0
    counted = runs(runs_log)
    sleep_runs = [count for (_, token, _), count in counted.items() if "T1-sleep" in token]
    assert sleep_runs == [2]  # the killed run, then the one after the lease expired
    assert "worker.stopped" in workers.log(1)


@pytest.mark.postgres
def test_200_executions_finish_exactly_while_the_workers_connections_are_terminated(
    pg_runtime: Runtime, workers: Workers, runs_log: Path, postgres_url: str
) -> None:
    # 400 tasks of 50 ms on 2 x 4 threads: at least 2.5 s of work, cut every 0.3 s
    value = {"log": str(runs_log), "seconds": 0.05}
    executions = start_many(pg_runtime, tasks_machine("sleep", "sleep"), 200, value)
    options = ("--concurrency", "4", "--lease-seconds", "4", "--poll-seconds", "1")
    spawned = [workers.spawn(*options) for _ in range(2)]
    terminated: list[int] = []
    finished, done = threading.Event(), threading.Event()

    def terminate_connections() -> None:
        # one connection kills all the others and counts progress: pg_backend_pid() is spared
        with psql(postgres_url) as admin:
            while not done.is_set():
                if succeeded(admin) >= len(executions):
                    finished.set()
                    return
                if runs(runs_log):  # once the workers got going
                    rows = admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    ).fetchall()
                    terminated.append(len(rows))
                done.wait(0.3)

    killer = threading.Thread(target=terminate_connections, daemon=True)
    killer.start()
    try:
        wait_until(finished.is_set, 300, "all 200 executions to end")
    finally:
        done.set()
        killer.join(30)
    reconnect(pg_runtime.store)  # this test's own pooled connections were cut too
    assert sum(1 for count in terminated if count) >= 2, terminated  # connections were cut, repeatedly
    assert all(process.poll() is None for process in spawned)  # nobody crashed
    assert [stop(process) for process in spawned] == [0, 0]

    assert statuses(pg_runtime, executions) == {"SUCCEEDED": 200}
    with psql(postgres_url) as check:
        per_stream = check.execute(
            "SELECT stream_id, count(*), count(*) FILTER (WHERE type = 'TaskSucceeded') FROM events "
            "WHERE stream_id LIKE 'execution:%%' GROUP BY stream_id"
        ).fetchall()
    assert len(per_stream) == 200
    # ExecutionStarted, 2 x (Entered, Scheduled, Started, Succeeded, Exited), ExecutionSucceeded
    assert {(count, tasks) for _, count, tasks in per_stream} == {(12, 2)}
    assert any("store" in workers.log(n) and "unavailable" in workers.log(n) for n in range(2))


@pytest.mark.postgres
@pytest.mark.parametrize("count", [2, 4])
def test_workers_racing_for_1000_tasks_run_each_exactly_once(
    pg_runtime: Runtime, workers: Workers, runs_log: Path, count: int
) -> None:
    spawned = [workers.spawn("--concurrency", "4", "--poll-seconds", "1") for _ in range(count)]
    # all of them up (in the registry) before the work arrives, so they race for all of it
    wait_until(lambda: len(pg_runtime.store.workers()) == count, 120, "the workers to register")
    executions = start_many(pg_runtime, tasks_machine(*["echo"] * 5), 200, {"log": str(runs_log)})
    with psql(workers.url) as watcher:
        wait_until(lambda: succeeded(watcher) >= len(executions), 300, "all 1,000 tasks to run")
    assert [stop(process) for process in spawned] == [0] * count

    counted = runs(runs_log)
    assert len(counted) == 1000
    assert Counter(counted.values()) == {1: 1000}  # each (execution, task, attempt) ran once
    pids = Counter(line.rsplit(" ", 1)[1] for line in runs_log.read_text().splitlines())
    assert len(pids) >= 2, pids  # the work was shared
    assert statuses(pg_runtime, executions) == {"SUCCEEDED": 200}


@pytest.mark.postgres
def test_sigterm_lets_tasks_in_flight_finish_then_exits_0(
    pg_runtime: Runtime, workers: Workers, runs_log: Path
) -> None:
    executions = start_many(pg_runtime, tasks_machine("sleep"), 3, {"log": str(runs_log), "seconds": 2})
    process = workers.spawn("--concurrency", "4", "--grace-seconds", "120")
    wait_until(lambda: len(runs(runs_log)) == 3, 120, "the three tasks to start")
    assert stop(process, timeout=120) == 0
    assert statuses(pg_runtime, executions) == {"SUCCEEDED": 3}
    assert pg_runtime.store.workers() == []  # it took its row out of the registry
    assert "worker.draining" in workers.log(0)


@pytest.mark.postgres
def test_a_second_sigterm_exits_at_once_and_leaves_the_leases_to_expire(
    pg_runtime: Runtime, workers: Workers, runs_log: Path
) -> None:
    [execution] = start_many(pg_runtime, tasks_machine("sleep"), 1, {"log": str(runs_log), "seconds": 600})
    process = workers.spawn("--grace-seconds", "600", "--lease-seconds", "60")
    wait_until(lambda: bool(runs(runs_log)), 120, "the task to start")
    process.send_signal(signal.SIGTERM)
    wait_until(lambda: "worker.draining" in workers.log(0), 60, "the worker to start draining")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 50  # at once, not after the 600 s grace period
    depth = pg_runtime.store.queue_depths(["tasks"])["tasks"]
    assert depth.leased == 1  # not released: the lease expires normally
    assert statuses(pg_runtime, [execution]) == {"RUNNING": 1}


def run_cli(tmp_path: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "ORCHESTRATOR_DATABASE_URL": url}
    env.pop("ORCHESTRATOR_CONFIG", None)
    return subprocess.run(
        [str(ORCHESTRATOR), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_worker_until_idle_on_sqlite_runs_everything_then_exits_0(
    runtime: Runtime, runs_log: Path, tmp_path: Path, sqlite_url: str
) -> None:
    executions = start_many(runtime, tasks_machine("echo", "echo", wait_seconds=1), 3, {"log": str(runs_log)})
    result = run_cli(
        tmp_path,
        "worker",
        "--plugin",
        "worker.plugin:install",
        "--until-idle",
        "--concurrency",
        "2",
        url=sqlite_url,
    )
    assert result.returncode == 0, result.stderr
    assert statuses(runtime, executions) == {"SUCCEEDED": 3}
    assert Counter(runs(runs_log).values()) == {1: 6}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """These command-line tests run on SQLite only (the fault tests above are PostgreSQL's)."""
    return str(request.getfixturevalue("sqlite_url"))


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--plugin", "nope"], None, "plugin 'nope': expected MODULE:FUNCTION"),
        (["--plugin", "no_such_module:install"], None, "cannot import 'no_such_module'"),
        (["--plugin", "worker.plugin:nothing"], None, "has no 'nothing'"),
        (["--queues", "tasks,,timers"], None, "--queues: empty queue name"),
        ([], "[worker]\nconcurrency = 0\n", "worker.concurrency: must be at least 1"),
        ([], "[worker]\nlease_seconds = 'long'\n", "worker.lease_seconds: must be a number of seconds"),
        ([], "[worker]\nspeed = 3\n", "worker.speed: unknown setting"),
        ([], "[worker]\nplugins = 'x:y'\n", "worker.plugins: must be a list of non-empty strings"),
    ],
)
def test_bad_worker_options_are_usage_errors(
    tmp_path: Path, sqlite_url: str, args: list[str], config: str | None, message: str
) -> None:
    options = []
    if config is not None:
        (tmp_path / "orchestrator.toml").write_text(config)
        options = ["--config", str(tmp_path / "orchestrator.toml")]
    result = run_cli(tmp_path, *options, "worker", "--until-idle", *args, url=sqlite_url)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_database_url_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "worker", "--until-idle", url="mysql://x/y")
    assert result.returncode == 2 and "mysql" in result.stderr
