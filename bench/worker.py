"""The worker daemon on PostgreSQL: throughput against procrastinate, dispatch latency, idle memory.

1. Tasks per second with 1, 2 and 4 ``orchestrator worker`` processes (``--concurrency 4`` each) for
   executions of one no-op Task state, against procrastinate (``procrastinate`` workers,
   ``concurrency=4`` each) running the same number of no-op jobs on the same PostgreSQL server (a
   fresh database per run). Everything is enqueued first; the rate is counted from the database's
   own timestamps: N / (last completion - first start), so process start-up is not counted for
   either. The two alternate for ``--rounds`` rounds and the best round of each is kept (a shared
   2-core machine is noisy). Target: at least 1.5x procrastinate's rate with one worker.
2. Dispatch latency with LISTEN/NOTIFY: one idle worker; executions started one at a time (25 per
   second); latency = the task's ``TaskStarted`` event minus its ``ExecutionStarted`` event (the one
   that scheduled it, in the same commit): committed -> claimed -> started. p50 and p99. The same for
   procrastinate (``deferred`` -> ``started`` events). Target: p99 under 50 ms.
3. Worker memory: RSS of one idle worker with 10,000 executions waiting on a one-hour Wait timer,
   and after it has run 10,000 executions to a task waiting for its token (an approval). Target: under
   150 MB.

Run by hand (not in CI): ``.venv/bin/python bench/worker.py [--quick] [--json]``. Needs PostgreSQL at
127.0.0.1:5432 (``postgres`` user, trust). The worker processes load this file as a plugin
(``--plugin worker:install`` with ``bench/`` on ``PYTHONPATH``) for the no-op executor.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
HERE = Path(__file__).resolve().parent
ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
NOOP = "arn:aws:lambda:us-east-1:123456789012:function:bench-noop"
APPROVAL = "arn:aws:lambda:us-east-1:123456789012:function:bench-approval"


# ---------------------------------------------------------------------------- the plugin
def install(runtime: Any) -> None:
    """Worker plugin: ``bench-noop`` returns at once, ``bench-approval`` waits for its token."""
    from orchestrator.executions.tasks import PENDING  # noqa: PLC0415 - only in worker processes

    previous = runtime.executors.get("arn")

    def executor(context: Any) -> Any:
        if context.task.resource == NOOP:
            return {}
        if context.task.resource == APPROVAL:
            return PENDING
        return previous(context)

    runtime.executors["arn"] = executor


# ---------------------------------------------------------------------------- databases
@contextmanager
def fresh_database() -> Iterator[tuple[str, str]]:
    """A new database: (SQLAlchemy URL, libpq conninfo); dropped afterwards."""
    import psycopg  # noqa: PLC0415

    name = f"bench_worker_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            f"postgresql://postgres@127.0.0.1:5432/{name}",
        )
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(conninfo: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(conninfo, autocommit=True) as connection:
        return connection.execute(sql.encode()).fetchall()


def machine(resource: str, wait: int | None = None) -> dict[str, Any]:
    task = {"Type": "Task", "Resource": resource, "End": True}
    if wait is None:
        return {"StartAt": "Work", "States": {"Work": task}}
    return {
        "StartAt": "Pause",
        "States": {"Pause": {"Type": "Wait", "Seconds": wait, "Next": "Work"}, "Work": task},
    }


def start_executions(url: str, definition: dict[str, Any], count: int, pace: float | None = None) -> None:
    """Publish ``definition`` and start ``count`` executions (``pace``: per second, else at once)."""
    from orchestrator.runtime import build_runtime  # noqa: PLC0415
    from orchestrator.store import EventStore  # noqa: PLC0415

    with EventStore.from_url(url, auto_upgrade=True) as store:
        runtime = build_runtime(store, integrations=False)
        runtime.registry.publish("bench", definition)
        began = time.perf_counter()
        for n in range(count):
            runtime.executions.start("bench", {"n": n}, name=f"e{n}")
            if pace is not None:
                time.sleep(max(0.0, began + (n + 1) / pace - time.perf_counter()))


def spawn_worker(url: str, *options: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(HERE), "ORCHESTRATOR_DATABASE_URL": url}
    env.pop("ORCHESTRATOR_CONFIG", None)
    return subprocess.Popen(
        [str(ORCHESTRATOR), "worker", "--plugin", "worker:install", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(conninfo: str, sql: str, target: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while (found := int(query(conninfo, sql)[0][0])) < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {found} of {target} for {sql}")
        time.sleep(0.2)


# ---------------------------------------------------------------------------- 1. throughput
def orchestrator_rate(workers: int, count: int) -> float:
    with fresh_database() as (url, conninfo):
        start_executions(url, machine(NOOP), count)
        processes = [spawn_worker(url, "--concurrency", "4") for _ in range(workers)]
        try:
            wait_for(conninfo, "SELECT count(*) FROM events WHERE type = 'ExecutionSucceeded'", count)
        finally:
            stop_all(processes)
        [(first, last)] = query(
            conninfo,
            "SELECT (SELECT min(recorded_at) FROM events WHERE type = 'TaskStarted'), "
            "(SELECT max(recorded_at) FROM events WHERE type = 'ExecutionSucceeded')",
        )
        return count / (last - first).total_seconds()


PROCRASTINATE_WORKER = """
import sys, procrastinate
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=sys.argv[1]))
@app.task(name="noop")
def noop(**kwargs):
    return None
with app.open():
    app.run_worker(concurrency=int(sys.argv[2]), wait=True, install_signal_handlers=True)
"""


def procrastinate_app(conninfo: str) -> Any:
    import logging  # noqa: PLC0415

    import procrastinate  # noqa: PLC0415

    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # "App is instantiated in __main__"

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo))

    @app.task(name="noop")
    def noop(**kwargs: Any) -> None:
        del kwargs

    return app, noop


def procrastinate_rate(workers: int, count: int) -> float:
    with fresh_database() as (_, conninfo):
        app, noop = procrastinate_app(conninfo)
        with app.open():
            app.schema_manager.apply_schema()
            for start in range(0, count, 1000):
                noop.batch_defer(*[{"n": n} for n in range(start, min(count, start + 1000))])
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", PROCRASTINATE_WORKER, conninfo, "4"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            wait_for(conninfo, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'", count)
        finally:
            stop_all(processes)
        [(first, last)] = query(
            conninfo,
            "SELECT (SELECT min(at) FROM procrastinate_events WHERE type = 'started'), "
            "(SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded')",
        )
        return count / (last - first).total_seconds()


# ---------------------------------------------------------------------------- 2. latency
def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2)}


def orchestrator_latency(count: int) -> dict[str, float]:
    with fresh_database() as (url, conninfo):
        start_executions(url, machine(NOOP), 0)  # the schema, before the worker starts
        process = spawn_worker(url, "--concurrency", "4")
        try:
            time.sleep(3)  # start-up: imports, LISTEN
            start_executions(url, machine(NOOP), count, pace=25)
            wait_for(conninfo, "SELECT count(*) FROM events WHERE type = 'ExecutionSucceeded'", count)
        finally:
            stop_all([process])
        rows = query(
            conninfo,
            "SELECT extract(epoch FROM t.recorded_at - s.recorded_at) FROM events s "
            "JOIN events t ON t.stream_id = s.stream_id AND t.type = 'TaskStarted' "
            "WHERE s.type = 'ExecutionStarted'",
        )
        return percentiles([float(row[0]) for row in rows])


def procrastinate_latency(count: int) -> dict[str, float]:
    with fresh_database() as (_, conninfo):
        app, noop = procrastinate_app(conninfo)
        with app.open():
            app.schema_manager.apply_schema()
        process = subprocess.Popen(
            [sys.executable, "-c", PROCRASTINATE_WORKER, conninfo, "4"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            with app.open():
                began = time.perf_counter()
                for n in range(count):
                    noop.defer(n=n)
                    time.sleep(max(0.0, began + (n + 1) / 25 - time.perf_counter()))
            wait_for(conninfo, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'", count)
        finally:
            stop_all([process])
        rows = query(
            conninfo,
            "SELECT extract(epoch FROM s.at - d.at) FROM procrastinate_events d "
            "JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started' "
            "WHERE d.type = 'deferred'",
        )
        return percentiles([float(row[0]) for row in rows])


# ---------------------------------------------------------------------------- 3. memory
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def worker_memory(count: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with fresh_database() as (url, conninfo):
        start_executions(url, machine(NOOP, wait=3600), count)
        process = spawn_worker(url, "--concurrency", "4")
        try:
            time.sleep(8)  # start-up, then idle: nothing is due for an hour
            out["rss_mb_idle_with_timers_waiting"] = round(rss_mb(process.pid), 1)
        finally:
            stop_all([process])
    with fresh_database() as (url, conninfo):
        start_executions(url, machine(APPROVAL), count)
        process = spawn_worker(url, "--concurrency", "4")
        try:
            wait_for(conninfo, "SELECT count(*) FROM work_items WHERE completed_at IS NOT NULL", count)
            time.sleep(2)
            out["rss_mb_after_running_to_approvals"] = round(rss_mb(process.pid), 1)
        finally:
            stop_all([process])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds; the best one counts")
    args = parser.parse_args()
    from orchestrator.logs import configure_logging  # noqa: PLC0415

    configure_logging("warning")
    tasks = 500 if args.quick else 2000
    rounds = 1 if args.quick else args.rounds
    samples = 100 if args.quick else 500
    idle = 1000 if args.quick else 10_000

    results: dict[str, Any] = {"tasks": tasks, "rounds": rounds, "throughput": {}}
    for workers in (1, 2, 4):
        ours = theirs = 0.0
        for _ in range(rounds):
            ours = max(ours, orchestrator_rate(workers, tasks))
            theirs = max(theirs, procrastinate_rate(workers, tasks))
        results["throughput"][workers] = {
            "orchestrator_tasks_per_s": round(ours, 1),
            "procrastinate_jobs_per_s": round(theirs, 1),
            "ratio": round(ours / theirs, 2),
        }
        if not args.json:
            print(
                f"{workers} worker(s): orchestrator {ours:7.1f} tasks/s, procrastinate {theirs:7.1f} jobs/s, "
                f"ratio {ours / theirs:.2f}",
                flush=True,
            )
    results["dispatch_latency"] = {
        "orchestrator": orchestrator_latency(samples),
        "procrastinate": procrastinate_latency(samples),
    }
    if not args.json:
        print(f"dispatch latency: {results['dispatch_latency']}", flush=True)
    results["memory"] = {"executions": idle, **worker_memory(idle)}
    if args.json:
        print(json.dumps(results))
    else:
        print(f"worker memory: {results['memory']}")


if __name__ == "__main__":
    main()
