"""The airflow integration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime


def install(runtime: Runtime) -> None:
    """Register the airflow executors and handlers on ``runtime`` (from its configuration)."""
    del runtime
