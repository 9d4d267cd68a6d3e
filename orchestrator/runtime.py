"""Everything one process runs on, wired once: configuration, store, registry, executions, integrations.

The CLI commands, ``orchestrator worker`` and ``orchestrator serve`` all open a :class:`Runtime`
with :func:`open_runtime`; integrations add themselves through ``install(runtime)`` (see
:mod:`orchestrator.integrations`): executors for their resource schemes, handlers for their kinds of
work items, and the queues those live on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from orchestrator.config import Config
from orchestrator.executions import codec
from orchestrator.executions.service import Executions
from orchestrator.executions.tasks import TaskExecutor
from orchestrator.registry.service import Registry
from orchestrator.store import ClaimedWork, EventStore

WorkHandler = Callable[[ClaimedWork, str], None]
"""Does one claimed work item for worker ``worker_id`` and completes it (fenced) in its own append."""


@dataclass
class Runtime:
    """The services of one process."""

    config: Config
    store: EventStore
    registry: Registry
    executions: Executions
    handlers: dict[str, WorkHandler] = field(default_factory=dict)
    """Work item kind -> handler. ``task`` and ``timer`` belong to executions."""
    queues: list[str] = field(default_factory=lambda: [codec.TASK_QUEUE, codec.TIMER_QUEUE])

    @property
    def executors(self) -> dict[str, TaskExecutor]:
        """Resource scheme -> executor (``reflow``, ``airflow``, ``phabricator``...)."""
        executors = self.executions.executors
        assert isinstance(executors, dict)
        return executors

    def handle(self, work: ClaimedWork, worker_id: str) -> None:
        """Do one claimed work item with the handler of its kind."""
        handler = self.handlers.get(work.kind)
        if handler is None:
            self.executions.process(work, worker_id)
        else:
            handler(work, worker_id)


def build_runtime(store: EventStore, config: Config | None = None, *, integrations: bool = True) -> Runtime:
    """Wire a runtime over an open ``store``; ``integrations=False`` leaves executors empty."""
    config = config or Config()
    if not integrations:
        registry = Registry(store)
        return Runtime(config, store, registry, Executions(store, registry, executors={}))
    from orchestrator.integrations import definition_checks, install_all  # noqa: PLC0415 - they import us

    registry = Registry(store, definition_checks(config))
    runtime = Runtime(config, store, registry, Executions(store, registry, executors={}))
    install_all(runtime)
    return runtime


@contextmanager
def open_runtime(database_url: str, config: Config | None = None) -> Iterator[Runtime]:
    """Open the store at ``database_url`` and wire a runtime over it; closes the store after."""
    store = EventStore.from_url(database_url)
    try:
        yield build_runtime(store, config)
    finally:
        store.close()
