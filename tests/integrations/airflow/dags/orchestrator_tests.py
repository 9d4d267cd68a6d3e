"""DAGs the Airflow integration tests trigger on a real Airflow 3 (read by Airflow, not by pytest).

* ``orch_sum``: ``prepare`` reads the run's ``conf`` and ``total`` adds it up; the result is
  ``total``'s XCom ``return_value`` (the last task), ``prepare``'s with ``ResultTask``.
* ``orch_fail``: ``explode`` raises ``ValueError``; ``after`` never runs (``upstream_failed``).
* ``orch_slow``: ``sleepy`` sleeps for ``conf["seconds"]`` (default 300): cancelled by the tests.
"""

from __future__ import annotations

import time
from datetime import datetime

from airflow.sdk import dag, get_current_context, task

START = datetime(2024, 1, 1)  # naive: Airflow reads it as UTC


@dag(dag_id="orch_sum", schedule=None, start_date=START, catchup=False, tags=["orchestrator-tests"])
def orch_sum() -> None:
    @task
    def prepare() -> dict[str, object]:
        conf = get_current_context()["dag_run"].conf or {}
        return {"numbers": list(conf.get("numbers", [])), "label": conf.get("label", "")}

    @task
    def total(prepared: dict[str, object]) -> dict[str, object]:
        numbers = prepared["numbers"]
        assert isinstance(numbers, list)
        return {"label": prepared["label"], "sum": sum(numbers)}

    total(prepare())


@dag(dag_id="orch_fail", schedule=None, start_date=START, catchup=False, tags=["orchestrator-tests"])
def orch_fail() -> None:
    @task
    def explode() -> None:
        conf = get_current_context()["dag_run"].conf or {}
        raise ValueError(f"bad input: {conf.get('value')}")

    @task
    def after() -> str:
        return "never"

    explode() >> after()


@dag(dag_id="orch_slow", schedule=None, start_date=START, catchup=False, tags=["orchestrator-tests"])
def orch_slow() -> None:
    @task
    def sleepy() -> str:
        conf = get_current_context()["dag_run"].conf or {}
        time.sleep(float(conf.get("seconds", 300)))
        return "woke up"

    sleepy()


orch_sum()
orch_fail()
orch_slow()
