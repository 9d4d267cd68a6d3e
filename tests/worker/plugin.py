"""A worker plugin for the tests: Lambda-shaped test functions, run in the worker (no outside systems).

Task states name them as Lambda function ARNs (the validator accepts those; a made-up scheme it
would refuse): ``arn:aws:lambda:us-east-1:123456789012:function:test-<name>``. The plugin takes the
``arn`` executor and hands any other ARN to the one installed before it, if any.

Loaded by worker processes with ``--plugin worker.plugin:install`` (``tests/`` on ``PYTHONPATH``), and
installed in-process by the SQLite tests. Each executor appends one line per run to the file named
by the task's ``log`` parameter (``O_APPEND``: whole lines, even from several processes), so a test
can count how often each task attempt ran:

- ``test-echo``: returns its parameters;
- ``test-sleep``: sleeps ``seconds`` (watching ``cancelled``: raises ``TaskError("Test.Cancelled")``);
  with ``block_first`` (a path), only the first run sleeps (it creates the file), later runs return
  at once: a task to kill a worker in the middle of;
- ``test-fail``: raises ``TaskError`` with ``error`` (default ``Test.Failed``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from orchestrator.executions.tasks import TaskContext, TaskError, TaskExecutor
from orchestrator.runtime import Runtime

PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:test-"


def resource(name: str) -> str:
    """The Task resource of the test function ``name`` (echo, sleep, fail)."""
    return PREFIX + name


def install(runtime: Runtime) -> None:
    """Register the test functions as the ``arn`` executor of ``runtime``."""
    previous: TaskExecutor | None = runtime.executors.get("arn")

    def executor(context: TaskContext) -> Any:
        if context.task.resource.startswith(PREFIX):
            return run(context, context.task.resource.removeprefix(PREFIX))
        if previous is None:
            raise TaskError("Test.NoExecutor", f"no executor for {context.task.resource}")
        return previous(context)

    runtime.executors["arn"] = executor


def run(context: TaskContext, name: str) -> Any:
    """Run one attempt of the test function ``name``."""
    params = context.task.parameters if isinstance(context.task.parameters, dict) else {}
    log = params.get("log")
    if log:
        line = f"{context.execution} {context.task.id} {context.task.attempt} {os.getpid()}\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    if name == "echo":
        return params
    if name == "sleep":
        seconds = float(params.get("seconds", 0))
        block_first = params.get("block_first")
        if block_first:
            try:
                Path(block_first).touch(exist_ok=False)
            except FileExistsError:
                return {"slept": 0}
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if context.cancelled.wait(min(remaining, 0.05)):
                raise TaskError("Test.Cancelled", "the worker cancelled this task")
        return {"slept": seconds}
    if name == "fail":
        raise TaskError(str(params.get("error", "Test.Failed")), "asked to fail")
    raise TaskError("Test.UnknownResource", f"no test executor {name!r}")
