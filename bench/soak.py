"""Soak: 10,000 executions across 4 worker processes while a chaos loop kill -9s them at random.

Each execution runs a Task (a few milliseconds of work), a one-second Wait (a durable timer), and a
second Task. Four ``orchestrator worker`` processes (short leases, so a killed worker's items come
back quickly) share one PostgreSQL database; every few seconds one of them, picked at random, is
killed with SIGKILL and replaced. When every execution has ended (or nothing moved for a while),
the script checks every history:

- lost: an execution the script started that has no stream, or whose history misses an event;
- duplicated: a history with an event twice (two completions of one task, a timer fired twice);
- stuck: an execution that never ended.

All three must be 0. Task runs beyond one per task are reported separately: a task whose worker was
killed while running it runs again (at-least-once), but its history records one completion.

Run by hand (not in CI): ``.venv/bin/python bench/soak.py [--executions N] [--workers 4] [--json]``.
Needs PostgreSQL at 127.0.0.1:5432. Worker processes load this file as their plugin
(``--plugin soak:install`` with ``bench/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
HERE = Path(__file__).resolve().parent
ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
WORK = "arn:aws:lambda:us-east-1:123456789012:function:soak-work"
MACHINE = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Task", "Resource": WORK, "ResultPath": None, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Second"},
        "Second": {"Type": "Task", "Resource": WORK, "ResultPath": None, "End": True},
    },
}
EXPECTED = Counter(
    {
        "ExecutionStarted": 1,
        "TaskStateEntered": 2,
        "TaskScheduled": 2,
        "TaskStarted": 2,
        "TaskSucceeded": 2,
        "TaskStateExited": 2,
        "WaitStateEntered": 1,
        "WaitStateExited": 1,
        "ExecutionSucceeded": 1,
    }
)


def install(runtime: Any) -> None:
    """Worker plugin: ``soak-work`` logs its run and works for ``ms`` milliseconds."""

    def work(context: Any) -> Any:
        params = context.task.parameters
        line = f"{context.execution} {context.task.id}\n".encode()
        fd = os.open(params["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        time.sleep(params["ms"] / 1000)
        return {}

    runtime.executors["arn"] = work


def spawn(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(HERE), "ORCHESTRATOR_DATABASE_URL": url}
    env.pop("ORCHESTRATOR_CONFIG", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(ORCHESTRATOR),
                "--log-level",
                "warning",
                "worker",
                "--plugin",
                "soak:install",
                "--concurrency",
                "4",
                "--lease-seconds",
                "4",
                "--poll-seconds",
                "1",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=4.0, help="mean seconds between kills")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import psycopg  # noqa: PLC0415

    from orchestrator.logs import configure_logging  # noqa: PLC0415
    from orchestrator.runtime import build_runtime  # noqa: PLC0415
    from orchestrator.store import EventStore  # noqa: PLC0415

    configure_logging("warning")
    name = f"soak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    conninfo = f"postgresql://postgres@127.0.0.1:5432/{name}"
    folder = Path(f"/tmp/{name}")
    folder.mkdir()
    runs_log = folder / "runs.log"
    rng = random.Random(7)
    workers: list[subprocess.Popen[bytes]] = []
    kills = 0
    try:
        store = EventStore.from_url(url, auto_upgrade=True)
        runtime = build_runtime(store, integrations=False)
        runtime.registry.publish("soak", MACHINE)
        workers = [spawn(url, folder / f"worker-{n}.log") for n in range(args.workers)]
        began = time.monotonic()

        started: list[str] = []

        def start_all() -> None:
            for n in range(args.executions):
                value = {"log": str(runs_log), "ms": rng.randint(0, 20)}
                started.append(runtime.executions.start("soak", value, name=f"e{n}")[0].id)

        starter = threading.Thread(target=start_all)
        starter.start()

        def finished() -> int:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM events WHERE type IN "
                    "('ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut')"
                ).fetchone()
                return int(row[0]) if row else 0

        last_progress, last_done = time.monotonic(), -1
        next_kill = time.monotonic() + rng.expovariate(1 / args.kill_every)
        while True:
            done = finished()
            if done != last_done:
                last_done, last_progress = done, time.monotonic()
            if not starter.is_alive() and done >= len(started):
                break
            if time.monotonic() - last_progress > 120:
                break  # nothing moved for two minutes: report what is stuck
            if time.monotonic() >= next_kill and done < args.executions * 0.95:
                victim = rng.randrange(len(workers))
                workers[victim].kill()
                workers[victim].wait()
                kills += 1
                workers[victim] = spawn(url, folder / f"worker-{victim}.log")
                next_kill = time.monotonic() + rng.expovariate(1 / args.kill_every)
            time.sleep(0.5)
        starter.join()
        elapsed = time.monotonic() - began
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(120)

        with psycopg.connect(conninfo, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT stream_id, type, count(*) FROM events WHERE stream_id LIKE 'execution:%' "
                "GROUP BY stream_id, type"
            ).fetchall()
        histories: dict[str, Counter[str]] = {}
        for stream, type_, count in rows:
            histories.setdefault(stream.removeprefix("execution:"), Counter())[type_] = count
        lost = duplicated = stuck = 0
        for execution in started:
            history = histories.get(execution)
            if history is None:
                lost += 1
                continue
            ended = any(t in history for t in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted"))
            if not ended:
                stuck += 1
                continue
            if any(history[t] > n for t, n in EXPECTED.items()) or set(history) - set(EXPECTED):
                duplicated += 1
            elif history != EXPECTED:
                lost += 1
        task_runs = Counter(runs_log.read_text().splitlines()) if runs_log.exists() else Counter()
        result = {
            "executions": len(started),
            "workers": args.workers,
            "kills": kills,
            "seconds": round(elapsed, 1),
            "executions_per_s": round(len(started) / elapsed, 1),
            "lost": lost,
            "duplicated": duplicated,
            "stuck": stuck,
            "task_runs": sum(task_runs.values()),
            "tasks_run_again_after_a_kill": sum(n - 1 for n in task_runs.values() if n > 1),
        }
        print(json.dumps(result) if args.json else "\n".join(f"{k:32s} {v}" for k, v in result.items()))
        store.close()
        if lost or duplicated or stuck:
            sys.exit(1)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
