"""orchestrator: an event-sourced, Step-Functions-style workflow orchestrator.

``run_local`` runs a definition in memory (see ``orchestrator.engine.local``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["run_local"]

if TYPE_CHECKING:
    from orchestrator.engine.local import run_local
else:

    def __getattr__(name: str) -> Any:
        if name == "run_local":
            from orchestrator.engine.local import run_local  # noqa: PLC0415 - lazy: keep `import orchestrator` light

            return run_local
        raise AttributeError(name)
