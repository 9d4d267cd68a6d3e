"""Worker plugins: ``module:function`` callables given the runtime before the worker starts.

A plugin registers what the built-in integrations do not: executors for its own resource schemes
(``runtime.executors["mytool"] = run``), handlers for its own kinds of work items
(``runtime.handlers``), and the queues they live on (``runtime.queues``). Name plugins with
``--plugin module:function`` (repeatable) or ``plugins = [...]`` in the ``[worker]`` table; the
module must be importable by the worker's Python (installed, or on ``PYTHONPATH``). The executors
plugins add run under their tasks' IAM roles like the built-in ones (``[[aws.roles]]``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from orchestrator.errors import UsageError
from orchestrator.runtime import Runtime

log = structlog.get_logger(__name__)


def load(spec: str) -> Callable[[Runtime], Any]:
    """The callable named by ``spec`` (``package.module:function``); a clear ``UsageError`` if not."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"plugin {spec!r}: expected MODULE:FUNCTION, e.g. mypackage.tasks:install")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"plugin {spec!r}: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise UsageError(f"plugin {spec!r}: module {module_name!r} has no {attribute!r}")
    if not callable(target):
        raise UsageError(f"plugin {spec!r}: {attribute!r} is not callable")
    return target  # type: ignore[no-any-return]


def install(specs: Iterable[str], runtime: Runtime) -> None:
    """Load every plugin of ``specs`` first (so a typo fails before anything is installed), then call
    each with ``runtime``, in order."""
    plugins = [(spec, load(spec)) for spec in specs]
    before = dict(runtime.executors)
    for spec, plugin in plugins:
        try:
            plugin(runtime)
        except UsageError:
            raise
        except Exception as exc:
            log.exception("worker.plugin_failed", plugin=spec)
            raise UsageError(f"plugin {spec!r} failed to install: {type(exc).__name__}: {exc}") from None
        log.info("worker.plugin_installed", plugin=spec)
    from orchestrator.integrations.aws.task_roles import wrap_added  # noqa: PLC0415 - boto3 loads lazily

    wrap_added(runtime.executors, before)  # a plugin's tasks run under their roles too
