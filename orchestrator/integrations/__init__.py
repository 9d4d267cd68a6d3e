"""The outside world, one package each: ``reflow``, ``airflow`` (REST and MWAA), ``aws`` (roles, STS
sessions, secrets), ``phabricator`` (Conduit, webhooks, approval gates).

Each package has ``install(runtime)``, which reads its table of the configuration and registers its
executors, work handlers and queues on the runtime. Installing never does network I/O. A package
may also have ``definition_checks(config)``: checks of a definition run by ``validate`` and at
publish (a resource that names no configured network or connection; a role the state machine may
not use), each returning problems as ``/pointer: message`` strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

    from orchestrator.config import Config
    from orchestrator.registry.service import DefinitionCheck
    from orchestrator.runtime import Runtime


def _integrations() -> tuple[ModuleType, ...]:
    from orchestrator.integrations import airflow, aws, phabricator, reflow  # noqa: PLC0415

    return (reflow, airflow, aws, phabricator)


def install_all(runtime: Runtime) -> None:
    """Install every integration on ``runtime``."""
    for integration in _integrations():
        install = getattr(integration, "install", None)
        if install is not None:
            install(runtime)


def definition_checks(config: Config) -> list[DefinitionCheck]:
    """Every integration's checks of a definition, for ``config``."""
    checks: list[DefinitionCheck] = []
    for integration in _integrations():
        provide = getattr(integration, "definition_checks", None)
        if provide is not None:
            checks.extend(provide(config))
    return checks
