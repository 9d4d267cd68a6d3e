"""Every Task state under its role: a wrapper around each executor that assumes the task's role first.

Before the executor runs, :class:`RoleExecutor` resolves the task's role (its ``Credentials`` field,
else the role map), refuses a role the state machine may not use (``States.Permissions``: a
``Credentials.RoleArn.$`` computed at run time escapes the publish-time check, so it is checked here
again), gets a session from :class:`RoleSessions` under the run's identity, records a ``RoleAssumed``
event (role, session name, source identity, expiry; never a key) and hands the credentials to the
executor in :attr:`TaskContext.role_environment`. A task without a role runs with
``role_environment`` None, under the worker's own credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.asl.timestamps import format_seconds
from orchestrator.executions.tasks import TaskContext, TaskError, TaskExecutor
from orchestrator.integrations.aws import naming
from orchestrator.integrations.aws.roles import ROLE_ARN, RoleMap
from orchestrator.integrations.aws.sessions import PERMISSIONS, RoleSessions, SessionRequest

ROLE_ASSUMED = "RoleAssumed"


@dataclass
class RoleExecutor:
    """``executor``, run under the role of each task."""

    executor: TaskExecutor
    role_map: RoleMap
    sessions: RoleSessions
    duration_seconds: int
    """The default ``DurationSeconds`` (``aws.session_duration``); a role map entry may set its own."""

    def __call__(self, context: TaskContext) -> Any:
        """Assume the task's role (if it has one), then run the executor."""
        task = context.task
        credentials = task.credentials
        if credentials is not None:
            role = credentials.get("RoleArn") if isinstance(credentials, dict) else None
            if not isinstance(role, str) or not ROLE_ARN.match(role):
                raise TaskError(
                    "States.Runtime",
                    f"state '{task.state_name}': Credentials.RoleArn must be an IAM role ARN "
                    f"(arn:aws:iam::ACCOUNT:role/NAME), got {role!r}",
                )
        rule = self.role_map.resolve(context.state_machine, task.state_name, task.resource, credentials)
        if rule is None:
            return self.executor(context)
        refusal = self.role_map.refusal(context.state_machine, rule.role_arn)
        if refusal is not None:
            raise TaskError(PERMISSIONS, f"state '{task.state_name}': {refusal}")
        request = SessionRequest(
            role_arn=rule.role_arn,
            session_name=naming.session_name(context.execution, task.state_name, task.attempt, task.id),
            source_identity=naming.source_identity(context.identity),
            tags=naming.session_tags(
                context.execution, context.state_machine, context.version, context.meta.get("trigger")
            ),
            duration_seconds=rule.duration_seconds or self.duration_seconds,
        )
        session, reused = self.sessions.session(request, state_name=task.state_name)
        context.record(
            ROLE_ASSUMED,
            {
                "roleArn": session.role_arn,
                "assumedRoleArn": session.assumed_role_arn,
                "sessionName": session.session_name,
                "sourceIdentity": session.source_identity,
                "expiration": format_seconds(session.expiration),
                "reused": reused,
                "roleFrom": rule.origin,
                "stateName": task.state_name,
            },
        )
        context.role_environment = dict(session.environment)
        return self.executor(context)


def wrap_all(
    executors: dict[str, TaskExecutor], role_map: RoleMap, duration: int, new_sessions: RoleSessions
) -> None:
    """Wrap every executor of ``executors`` not wrapped yet; all share one session cache (the one of
    the executors wrapped before, else ``new_sessions``)."""
    sessions = next((e.sessions for e in executors.values() if isinstance(e, RoleExecutor)), new_sessions)
    for scheme, executor in list(executors.items()):
        if not isinstance(executor, RoleExecutor):
            executors[scheme] = RoleExecutor(executor, role_map, sessions, duration)


def wrap_added(executors: dict[str, TaskExecutor], before: dict[str, TaskExecutor]) -> None:
    """Wrap the executors added or replaced since ``before`` (e.g. by worker plugins, which install
    after the integrations) like the others, sharing their session cache; nothing when none of
    ``before`` is wrapped (the aws integration is not installed)."""
    first = next((e for e in before.values() if isinstance(e, RoleExecutor)), None)
    if first is None:
        return
    for scheme, executor in list(executors.items()):
        if before.get(scheme) is not executor and not isinstance(executor, RoleExecutor):
            executors[scheme] = RoleExecutor(executor, first.role_map, first.sessions, first.duration_seconds)
