"""Task states that run Reflow networks: ``"Resource": "reflow:<network>"``.

A network is a JSON file ``<network>.json`` in the folder named by ``[reflow] networks`` (see
:mod:`~orchestrator.integrations.reflow.catalog`). The state's effective input goes in at the network's
input endpoint; the network's result is the first packet that reaches its output endpoint::

    {
      "description": "Greets everyone, one actor call per person.",
      "nodes": {
        "split":  {"component": "orchestrator.integrations.reflow.actors:Split"},
        "each":   {"component": "tpl_loop"},
        "greet":  {"component": "orchestrator.integrations.reflow.actors:Format",
                   "config": {"template": "Hello, {value}!"}},
        "gather": {"component": "orchestrator.integrations.reflow.actors:Gather"}
      },
      "connections": [
        {"from": "split.items", "to": "each.collection"},
        {"from": "split.count", "to": "gather.count"},
        {"from": "each.item", "to": "greet.in"},
        {"from": "greet.out", "to": "gather.item"}
      ],
      "input": "split.in",
      "output": "gather.out"
    }

* ``nodes``: node id -> ``component`` (a bundled template ``tpl_*``, or a Python actor class
  ``package.module:Class`` subclassing ``offbit_reflow.Actor``), optional ``config`` (an object the
  actor sees as ``ctx.config``; its ``env_vars`` maps variable names to ``"required"``,
  ``"optional"`` or ``"optional:<default>"`` and copies them from the child's environment), and, for
  templates whose ports are not known here, ``ports: {"in": [...], "out": [...]}``.
* ``connections``: ``{"from": "node.port", "to": "node.port"}``; the graph must be acyclic, and every
  node reached from the input or an initial packet.
* ``input``: the endpoint the task input is sent to (as a tagged message: object, array, string...).
* ``output``: one endpoint (result: its first packet's value) or an object ``name -> endpoint``
  (result: an object with each name's first packet).
* ``errors`` (optional): endpoints (such as a template's ``error`` port) whose packets fail the task.
* ``initial`` (optional): ``{"to": "node.port", "value": <JSON>}`` packets sent at start, at most 32
  per node.

Everything is validated before a network starts, because Reflow 0.2.9 aborts the whole process on
bad wiring; problems are reported as ``FILE:/json/pointer: message``. Each run happens in a spawned
child process with tracing off (:mod:`~orchestrator.integrations.reflow.runner`), killed on
``TimeoutSeconds`` (``States.Timeout``), on cancellation and when a heartbeat says the task no longer
runs. Errors a Task state can Retry or Catch:

* ``Reflow.ActorFailed``: an actor raised (the cause names the node and the exception), called
  ``ctx.fail``, returned without ``ctx.done``, or a packet reached an ``errors`` endpoint;
* ``Reflow.ChildCrashed``: the child died without answering (exit code or signal in the cause);
* ``Reflow.InvalidNetwork``, ``Reflow.UnknownNetwork``, ``Reflow.MissingEnvironment`` (a required
  ``env_vars`` entry is not set), ``Reflow.StartFailed``, ``Reflow.InvalidOutput``;
* ``States.Timeout``.

``orchestrator networks list|validate|run`` works on networks alone (:mod:`orchestrator.cli.networks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.registry.service import DefinitionCheck
    from orchestrator.runtime import Runtime

SCHEME = "reflow"


def install(runtime: Runtime) -> None:
    """Register the ``reflow`` executor on ``runtime``, configured from its ``[reflow]`` table."""
    # imported here, not at the top: the child process imports this package and needs none of it
    from orchestrator.integrations.reflow.catalog import ReflowSettings  # noqa: PLC0415
    from orchestrator.integrations.reflow.executor import ReflowExecutor  # noqa: PLC0415

    runtime.executors[SCHEME] = ReflowExecutor(ReflowSettings.from_config(runtime.config))


def definition_checks(config: Config) -> list[DefinitionCheck]:
    """Refuse ``reflow:X`` resources that name no configured network, or an invalid one."""
    from orchestrator.integrations.reflow.catalog import ReflowSettings  # noqa: PLC0415
    from orchestrator.integrations.reflow.spec import NetworkInvalid  # noqa: PLC0415
    from orchestrator.integrations.task_states import task_states  # noqa: PLC0415

    settings = ReflowSettings.from_config(config)

    def check(name: str, definition: Any) -> list[str]:
        del name
        problems: list[str] = []
        known: list[str] | None = None
        for task in task_states(definition):
            if not task.resource.startswith(f"{SCHEME}:"):
                continue
            pointer = f"{task.pointer}/Resource"
            network = task.resource.split(":", 1)[1]
            if known is None:
                known = settings.names()
            if network not in known:
                listed = ", ".join(known) or "none"
                problems.append(
                    f"{pointer}: reflow network {network!r} is not configured "
                    f"(networks in {settings.folder}: {listed})"
                )
                continue
            try:
                settings.load(network)
            except NetworkInvalid as exc:
                first = exc.lines()[0]
                problems.append(f"{pointer}: reflow network {network!r} is invalid: {first}")
        return problems

    return [check]
