"""Running a network in a spawned child process, and killing it when it must stop.

A crash in the native runtime aborts its whole process and a deadlock blocks it for good (see the
package docs), so the worker never starts a network itself: it starts a fresh interpreter running
:mod:`orchestrator.integrations.reflow.child` (a new process, never a fork: a process forked after a
network started cannot run networks), hands it the request on stdin and reads the answer from its
stdout. The child runs in a session of its own so that killing it also kills whatever it started.

The child's environment is the worker's, with the task's AWS role session
(:attr:`TaskContext.role_environment`) replacing every inherited ``AWS_*`` variable. That is the only
way the credentials travel: never in arguments, files or logs. What the child prints on stderr is kept
(the last few KiB, with the credentials' values masked) to explain a crash.

While waiting, :func:`run_isolated` heartbeats and watches its deadline and the cancel flag; it kills
the child when the deadline passes (``States.Timeout``), when the task is cancelled or a heartbeat
says so (:class:`TaskCancelled`), and on any error of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO, Any

import structlog

from orchestrator.errors import TIMEOUT
from orchestrator.executions.tasks import TaskCancelled, TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings
from orchestrator.integrations.reflow.spec import NetworkSpec

log = structlog.get_logger(__name__)

CHILD_CRASHED = "Reflow.ChildCrashed"
CHILD_MODULE = "orchestrator.integrations.reflow.child"
_TAIL_BYTES = 4096
_ANSWER_LIMIT = 16 * 1024 * 1024


def child_environment(role_environment: Mapping[str, str] | None) -> dict[str, str]:
    """The child's environment: this process's, with the role session replacing any ``AWS_*``."""
    env = dict(os.environ)
    if role_environment:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        env.update(role_environment)
    return env


class _Child:
    """One child process and the threads that feed and drain its pipes."""

    def __init__(self, settings: ReflowSettings, request: bytes, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter and our module, no shell
            [settings.python, "-m", CHILD_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.answer = bytearray()
        self.answered = threading.Event()
        self.tail: deque[bytes] = deque()
        self._tail_size = 0
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._threads = [
            threading.Thread(target=self._feed, args=(self.process.stdin, request), daemon=True),
            threading.Thread(target=self._read_answer, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_tail, args=(self.process.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _feed(self, pipe: IO[bytes], request: bytes) -> None:
        with contextlib.suppress(OSError):  # the child died before reading: its exit tells why
            pipe.write(request)
        with contextlib.suppress(OSError):
            pipe.close()

    def _read_answer(self, pipe: IO[bytes]) -> None:
        try:
            while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
                if len(self.answer) < _ANSWER_LIMIT:
                    self.answer.extend(chunk)
        finally:
            self.answered.set()

    def _read_tail(self, pipe: IO[bytes]) -> None:
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
            self.tail.append(chunk)
            self._tail_size += len(chunk)
            while self._tail_size - len(self.tail[0]) > _TAIL_BYTES and len(self.tail) > 1:
                self._tail_size -= len(self.tail.popleft())

    def kill(self) -> None:
        """Kill the child and everything in its session; wait for it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.close()

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def output_tail(self, secrets: Mapping[str, str] | None) -> str:
        text = b"".join(self.tail)[-_TAIL_BYTES:].decode("utf-8", "replace").strip()
        for value in (secrets or {}).values():
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text


def run_isolated(
    spec: NetworkSpec,
    input_value: Any,
    settings: ReflowSettings,
    *,
    role_environment: Mapping[str, str] | None = None,
    timeout: float | None = None,
    cancelled: threading.Event | None = None,
    heartbeat: Callable[[], None] | None = None,
    heartbeat_interval: float = 5.0,
    on_start: Callable[[int], None] | None = None,
) -> Any:
    """Run ``spec`` on ``input_value`` in a child process and return its result.

    Raises :class:`TaskError` (``Reflow.ActorFailed``, ``Reflow.InvalidNetwork``,
    ``Reflow.ChildCrashed``, ``States.Timeout``...) or :class:`TaskCancelled`; the child is dead when
    this returns or raises. ``on_start(pid)`` is called once the child runs.
    """
    request = json.dumps(
        {
            "network": spec.name,
            "source": spec.source,
            "spec": spec.raw,
            "input": input_value,
            "pythonpath": [str(p.resolve()) for p in settings.pythonpath],
        }
    ).encode()
    started = time.monotonic()
    deadline = None if timeout is None else started + max(timeout, 0.0)
    child = _Child(settings, request, child_environment(role_environment))
    log.info("reflow.child_started", network=spec.name, pid=child.pid)
    try:
        if on_start is not None:
            on_start(child.pid)
        next_beat = started + heartbeat_interval
        while not child.answered.wait(0.05):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TaskError(
                    TIMEOUT,
                    f"reflow network {spec.name!r} did not finish within {timeout:g} s; "
                    f"its child process {child.pid} was killed",
                )
            if cancelled is not None and cancelled.is_set():
                raise TaskCancelled(f"reflow network {spec.name!r} was cancelled; child {child.pid} killed")
            if heartbeat is not None and now >= next_beat:
                heartbeat()
                next_beat = now + heartbeat_interval
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("reflow.child_lingered", network=spec.name, pid=child.pid)
        return _result(spec, child, role_environment)
    finally:
        child.kill()
        log.info(
            "reflow.child_ended",
            network=spec.name,
            pid=child.pid,
            returncode=child.process.returncode,
            seconds=round(time.monotonic() - started, 3),
        )


def _result(spec: NetworkSpec, child: _Child, secrets: Mapping[str, str] | None) -> Any:
    code = child.process.returncode
    answer: Any = None
    with contextlib.suppress(ValueError):
        answer = json.loads(bytes(child.answer)) if child.answer else None
    if isinstance(answer, dict) and answer.get("status") == "succeeded":
        return answer.get("output")
    if isinstance(answer, dict) and answer.get("status") == "failed":
        raise TaskError(str(answer.get("error")), str(answer.get("cause", "")))
    if code is None:
        how = "closed its output without an answer"
    elif code < 0:
        how = f"was killed by signal {_signal_name(-code)}"
    else:
        how = f"exited with code {code} without an answer"
    tail = child.output_tail(secrets)
    cause = f"reflow network {spec.name!r}: child process {child.pid} {how}"
    raise TaskError(CHILD_CRASHED, f"{cause}; last output: {tail}" if tail else cause)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
