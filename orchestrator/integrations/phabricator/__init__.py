"""The phabricator integration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime


def install(runtime: Runtime) -> None:
    """Register the phabricator executors and handlers on ``runtime`` (from its configuration)."""
    del runtime
