"""The executor of ``airflow:<dag_id>`` and ``airflow:<connection>/<dag_id>`` Task states.

One attempt of the Task state is one DAG run:

1. The DAG must exist; a paused DAG is unpaused (its runs would otherwise stay queued forever).
2. The run is triggered with the state's effective input as ``conf`` (without ``ResultTask``) and a run
   id derived from the execution and the task token (scope, state, entry and attempt): the same attempt
   always asks for the same run. A 409 means the run exists: a worker crashed after triggering, and this
   one simply resumes waiting, after checking the existing run was started with the same ``conf``.
3. ``ExternalRunStarted`` goes to the history (once) with the run id and a link to the run in the UI.
4. The run is watched until it finishes: on Airflow >= 3.1 over plain HTTP through its wait stream
   (one NDJSON line a second, the last one carrying the XCom results asked for, so no further call is
   needed), else (v1, MWAA, an Airflow answering 404, a stream that keeps breaking) by polling with
   back-off (0.2 s growing to ``poll_max_seconds``). Between two lines or polls the task heartbeats
   (every 10 s, or a third of ``HeartbeatSeconds``) and checks whether it must stop; polling errors
   are retried until the task's deadline, a blip of Airflow fails nothing.
5. ``success``: the result is the XCom ``return_value`` of ``Parameters.ResultTask``, by default of the
   DAG's last task (a task without downstream tasks; of several, the one that finished last).
   ``failed``: ``Airflow.DagRunFailed`` with a JSON cause naming the failed tasks and the exception
   from the first one's log.

Deadlines belong to the engine: ``TimeoutSeconds`` and ``HeartbeatSeconds`` are the machine's timers,
which record ``TaskTimedOut`` (``States.Timeout``) when they fire, and the worker then sets
:attr:`TaskContext.cancelled`. Here, a task that must stop asks :meth:`TaskContext.heartbeat` whether
it still runs: when it does not (stopped, timed out), or when its ``TimeoutSeconds`` has passed, the DAG
run is marked failed in Airflow; when only the worker is shutting down, the run is left alone, so the
next attempt to run this task resumes waiting on it. The executor also keeps its own guard on the
machine's deadline (``TaskRequest.timeout_due``), for a driver that cannot fire the timer while the
task runs (``run_until_settled`` runs everything in one thread): at that instant it cancels the run
and raises ``States.Timeout``. That error is never recorded in an execution: the engine lets due
deadlines fire before it applies a task's answer, and the deadline has passed, so the history says
``TaskTimedOut``; the error only serves a caller that runs the executor outside an execution.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote

import structlog

from orchestrator.executions.tasks import TaskCancelled, TaskContext, TaskError
from orchestrator.integrations.airflow.api import (
    AirflowApi,
    AirflowApiError,
    DagRun,
    TaskInstance,
    WaitUnsupported,
    last_tasks,
)
from orchestrator.integrations.airflow.connect import ConnectionProblem, Connector
from orchestrator.integrations.airflow.settings import AirflowSettings, Connection
from orchestrator.integrations.airflow.transport import (
    AirflowAuthFailed,
    AirflowUnreachable,
    MwaaRefused,
)

log = structlog.get_logger(__name__)

RESULT_TASK = "ResultTask"
POLL_FIRST = 0.2
POLL_GROWTH = 1.5
HEARTBEAT_EVERY = 10.0
STREAM_INTERVAL = 1.0
"""Seconds between two lines of the wait stream (Airflow checks the run that often)."""
STREAM_SILENCE = 10.0
"""How long past ``STREAM_INTERVAL`` a silent stream is waited for before it counts as broken."""
STREAM_BREAKS = 3
"""Broken streams in a row after which the run is polled instead."""
CANCEL_CHECKS = (1.0, 2.0)
"""Pauses before each check that a cancelled run stayed cancelled."""
ACTIVE_TASK_STATES = frozenset({"scheduled", "queued", "running", "restarting", "up_for_retry", "deferred"})
"""Task instance states of a run that is not really over."""


class UnknownConnection(Exception):
    """A resource names a connection that is not configured."""


def resolve(settings: AirflowSettings, name: str) -> tuple[Connection, str]:
    """``<dag_id>`` or ``<connection>/<dag_id>`` to the connection and the DAG id."""
    if "/" in name:
        connection_name, dag_id = name.split("/", 1)
    else:
        connection_name, dag_id = settings.default_connection or "", name
    if not dag_id:
        raise UnknownConnection(
            "the resource names no DAG (airflow:<dag_id> or airflow:<connection>/<dag_id>)"
        )
    connection = settings.connections.get(connection_name)
    if connection is None:
        configured = ", ".join(settings.names()) or "none"
        if not connection_name:
            raise UnknownConnection(
                f"no default Airflow connection: name one (airflow:<connection>/{dag_id}) or set "
                f"[airflow] default_connection (configured connections: {configured})"
            )
        raise UnknownConnection(f"unknown Airflow connection {connection_name!r} (configured: {configured})")
    return connection, dag_id


def run_id_for(execution: str, task_token: str) -> str:
    """The DAG run id of one task attempt: deterministic and short (MWAA paths are limited to 64)."""
    digest = hashlib.sha256(f"{execution}\n{task_token}".encode()).hexdigest()
    return f"orch-{digest[:16]}"


def ui_link(ui_base: str, version: str, dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI (Airflow 3 and 2 lay it out differently)."""
    if version == "v2":
        return f"{ui_base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{ui_base}/dags/{quote(dag_id, safe='')}/grid?dag_run_id={quote(run_id, safe='')}"


def split_parameters(parameters: Any) -> tuple[dict[str, Any], str | None]:
    """The ``conf`` to send and the ``ResultTask`` to read the result from."""
    if parameters is None:
        return {}, None
    if not isinstance(parameters, Mapping):
        raise TaskError(
            "Airflow.InvalidParameters",
            f"an Airflow DAG run's conf is a JSON object; the effective input is {type(parameters).__name__}",
        )
    conf = dict(parameters)
    result_task = conf.pop(RESULT_TASK, None)
    if result_task is not None and (not isinstance(result_task, str) or not result_task):
        raise TaskError("Airflow.InvalidParameters", f"{RESULT_TASK} must be a task id (a string)")
    return conf, result_task


@dataclass
class AirflowExecutor:
    """Runs ``airflow:`` Task states; one instance per runtime (it caches API versions)."""

    settings: AirflowSettings
    connector: Connector

    def __call__(self, context: TaskContext) -> Any:
        """Run the DAG for this attempt and return its result (see the module docstring)."""
        try:
            connection, dag_id = resolve(self.settings, context.resource_name)
        except UnknownConnection as exc:
            raise TaskError("Airflow.UnknownConnection", str(exc)) from None
        conf, result_task = split_parameters(context.task.parameters)
        try:
            api, ui_base = self.connector.open(connection, context.role_environment, context.cancelled)
        except ConnectionProblem as exc:
            raise TaskError("Airflow.ConnectionFailed", str(exc)) from None
        except MwaaRefused as exc:
            raise _refused(exc) from None
        run = _Run(context, connection, api, ui_base, dag_id, conf, result_task, self.connector)
        try:
            return run.execute()
        except AirflowUnreachable as exc:
            raise TaskError("Airflow.Unavailable", str(exc)) from None
        except AirflowAuthFailed as exc:
            raise TaskError("Airflow.ConnectionFailed", str(exc)) from None
        except AirflowApiError as exc:
            error = "Airflow.ConnectionFailed" if exc.status in (401, 403) else "Airflow.ApiError"
            raise TaskError(error, str(exc)) from None
        except MwaaRefused as exc:
            raise _refused(exc) from None
        finally:
            api.transport.close()


def _refused(exc: MwaaRefused) -> TaskError:
    if exc.code in ("AccessDeniedException", "AccessDenied"):
        return TaskError("States.Permissions", str(exc))
    return TaskError("Airflow.ConnectionFailed", str(exc))


@dataclass
class _Run:
    """One attempt's DAG run, from trigger to result."""

    context: TaskContext
    connection: Connection
    api: AirflowApi
    ui_base: str
    dag_id: str
    conf: dict[str, Any]
    result_task: str | None
    connector: Connector
    deadline: float | None = None
    beat_every: float = HEARTBEAT_EVERY
    last_beat: float = field(default_factory=time.monotonic)

    @property
    def run_id(self) -> str:
        return run_id_for(self.context.execution, self.context.task.id)

    def _log(self) -> Any:
        return log.bind(
            execution=self.context.execution,
            state=self.context.task.state_name,
            connection=self.connection.name,
            dag_id=self.dag_id,
            run_id=self.run_id,
        )

    def execute(self) -> Any:
        self.deadline = self._deadline()
        if self.context.task.heartbeat_seconds:
            self.beat_every = max(0.5, min(HEARTBEAT_EVERY, self.context.task.heartbeat_seconds / 3))
        dag = self.api.get_dag(self.dag_id)
        if dag is None:
            raise TaskError(
                "Airflow.DagNotFound",
                f"Airflow connection {self.connection.name!r} has no DAG {self.dag_id!r}",
            )
        tasks = self.api.dag_tasks(self.dag_id)
        if self.result_task is not None and self.result_task not in tasks:
            raise TaskError(
                "Airflow.InvalidParameters",
                f"{RESULT_TASK} {self.result_task!r} is no task of DAG {self.dag_id!r} "
                f"(tasks: {', '.join(sorted(tasks))})",
            )
        leaves = last_tasks(tasks)
        if dag.get("is_paused"):
            self.api.unpause(self.dag_id)
            self._log().info("airflow.dag_unpaused")
        note = f"orchestrator: {self.context.execution} / {self.context.task.state_name}"
        if self.api.trigger(self.dag_id, self.run_id, self.conf, note):
            self._log().info("airflow.run_triggered")
        else:
            existing = self.api.get_run(self.dag_id, self.run_id)
            if existing.conf is not None and existing.conf != self.conf:
                raise TaskError(
                    "Airflow.RunIdConflict",
                    f"DAG {self.dag_id!r} has a run {self.run_id!r} with another conf: not ours",
                )
            self._log().info("airflow.run_resumed", state=existing.state)
        self._record_started()
        finished = self._wait([self.result_task] if self.result_task is not None else leaves)
        if finished.state == "success":
            return self._result(leaves, finished)
        raise TaskError("Airflow.DagRunFailed", self._failure_cause())

    def _url(self) -> str:
        return ui_link(self.ui_base, self.api.version, self.dag_id, self.run_id)

    def _record_started(self) -> None:
        for event in self.context.history:
            if (
                event.type == "ExternalRunStarted"
                and event.scope == self.context.task.scope
                and event.details.get("runId") == self.run_id
            ):
                return  # recorded before a crash: the history already has it
        self.context.record(
            "ExternalRunStarted",
            {
                "system": "airflow",
                "connection": self.connection.name,
                "dagId": self.dag_id,
                "runId": self.run_id,
                "url": self._url(),
            },
        )

    def _deadline(self) -> float | None:
        """When ``TimeoutSeconds`` passes: the machine's own deadline (same clock), else counted from
        the history's ``TaskStarted`` or from now (an executor called outside an execution)."""
        if self.context.task.timeout_due is not None:
            return self.context.task.timeout_due
        timeout = self.context.task.timeout_seconds
        if not timeout:
            return None
        started = time.time()
        for event in reversed(self.context.history):
            if event.type == "TaskStarted" and event.scope == self.context.task.scope:
                started = event.timestamp
                break
        return started + timeout

    def _wait(self, wanted: list[str]) -> DagRun:
        """Until the run finishes: through the wait stream when there is one, else by polling."""
        if self.api.can_stream and self.connector.streams(self.connection.name):
            run = self._wait_streaming(wanted)
            if run is not None:
                return run
        return self._wait_polling()

    def _wait_streaming(self, wanted: list[str]) -> DagRun | None:
        """Read the run's wait stream; None when there is none (or it keeps breaking): poll instead."""
        state, breaks = "queued", 0
        while breaks < STREAM_BREAKS:
            updates = self.api.wait_stream(
                self.dag_id,
                self.run_id,
                result_tasks=wanted,
                interval=STREAM_INTERVAL,
                read_timeout=STREAM_INTERVAL + STREAM_SILENCE,
            )
            try:
                with closing(updates):
                    for run in updates:
                        if run.finished:
                            self._log().info("airflow.run_finished", state=run.state, watched="stream")
                            return run
                        state, breaks = run.state, 0
                        self._between(state)
            except WaitUnsupported as exc:
                self.connector.no_stream(self.connection.name)
                self._log().info("airflow.wait_stream_unsupported", detail=str(exc))
                return None
            except AirflowUnreachable as exc:
                self._log().warning("airflow.wait_stream_broken", error=str(exc))
            breaks += 1
            self._between(state)
            self.context.cancelled.wait(POLL_FIRST * 2**breaks)
        return None

    def _wait_polling(self) -> DagRun:
        interval = POLL_FIRST
        state = "queued"
        while True:
            try:
                run = self.api.get_run(self.dag_id, self.run_id)
            except AirflowUnreachable as exc:
                self._log().warning("airflow.poll_failed", error=str(exc))
            else:
                if run.finished:
                    self._log().info("airflow.run_finished", state=run.state, watched="polling")
                    return run
                state = run.state
            self._between(state)
            pause = interval
            if self.deadline is not None:
                pause = max(0.0, min(interval, self.deadline - time.time()))
            self.context.cancelled.wait(pause)
            interval = min(interval * POLL_GROWTH, self.connection.poll_max_seconds)

    def _between(self, state: str) -> None:
        """Between two looks at the run: stop when the task must, heartbeat when it is due."""
        if self.context.cancelled.is_set():
            self._cancelled()
        if self.deadline is not None and time.time() >= self.deadline:
            self._timed_out()
        if time.monotonic() - self.last_beat >= self.beat_every:
            self._heartbeat(state)
            self.last_beat = time.monotonic()

    def _heartbeat(self, state: str) -> None:
        try:
            self.context.heartbeat(None)
        except TaskCancelled:
            self._cancel_run("task no longer runs")
            raise
        self._log().debug("airflow.heartbeat", airflow_state=state)

    def _cancelled(self) -> NoReturn:
        """The task must stop: cancel the run if the task is over, else leave it for the next worker."""
        try:
            self.context.heartbeat(None)
        except TaskCancelled:
            self._cancel_run("task stopped or timed out")
            raise
        if self.deadline is not None and time.time() >= self.deadline:
            self._timed_out()  # over by TimeoutSeconds, even if the machine has not said so yet
        self._log().info(
            "airflow.worker_stopping", detail="the DAG run goes on; the task resumes waiting on it"
        )
        raise TaskCancelled(f"worker stopping; DAG run {self.run_id} of {self.dag_id!r} continues")

    def _timed_out(self) -> NoReturn:
        """``TimeoutSeconds`` has passed: cancel the run; the engine records ``TaskTimedOut`` (see the
        module docstring: this error never reaches an execution's history)."""
        self._cancel_run("timeout")
        raise TaskError(
            "States.Timeout",
            f"DAG run {self.run_id} of {self.dag_id!r} did not finish within "
            f"{self.context.task.timeout_seconds} s (TimeoutSeconds); it was cancelled in Airflow",
        )

    def _cancel_run(self, why: str) -> None:
        """Mark the run failed, and check it stayed so: a scheduler that was deciding about the run
        while the PATCH landed may still start a queued task or settle the run (seen on Airflow 3.3),
        so the run is looked at again after ``CANCEL_CHECKS`` pauses and cancelled again if needed."""
        try:
            self.api.cancel(self.dag_id, self.run_id)
            for pause in CANCEL_CHECKS:
                time.sleep(pause)
                active = [
                    ti.task_id
                    for ti in self.api.task_instances(self.dag_id, self.run_id)
                    if ti.state in ACTIVE_TASK_STATES
                ]
                state = self.api.get_run(self.dag_id, self.run_id).state
                if state == "failed" and not active:
                    break
                self._log().warning("airflow.cancel_again", airflow_state=state, active_tasks=active)
                self.api.cancel(self.dag_id, self.run_id)
        except (AirflowUnreachable, AirflowApiError, MwaaRefused, AirflowAuthFailed) as exc:
            self._log().error("airflow.cancel_failed", why=why, error=str(exc))
        else:
            self._log().info("airflow.run_cancelled", why=why)

    def _result(self, leaves: list[str], finished: DagRun) -> Any:
        task_id = self.result_task
        if task_id is None:
            task_id = self._last_task(leaves)
            if task_id is None:
                return None
        if finished.results is not None:  # the wait stream brought the results asked for
            return finished.results.get(task_id)
        _, value = self.api.xcom_return_value(self.dag_id, self.run_id, task_id)
        return value

    def _last_task(self, leaves: list[str]) -> str | None:
        if len(leaves) <= 1:
            return leaves[0] if leaves else None
        order = {task: index for index, task in enumerate(leaves)}
        finished = [
            ti
            for ti in self.api.task_instances(self.dag_id, self.run_id)
            if ti.task_id in order and ti.state == "success"
        ]
        if not finished:
            return leaves[-1]
        return max(finished, key=lambda ti: (ti.end_date or "", order[ti.task_id])).task_id

    def _failure_cause(self) -> str:
        instances = self.api.task_instances(self.dag_id, self.run_id)
        failed = [ti for ti in instances if ti.state == "failed"]
        exceptions: dict[str, str] = {}
        for ti in failed[:3]:
            detail = self.api.failure_detail(self.dag_id, self.run_id, ti)
            if detail:
                exceptions[ti.task_id] = detail
        first = next((exceptions[ti.task_id] for ti in failed if ti.task_id in exceptions), None)
        cause = {
            "connection": self.connection.name,
            "dagId": self.dag_id,
            "runId": self.run_id,
            "url": self._url(),
            "failedTasks": _ids(failed),
            "upstreamFailedTasks": _ids([ti for ti in instances if ti.state == "upstream_failed"]),
            "exception": first,
            "exceptions": exceptions,
        }
        return json.dumps(cause, separators=(", ", ": "))


def _ids(instances: list[TaskInstance]) -> list[str]:
    return sorted({ti.task_id for ti in instances})
