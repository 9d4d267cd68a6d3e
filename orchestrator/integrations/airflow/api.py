"""The few Airflow REST calls a Task state needs, in both dialects: v2 (Airflow 3) and v1 (Airflow 2).

The differences, measured on a real Airflow 3.3.2 and taken from the v1 specification
(``../shared/airflow/README.md``): a v2 trigger body needs ``"logical_date": null``, v1 rejects it; v1
returns XCom values as Python reprs unless ``stringify=false``; v2 accepts ``update_mask`` on the
state PATCH, v1 rejects it; v2 task logs are structured (``error_detail``), v1 logs are text. Task
instances are listed with the batch endpoint (``POST /dags/~/dagRuns/~/taskInstances/list``), whose
path is short and fixed, so MWAA's ``invoke_rest_api`` carries it. For the same reason, on v2 over
MWAA the result of a finished run is read from its ``wait`` endpoint (a short path, answered at once
with one JSON line) rather than from the XCom path, which would need a web session (and its
permission); the other long paths (a task's log, v1's XCom) go through that web session.

Airflow >= 3.1 also streams a run's progress (``GET .../dagRuns/{run_id}/wait``, newline-delimited
JSON, one ``{"state": ...}`` line per ``interval``, the last one with the ``results`` asked for);
:meth:`AirflowApi.wait_stream` reads it when the transport can stream (plain HTTP, v2) and raises
:class:`WaitUnsupported` otherwise (v1, MWAA, an older Airflow answering 404), so the caller polls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import structlog

from orchestrator.integrations.airflow.transport import (
    AirflowAuthFailed,
    AirflowUnreachable,
    ApiResponse,
    HttpTransport,
    MwaaRefused,
    StreamRefused,
    Transport,
)

log = structlog.get_logger(__name__)

Version = Literal["v1", "v2"]
TERMINAL = frozenset({"success", "failed"})
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure)):\s?(.*)$")


class WaitUnsupported(Exception):
    """No wait stream here: v1, a transport that cannot stream (MWAA), or Airflow < 3.1 (404)."""


class AirflowApiError(Exception):
    """Airflow answered a call with an unexpected status; ``status`` is that status."""

    def __init__(self, what: str, response: ApiResponse) -> None:
        super().__init__(f"{what}: HTTP {response.status}: {response.detail()}")
        self.status = response.status


def segment(value: str) -> str:
    """One URL path segment (DAG, run and task ids may hold ``:``, ``+`` or ``.``)."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class DagRun:
    """What a poll tells: the run's state and, when it has one, its end."""

    run_id: str
    state: str
    conf: Any = None
    results: Mapping[str, Any] | None = None
    """With the wait stream, once finished: the XCom ``return_value`` of the tasks asked for (a task
    that pushed none is absent)."""

    @property
    def finished(self) -> bool:
        """The run reached ``success`` or ``failed``."""
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """One task instance of a run."""

    task_id: str
    state: str | None
    try_number: int
    end_date: str | None
    map_index: int = -1


@dataclass
class AirflowApi:
    """The REST calls, over one transport, in one API version."""

    transport: Transport
    version: Version

    def _run_path(self, dag_id: str, run_id: str) -> str:
        return f"/dags/{segment(dag_id)}/dagRuns/{segment(run_id)}"

    def get_dag(self, dag_id: str) -> Mapping[str, Any] | None:
        """The DAG, or None when Airflow does not know it."""
        response = self.transport.request("GET", f"/dags/{segment(dag_id)}")
        if response.status == 404:
            return None
        if not response.ok or not isinstance(response.body, Mapping):
            raise AirflowApiError(f"GET DAG {dag_id}", response)
        return response.body

    def unpause(self, dag_id: str) -> None:
        """Unpause the DAG (new DAGs start paused; their runs would stay queued)."""
        response = self.transport.request(
            "PATCH",
            f"/dags/{segment(dag_id)}",
            params={"update_mask": "is_paused"},
            body={"is_paused": False},
        )
        if not response.ok:
            raise AirflowApiError(f"unpause DAG {dag_id}", response)

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any], note: str) -> bool:
        """Trigger a run named ``run_id``; False when that run already exists (409)."""
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": dict(conf)}
        if self.version == "v2":
            body = {"logical_date": None, **body, "note": note}
        response = self.transport.request("POST", f"/dags/{segment(dag_id)}/dagRuns", body=body)
        if response.status == 409:
            return False
        if not response.ok:
            raise AirflowApiError(f"trigger DAG {dag_id}", response)
        return True

    def get_run(self, dag_id: str, run_id: str) -> DagRun:
        """The run's current state."""
        response = self.transport.request("GET", self._run_path(dag_id, run_id))
        if not response.ok or not isinstance(response.body, Mapping):
            raise AirflowApiError(f"GET run {run_id} of DAG {dag_id}", response)
        return DagRun(run_id, str(response.body.get("state")), response.body.get("conf"))

    def cancel(self, dag_id: str, run_id: str) -> None:
        """Mark the run failed: running tasks are killed at their next heartbeat."""
        params = {"update_mask": "state"} if self.version == "v2" else None
        response = self.transport.request(
            "PATCH", self._run_path(dag_id, run_id), params=params, body={"state": "failed"}
        )
        if not response.ok:
            raise AirflowApiError(f"cancel run {run_id} of DAG {dag_id}", response)

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        """The run's task instances (batch endpoint: a short, fixed path)."""
        response = self.transport.request(
            "POST",
            "/dags/~/dagRuns/~/taskInstances/list",
            body={"dag_ids": [dag_id], "dag_run_ids": [run_id], "page_limit": 100},
        )
        if not response.ok or not isinstance(response.body, Mapping):
            raise AirflowApiError(f"list task instances of run {run_id}", response)
        return [
            TaskInstance(
                task_id=str(item["task_id"]),
                state=item.get("state"),
                try_number=int(item.get("try_number") or 0),
                end_date=item.get("end_date"),
                map_index=int(item.get("map_index", -1) if item.get("map_index") is not None else -1),
            )
            for item in response.body.get("task_instances", [])
        ]

    def dag_tasks(self, dag_id: str) -> dict[str, list[str]]:
        """The DAG's tasks: task id -> its downstream task ids."""
        response = self.transport.request("GET", f"/dags/{segment(dag_id)}/tasks")
        if not response.ok or not isinstance(response.body, Mapping):
            raise AirflowApiError(f"GET tasks of DAG {dag_id}", response)
        return {
            str(task["task_id"]): [str(t) for t in task.get("downstream_task_ids") or []]
            for task in response.body.get("tasks", [])
        }

    def xcom_return_value(self, dag_id: str, run_id: str, task_id: str) -> tuple[bool, Any]:
        """``(found, value)`` of the task's XCom ``return_value``; found is False when it pushed none."""
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{segment(task_id)}/xcomEntries/return_value"
        limit = self.transport.max_path
        if limit is not None and len(path) > limit and self.version == "v2":
            return self._result_from_wait(dag_id, run_id, task_id)
        params = {"stringify": "false"} if self.version == "v1" else None
        response = self.transport.request("GET", path, params=params)
        if response.status == 404:
            return False, None
        if not response.ok or not isinstance(response.body, Mapping):
            raise AirflowApiError(f"GET XCom return_value of {task_id} in run {run_id}", response)
        return True, response.body.get("value")

    def _result_from_wait(self, dag_id: str, run_id: str, task_id: str) -> tuple[bool, Any]:
        # the wait endpoint answers a finished run at once, with one line holding the task's XCom
        response = self.transport.request(
            "GET", f"{self._run_path(dag_id, run_id)}/wait", params={"interval": "1", "result": task_id}
        )
        if not response.ok:
            raise AirflowApiError(f"GET result of {task_id} in run {run_id}", response)
        body = response.body
        if isinstance(body, str):  # NDJSON text: the last line is the final state
            lines = [line for line in body.splitlines() if line.strip()]
            body = json.loads(lines[-1]) if lines else None
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, Mapping):
            return False, None
        return (task_id in results), results.get(task_id)

    @property
    def can_stream(self) -> bool:
        """Whether :meth:`wait_stream` may work here (v2 over plain HTTP)."""
        return self.version == "v2" and isinstance(self.transport, HttpTransport)

    def wait_stream(
        self,
        dag_id: str,
        run_id: str,
        *,
        result_tasks: Sequence[str],
        interval: float,
        read_timeout: float,
    ) -> Generator[DagRun, None, None]:
        """The run's state every ``interval`` seconds until it finishes (the last one with ``results``).

        Raises :class:`WaitUnsupported` when there is no stream to read, :class:`AirflowUnreachable`
        when the connection breaks or stays silent for ``read_timeout``. Close the iterator to stop.
        """
        if not self.can_stream:
            raise WaitUnsupported(f"no wait stream over {type(self.transport).__name__} ({self.version})")
        assert isinstance(self.transport, HttpTransport)
        params: dict[str, Any] = {"interval": f"{interval:g}"}
        if result_tasks:
            params["result"] = list(result_tasks)
        lines = self.transport.stream(
            f"{self._run_path(dag_id, run_id)}/wait", params=params, read_timeout=read_timeout
        )
        try:
            for line in lines:
                if not isinstance(line, Mapping) or not isinstance(line.get("state"), str):
                    raise AirflowUnreachable(f"the wait stream of run {run_id} sent {str(line)[:200]}")
                results = line.get("results")
                yield DagRun(run_id, line["state"], results=results if isinstance(results, Mapping) else {})
        except StreamRefused as exc:
            if exc.status in (403, 404, 405):  # no such endpoint (Airflow < 3.1), or no XCom access
                raise WaitUnsupported(f"the wait stream answered {exc}") from None
            raise AirflowUnreachable(f"the wait stream of run {run_id} answered {exc}") from None
        finally:
            lines.close()

    def failure_detail(self, dag_id: str, run_id: str, task: TaskInstance) -> str | None:
        """The exception a failed task raised (``ValueError: bad input``), read from its log."""
        path = (
            f"{self._run_path(dag_id, run_id)}/taskInstances/{segment(task.task_id)}"
            f"/logs/{max(task.try_number, 1)}"
        )
        try:
            response = self.transport.request("GET", path, params={"full_content": "true"})
        except (MwaaRefused, AirflowAuthFailed, AirflowUnreachable) as exc:  # a missing detail fails nothing
            log.warning("airflow.task_log_unavailable", dag_id=dag_id, run_id=run_id, error=str(exc))
            return None
        if not response.ok:
            return None
        content = response.body.get("content") if isinstance(response.body, Mapping) else response.body
        return exception_from_log(content)


def exception_from_log(content: Any) -> str | None:
    """The last exception in a task log: v2 structured entries (``error_detail``) or v1 text."""
    if isinstance(content, list):
        found: str | None = None
        for entry in content:
            if not isinstance(entry, Mapping):
                continue
            for detail in entry.get("error_detail") or []:
                if isinstance(detail, Mapping) and detail.get("exc_type"):
                    found = f"{detail['exc_type']}: {detail.get('exc_value', '')}".rstrip(": ")
        if found is not None:
            return found
        content = "\n".join(str(entry.get("event", "")) for entry in content if isinstance(entry, Mapping))
    if not isinstance(content, str):
        return None
    last: str | None = None
    for line in content.splitlines():
        text = line.strip()
        if "] " in text and not _EXCEPTION_LINE.match(text):
            text = text.rsplit("] ", 1)[-1].strip()  # v1 lines carry a "[time] {file} LEVEL - " prefix
        if text.startswith(("ERROR - ", "INFO - ")):
            text = text.split(" - ", 1)[1]
        match = _EXCEPTION_LINE.match(text)
        if match:
            last = f"{match.group(1)}: {match.group(2)}".rstrip(": ")
    return last


def last_tasks(downstream: Mapping[str, list[str]]) -> list[str]:
    """Tasks without downstream tasks, in topological order: the DAG's last tasks."""
    return [task for task in _topological(downstream) if not downstream[task]]


def _topological(downstream: Mapping[str, list[str]]) -> list[str]:
    """Kahn's order, ties broken by task id so the answer is stable."""
    indegree = dict.fromkeys(downstream, 0)
    for targets in downstream.values():
        for target in targets:
            if target in indegree:
                indegree[target] += 1
    ready = sorted(task for task, count in indegree.items() if count == 0)
    order: list[str] = []
    while ready:
        task = ready.pop(0)
        order.append(task)
        for target in downstream[task]:
            if target in indegree:
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
                    ready.sort()
    return order
