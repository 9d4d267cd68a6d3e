"""AWS: every Task state under its IAM role, assumed through STS for the person the run acts for.

The story of one task attempt:

1. :mod:`.roles` finds the task's role: the state's ASL ``Credentials.RoleArn``, else the first
   matching ``[[aws.roles]]`` entry of the configuration (by state machine, state name, resource).
2. :mod:`.task_roles` wraps every executor (``install`` runs after the reflow and airflow
   integrations), refuses a role ``[[aws.allow]]`` does not give the state machine, and asks
   :mod:`.sessions` for a session.
3. :mod:`.sessions` calls ``sts:AssumeRole`` with a ``RoleSessionName`` derived from execution,
   state and attempt, the run's approver (or starter) as ``SourceIdentity`` and session tags for
   execution, state machine, version and revision (:mod:`.naming`), and caches the session until
   shortly before it expires.
4. The executor gets the credentials in :attr:`TaskContext.role_environment` (the Reflow child's
   environment, the MWAA and Secrets Manager clients through :func:`.clients.client`); the history gets
   a ``RoleAssumed`` event with the role, session name, source identity and expiry, never a key.

At publish and ``validate``, :mod:`.checks` refuses a definition whose roles the state machine may not
use. ``[aws]`` keys: ``region``, ``endpoint_url`` (see :mod:`.clients`), ``session_duration`` (default
``DurationSeconds``, 3600), ``refresh_margin`` (300), ``[[aws.roles]]`` and ``[[aws.allow]]`` (see
:mod:`.roles`). Other integrations ask :func:`role_rule_for` which role (and which approval) a state
needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.integrations.aws.roles import (
    RoleRule,
    refresh_margin,
    role_map,
    role_rule_for,
    session_duration,
)

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.registry.service import DefinitionCheck
    from orchestrator.runtime import Runtime

__all__ = ["RoleRule", "definition_checks", "install", "role_rule_for"]


def install(runtime: Runtime) -> None:
    """Run every executor of ``runtime`` under its task's role. Installing again wraps the executors
    added since (they share the first installation's session cache). No network I/O."""
    from orchestrator.integrations.aws.sessions import RoleSessions  # noqa: PLC0415 - boto3 loads lazily
    from orchestrator.integrations.aws.task_roles import wrap_all  # noqa: PLC0415

    config = runtime.config
    roles = role_map(config)
    duration = session_duration(config)
    sessions = RoleSessions(config, refresh_margin=refresh_margin(config))
    wrap_all(runtime.executors, roles, duration, sessions)


def definition_checks(config: Config) -> list[DefinitionCheck]:
    """The check of the roles a definition uses (``[[aws.allow]]``); a bad role map is a ConfigError."""
    from orchestrator.integrations.aws.checks import role_problems  # noqa: PLC0415

    roles = role_map(config)

    def check(name: str, definition: Any) -> list[str]:
        return role_problems(roles, name, definition)

    return [check]
