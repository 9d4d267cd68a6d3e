"""Overhead per Airflow task beyond Airflow's own run time.

Starts the tests' real Airflow 3 (``tests/integrations/airflow/server.py``; needs ``.venv-airflow``),
then runs the two-task DAG ``orch_sum`` N times through the ``airflow:`` executor and through durable
executions (SQLite), and compares each task's wall time with the DAG run's own time in Airflow
(``queued_at`` to ``end_date``: what Airflow spends whoever triggers it). The difference is ours:
version check, DAG and task look-ups, trigger, the lag of noticing the end, result fetch and,
durably, the event store. Each measurement runs both ways of noticing the end, interleaved: the wait
stream (Airflow >= 3.1, the default) and polling with back-off (what older Airflows get).

Run by hand: ``.venv/bin/python bench/airflow.py [N]`` (default 10).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from integrations.airflow.server import PASSWORD, USERNAME, AirflowServer  # noqa: E402

from orchestrator.config import Config  # noqa: E402
from orchestrator.engine.interpreter import TaskRequest  # noqa: E402
from orchestrator.executions.tasks import TaskContext  # noqa: E402
from orchestrator.integrations.airflow import settings as airflow_settings  # noqa: E402
from orchestrator.integrations.airflow.connect import Connector  # noqa: E402
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for  # noqa: E402
from orchestrator.runtime import build_runtime  # noqa: E402
from orchestrator.store import EventStore  # noqa: E402

MODES = ("stream", "polling")


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def airflow_time(server: AirflowServer, token: str, run_id: str) -> float:
    run = httpx.get(
        f"{server.base_url}/api/v2/dags/orch_sum/dagRuns/{run_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    return _seconds(run["queued_at"], run["end_date"])


def main(n: int) -> None:
    os.environ["BENCH_AIRFLOW_USER"], os.environ["BENCH_AIRFLOW_PASSWORD"] = USERNAME, PASSWORD
    with tempfile.TemporaryDirectory() as tmp:
        server = AirflowServer(Path(tmp) / "airflow")
        started = time.perf_counter()
        server.start()
        print(f"Airflow up in {time.perf_counter() - started:.1f} s at {server.base_url}")
        try:
            token = server.token()
            table = {
                "base_url": server.base_url,
                "username_env": "BENCH_AIRFLOW_USER",
                "password_env": "BENCH_AIRFLOW_PASSWORD",
            }
            config = Config({"airflow": {"connections": {"local": table}}})
            executors = {}
            for mode in MODES:
                connector = Connector(config)
                if mode == "polling":
                    connector.no_stream("local")
                executors[mode] = AirflowExecutor(airflow_settings.load(config), connector)
                executors[mode](_context(f"bench:warm-{mode}", 0))  # the scheduler's first run is slow

            direct: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
            for i in range(n):
                for mode in MODES:
                    context = _context(f"bench:direct-{mode}-{i}", i)
                    t0 = time.perf_counter()
                    executors[mode](context)
                    wall = time.perf_counter() - t0
                    run_id = run_id_for(context.execution, context.task.id)
                    direct[mode].append((wall, airflow_time(server, token, run_id)))
            for mode in MODES:
                _report(f"executor (direct), {mode}", direct[mode])

            durable: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
            store = EventStore.from_url(f"sqlite:///{Path(tmp) / 'o.db'}", auto_upgrade=True)
            runtime = build_runtime(store, config)
            runtime.registry.publish(
                "bench",
                {
                    "StartAt": "Sum",
                    "States": {"Sum": {"Type": "Task", "Resource": "airflow:orch_sum", "End": True}},
                },
            )
            for i in range(n):
                for mode in MODES:
                    runtime.executors["airflow"] = executors[mode]
                    t0 = time.perf_counter()
                    loaded, _ = runtime.executions.start("bench", {"numbers": [i]})
                    runtime.executions.run_until_settled(loaded.id, timeout=300, poll=0.01)
                    wall = time.perf_counter() - t0
                    started_event = next(
                        e for e in runtime.executions.history(loaded.id) if e.type == "ExternalRunStarted"
                    )
                    durable[mode].append((wall, airflow_time(server, token, started_event.details["runId"])))
            store.close()
            for mode in MODES:
                _report(f"durable execution (SQLite), {mode}", durable[mode])
        finally:
            server.stop()


def _context(execution: str, i: int) -> TaskContext:
    request = TaskRequest(f"#Sum#2#{i}", "Sum", "airflow:orch_sum", {"numbers": [i]}, None, None, None, 0, "")
    return TaskContext(execution, request, "bench", 1, "bench", record=lambda kind, details: 0)


def _report(label: str, samples: list[tuple[float, float]]) -> None:
    walls = [wall for wall, _ in samples]
    airflows = [own for _, own in samples]
    overheads = [wall - own for wall, own in samples]
    print(
        f"{label}: {len(samples)} tasks; wall median {statistics.median(walls):.2f} s, Airflow's own run "
        f"median {statistics.median(airflows):.2f} s, overhead median {statistics.median(overheads):.2f} s "
        f"(min {min(overheads):.2f}, max {max(overheads):.2f}); overhead/Airflow time "
        f"{statistics.median(overheads) / statistics.median(airflows):.0%}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
