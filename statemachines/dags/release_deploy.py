"""The Airflow side of release_pipeline.json: the DAG its ``Deploy`` state triggers.

Copy this file into your Airflow's DAG folder. The orchestrator triggers ``release_deploy`` with the
state's effective input as the run's ``conf`` (``revision``, ``artifact``, ``builtBy``,
``environment``: the Reflow ``Package`` step's result) and returns the XCom ``return_value`` of the
last task, ``deploy``, as the state's result. The test Airflow loads it through
``tests/integrations/airflow/dags/example_dags.py``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, get_current_context, task

REQUIRED = ("revision", "artifact", "environment")


@dag(
    dag_id="release_deploy",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["orchestrator-example"],
    doc_md=__doc__,
)
def release_deploy() -> None:
    @task
    def plan() -> dict[str, str]:
        """Read and check the conf the orchestrator sent."""
        conf = get_current_context()["dag_run"].conf or {}
        missing = [key for key in REQUIRED if not conf.get(key)]
        if missing:
            raise ValueError(f"the run's conf lacks {', '.join(missing)}")
        return {key: str(conf[key]) for key in (*REQUIRED, "builtBy") if key in conf}

    @task
    def deploy(planned: dict[str, str]) -> dict[str, str]:
        """Roll the artifact out (a real DAG would call its deployment tooling here)."""
        run_id = get_current_context()["dag_run"].run_id
        return {
            "deployed": planned["artifact"],
            "environment": planned["environment"],
            "revision": planned["revision"],
            "provenance": planned.get("builtBy", ""),
            "dagRunId": run_id,
        }

    deploy(plan())


release_deploy()
