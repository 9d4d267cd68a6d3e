"""Airflow: Task states that run DAGs, on a self-hosted Airflow (REST API v2 or v1) or on Amazon MWAA.

``"Resource": "airflow:<dag_id>"`` (the default connection) or ``"airflow:<connection>/<dag_id>"``
triggers a DAG run with the state's effective input as ``conf``, waits for it and returns the XCom
``return_value`` of ``Parameters.ResultTask`` (default: the DAG's last task). The modules, edge inwards:

* :mod:`.settings`: the ``[airflow]`` table (named connections, credentials by reference only);
* :mod:`.transport`: one REST call over HTTP (httpx) or through MWAA's ``invoke_rest_api``;
* :mod:`.api`: the REST calls in both dialects (v2 for Airflow 3, v1 for Airflow 2);
* :mod:`.connect`: credentials (environment or Secrets Manager under the task's role), version detection;
* :mod:`.executor`: trigger with a deterministic run id, wait, result or ``Airflow.DagRunFailed``.

``install`` registers the executor under the scheme ``airflow``; ``definition_checks`` refuses a
definition whose ``airflow:`` resource names a connection that is not configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, UnknownConnection, resolve
from orchestrator.integrations.task_states import task_states

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.registry.service import DefinitionCheck
    from orchestrator.runtime import Runtime

SCHEME = "airflow"


def install(runtime: Runtime) -> None:
    """Register the ``airflow`` executor on ``runtime`` (reads ``[airflow]``; no network I/O)."""
    settings = airflow_settings.load(runtime.config)
    runtime.executors[SCHEME] = AirflowExecutor(settings, Connector(runtime.config))


def definition_checks(config: Config) -> list[DefinitionCheck]:
    """A check refusing ``airflow:`` resources that name no configured connection."""
    settings = airflow_settings.load(config)

    def check(name: str, definition: Any) -> list[str]:
        del name
        problems: list[str] = []
        for task in task_states(definition):
            resource, pointer = task.resource, task.pointer
            if not resource.startswith(f"{SCHEME}:"):
                continue
            try:
                resolve(settings, resource.split(":", 1)[1])
            except UnknownConnection as exc:
                problems.append(f"{pointer}/Resource: {exc}")
        return problems

    return [check]
