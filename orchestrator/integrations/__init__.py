"""The outside world, one package each: ``reflow``, ``airflow`` (REST and MWAA), ``aws`` (roles, STS
sessions, secrets), ``phabricator`` (Conduit, webhooks, approval gates).

Each package has ``install(runtime)``, which reads its table of the configuration and registers its
executors, work handlers and queues on the runtime. Installing never does network I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime


def install_all(runtime: Runtime) -> None:
    """Install every integration on ``runtime``."""
    from orchestrator.integrations import airflow, phabricator, reflow  # noqa: PLC0415

    for integration in (reflow, airflow, phabricator):
        integration.install(runtime)
