"""Phabricator / Phorge: approvals become state transitions.

A Herald webhook (``POST /hooks/phabricator``, :mod:`orchestrator.api.hooks`) is verified
(:mod:`.webhook`) and stored in the durable inbox (:mod:`.inbox`) before it is acknowledged; a
worker then processes it (:mod:`.service`): the revision is read through Conduit (:mod:`.conduit`,
:mod:`.reviews`), trigger rules start executions (:mod:`.triggers`), approval gates
(``"Resource": "phabricator:approval"``, :mod:`.gates`) are released or failed, with the role map's
"who may approve" (:mod:`.policy`), and executions started by a revision or a Harbormaster build
report back when they end (:mod:`.reports`). A reconcile loop polls the revisions gates wait on.
``orchestrator publish --revision D12`` checks the publish policy (:mod:`.publishing`). The
configuration is the ``[phabricator]`` table with secrets from the environment (:mod:`.settings`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from orchestrator.integrations.phabricator.policy import default_lookup
from orchestrator.integrations.phabricator.publishing import approval_for_publish
from orchestrator.integrations.phabricator.service import Phabricator, default_conduit
from orchestrator.integrations.phabricator.settings import Settings
from orchestrator.integrations.task_states import task_states

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.registry.service import DefinitionCheck
    from orchestrator.runtime import Runtime

RESOURCES = ("phabricator:approval",)


def install(runtime: Runtime) -> Phabricator:
    """Register the approval executor, the work handlers and the ``phabricator`` queue on ``runtime``."""
    integration = Phabricator(runtime, Settings.from_config(runtime.config, os.environ), default_lookup())
    integration.install()
    return integration


def definition_checks(config: Config) -> list[DefinitionCheck]:
    """A ``phabricator:`` resource must be one we know."""
    del config

    def check(name: str, definition: Any) -> list[str]:
        del name
        problems = []
        for task in task_states(definition):
            if task.resource.startswith("phabricator:") and task.resource not in RESOURCES:
                problems.append(
                    f"{task.pointer}/Resource: unknown Phabricator resource {task.resource!r} "
                    f"(known: {', '.join(RESOURCES)})"
                )
        return problems

    return [check]


def publish_approval(config: Config, revision: str | None) -> tuple[str | None, str | None]:
    """``(revision, approved_by)`` for ``orchestrator publish --revision``, per the publish policy."""
    settings = Settings.from_config(config, os.environ)
    conduit = default_conduit(settings) if settings.conduit_ready else None
    try:
        return approval_for_publish(settings, revision, conduit)
    finally:
        if conduit is not None:
            conduit.close()


__all__ = ["Phabricator", "Settings", "definition_checks", "install", "publish_approval"]
