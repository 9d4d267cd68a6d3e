"""Helpers of the worker tests: state machines of test functions, starting executions, waiting."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.runtime import Runtime
from orchestrator.worker import Worker

from .plugin import resource

Definition = dict[str, Any]


def tasks_machine(*functions: str, wait_seconds: float | None = None) -> Definition:
    """Task states running ``functions`` one after the other, with a Wait state after the first."""
    states: dict[str, Any] = {}
    names = [f"T{n}-{function}" for n, function in enumerate(functions, start=1)]
    order: list[str] = []
    for n, (name, function) in enumerate(zip(names, functions, strict=True)):
        order.append(name)
        states[name] = {"Type": "Task", "Resource": resource(function), "ResultPath": None}
        if n == 0 and wait_seconds is not None:
            states["Pause"] = {"Type": "Wait", "Seconds": wait_seconds}
            order.append("Pause")
    for current, following in zip(order, [*order[1:], None], strict=True):
        if following is None:
            states[current]["End"] = True
        else:
            states[current]["Next"] = following
    return {"StartAt": order[0], "States": states}


def start_many(runtime: Runtime, definition: Definition, count: int, value: dict[str, Any]) -> list[str]:
    """Publish ``definition`` as ``m`` and start ``count`` executions with input ``value``."""
    runtime.registry.publish("m", definition)
    return [runtime.executions.start("m", value, name=f"e{n}")[0].id for n in range(count)]


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (generous: CI is slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def runs(log: Path) -> Counter[tuple[str, str, int]]:
    """How many times each (execution, task token, attempt) ran, from the test functions' log."""
    counted: Counter[tuple[str, str, int]] = Counter()
    if log.exists():
        for line in log.read_text().splitlines():
            execution, token, attempt, _pid = line.rsplit(" ", 3)
            counted[(execution, token, int(attempt))] += 1
    return counted


def statuses(runtime: Runtime, executions: list[str]) -> Counter[str]:
    """How many of ``executions`` are in each status (loaded fresh from the store)."""
    fresh = runtime.executions.__class__(runtime.store, runtime.registry)
    return Counter(fresh.load(execution).status for execution in executions)


def history_types(runtime: Runtime, execution: str) -> list[str]:
    """The event types of ``execution``'s history, loaded fresh from the store."""
    return [record.type for record in runtime.store.read_stream(f"execution:{execution}")]


@contextmanager
def running(worker: Worker, timeout: float = 60.0) -> Iterator[threading.Thread]:
    """Run ``worker`` in a thread; stop it (gracefully) and join it when the block ends."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="worker-under-test", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(timeout)
        assert not thread.is_alive(), "the worker did not stop"
    assert not errors, errors
