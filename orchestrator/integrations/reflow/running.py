"""Running one validated network in this process: build it, start it, wait for its outputs or a failure.

The executor never calls this in the worker: it runs in the spawned child
(:mod:`orchestrator.integrations.reflow.child`); ``bench/reflow.py`` calls it directly to measure what
the isolation costs. Reflow 0.2.9 gives a caller neither errors nor an end of run, so this module
brings both:

* every Python actor is wrapped: an exception in ``run`` (or ``ctx.fail``, or returning without
  ``ctx.done``) is put on the run's queue with the node id instead of vanishing into Rust logging;
* every declared output (and error) endpoint is connected to a sink actor that puts what arrives on
  the same queue; the run is over when each output got one packet, or at the first failure;
* once it is over, the wrappers stop running user code (the runtime may still fire actors after
  ``shutdown()``).

Tracing is always off (:data:`TRACING_OFF`): the runtime otherwise dials ``ws://localhost:8080`` on
every start.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.integrations.reflow.components import Component, reflow_module
from orchestrator.integrations.reflow.spec import Endpoint, NetworkSpec, Node

_ZERO = {"secs": 0, "nanos": 0}
TRACING_OFF: dict[str, Any] = {
    "compression": {"size_threshold": 1024, "streaming_threshold": 1048576, "enabled": True, "level": 6},
    "tracing": {
        "enabled": False,
        "server_url": "ws://127.0.0.1:9",
        "batch_size": 1,
        "batch_timeout": _ZERO,
        "enable_compression": False,
        "retry_config": {
            "max_retries": 0,
            "initial_delay": _ZERO,
            "max_delay": _ZERO,
            "backoff_multiplier": 1.0,
        },
    },
}
"""The full network configuration (every field is required) with tracing disabled."""

ACTOR_FAILED = "Reflow.ActorFailed"
MISSING_ENVIRONMENT = "Reflow.MissingEnvironment"
START_FAILED = "Reflow.StartFailed"


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``output`` when ``error`` is None."""

    output: Any = None
    error: str | None = None
    cause: str = ""

    def to_json(self) -> dict[str, Any]:
        """The child's answer on the wire."""
        if self.error is None:
            return {"status": "succeeded", "output": self.output}
        return {"status": "failed", "error": self.error, "cause": self.cause}


def to_message(value: Any) -> dict[str, Any]:
    """A JSON value as a tagged Reflow message (``null`` is a ``Flow`` packet)."""
    if value is None:
        return {"type": "Flow"}
    if isinstance(value, bool):
        return {"type": "Boolean", "data": value}
    if isinstance(value, int):
        return {"type": "Integer", "data": value}
    if isinstance(value, float):
        return {"type": "Float", "data": value}
    if isinstance(value, str):
        return {"type": "String", "data": value}
    if isinstance(value, list):
        return {"type": "Array", "data": value}
    if isinstance(value, dict):
        return {"type": "Object", "data": value}
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def from_message(message: Any) -> Any:
    """The JSON value a tagged message carries."""
    if isinstance(message, dict):
        return message.get("data")
    as_json = getattr(message, "as_json", None)
    return from_message(as_json()) if as_json is not None else message


def missing_environment(spec: NetworkSpec, environ: dict[str, str] | None = None) -> list[str]:
    """``node: VARIABLE`` for each required ``env_vars`` entry the environment lacks."""
    env = os.environ if environ is None else environ
    return [
        f"node {node.id!r} needs environment variable {var}"
        for node in spec.nodes.values()
        for var, mode in node.env_vars.items()
        if mode == "required" and var not in env
    ]


class _Run:
    """The run's single channel: outputs, error packets and actor failures arrive here."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self.finished = threading.Event()

    def fail(self, cause: str) -> None:
        self.events.put(("failed", ACTOR_FAILED, cause))


class _Tracked:
    """The context handed to a user's ``run``: remembers whether it called ``done`` or ``fail``."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self.resolved = False
        self.failed: str | None = None

    def done(self, outputs: Any = None) -> None:
        self.resolved = True
        self._ctx.done(outputs)

    def fail(self, message: Any) -> None:
        self.resolved = True
        self.failed = str(message)
        self._ctx.fail(str(message))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _quietly(call: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(Exception):  # the context may already be resolved: nothing left to tell
        call(*args)


def _describe(exc: BaseException) -> str:
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"  # noqa: PTH119
    return f"{type(exc).__name__}: {exc}{where}"


def _guarded(reflow: Any, node: Node, instance: Any, run: _Run) -> Any:
    cls = type(instance)
    label = f"node {node.id!r} ({node.component})"

    def run_once(self: Any, ctx: Any) -> None:
        del self
        if run.finished.is_set():
            _quietly(ctx.done, {})
            return
        tracked = _Tracked(ctx)
        try:
            instance.run(tracked)
        except BaseException as exc:  # an actor that exits or is interrupted fails the run too
            run.fail(f"{label} raised {_describe(exc)}")
            _quietly(ctx.fail, f"{type(exc).__name__}: {exc}")
            return
        if tracked.failed is not None:
            run.fail(f"{label} failed: {tracked.failed}")
        elif not tracked.resolved:
            run.fail(f"{label} returned without calling ctx.done()")
            _quietly(ctx.fail, "returned without calling ctx.done()")

    guarded = type(
        f"Guarded_{cls.__name__}",
        (reflow.Actor,),
        {
            "component": node.id,
            "inports": list(cls.inports),
            "outports": list(cls.outports),
            "await_all_inports": bool(getattr(cls, "await_all_inports", False)),
            "run": run_once,
        },
    )
    return guarded()


def _sink(reflow: Any, kind: str, name: str, end: Endpoint, run: _Run) -> Any:
    def receive(self: Any, ctx: Any) -> None:
        del self
        if not run.finished.is_set():
            for message in dict(ctx.inputs).values():
                run.events.put((kind, name, message))
        _quietly(ctx.done, {})

    sink = type(
        "Sink",
        (reflow.Actor,),
        {"component": f"sink-{end}", "inports": ["in"], "outports": [], "run": receive},
    )
    return sink()


def run_network(
    spec: NetworkSpec,
    components: dict[str, Component],
    input_value: Any,
    *,
    alive: Callable[[], bool] = lambda: True,
    shutdown: bool = True,
) -> Outcome:
    """Run ``spec`` (resolved to ``components``) on ``input_value`` until it answers; ``alive`` is
    asked twice a second whether anyone still waits for the answer (else: a ``Reflow.Abandoned``
    outcome). ``shutdown=False`` leaves the runtime running (the child exits right after)."""
    missing = missing_environment(spec)
    if missing:
        return Outcome(error=MISSING_ENVIRONMENT, cause="; ".join(missing))
    reflow = reflow_module()
    run = _Run()
    network = reflow.Network(TRACING_OFF)
    for template in sorted({n.component for n in spec.nodes.values() if n.is_template}):
        network.register_actor(template, reflow.template_actor(template))
    for node in spec.nodes.values():
        if node.is_template:
            network.add_node(node.id, node.component, node.config)
            continue
        actor_class = components[node.id].actor_class
        assert actor_class is not None
        try:
            instance = actor_class()
        except Exception as exc:
            return Outcome(error=ACTOR_FAILED, cause=f"node {node.id!r} ({node.component}): {_describe(exc)}")
        network.register_actor(f"py_{node.id}", _guarded(reflow, node, instance, run))
        network.add_node(node.id, f"py_{node.id}", node.config)
    for source, target in spec.connections:
        network.add_connection(source.node, source.port, target.node, target.port)
    sinks = [("output", name, end) for name, end in spec.output_endpoints().items()]
    sinks += [("error", str(end), end) for end in spec.errors]
    for index, (kind, name, end) in enumerate(sinks):
        sink_id = f"@{kind}{index}"
        network.register_actor(sink_id, _sink(reflow, kind, name, end, run))
        network.add_node(sink_id, sink_id, None)
        network.add_connection(end.node, end.port, sink_id, "in")
    network.add_initial(spec.input.node, spec.input.port, to_message(input_value))
    for packet in spec.initial:
        network.add_initial(packet.to.node, packet.to.port, to_message(packet.value))
    try:
        network.start()
    except RuntimeError as exc:
        return Outcome(error=START_FAILED, cause=f"network {spec.name!r} did not start: {exc}")
    try:
        return _wait(spec, run, alive)
    finally:
        run.finished.set()
        if shutdown:
            network.shutdown()


def _wait(spec: NetworkSpec, run: _Run, alive: Callable[[], bool]) -> Outcome:
    expected = spec.output_endpoints()
    received: dict[str, Any] = {}
    while len(received) < len(expected):
        try:
            kind, name, message = run.events.get(timeout=0.5)
        except queue.Empty:
            if not alive():
                return Outcome(error="Reflow.Abandoned", cause="nobody waits for the result any more")
            continue
        if kind == "failed":
            return Outcome(error=name, cause=str(message))
        tagged = message.as_json() if hasattr(message, "as_json") else message
        if kind == "error" or (isinstance(tagged, dict) and tagged.get("type") == "Error"):
            where = name if kind == "error" else str(expected[name])
            return Outcome(
                error=ACTOR_FAILED,
                cause=f"network {spec.name!r} sent an error at {where}: {from_message(tagged)}",
            )
        received.setdefault(name, from_message(tagged))
    if spec.output is not None:
        return Outcome(output=received[""])
    return Outcome(output=received)
