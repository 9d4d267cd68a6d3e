"""What each node of a network is made of, and whether its ports exist: the half of validation that
imports.

A node's component is a bundled template (``tpl_*``, checked against ``offbit_reflow.template_list()``)
or a Python actor class named ``package.module:Class`` (imported; it must subclass
``offbit_reflow.Actor`` and declare ``inports``/``outports``). Reflow itself never checks port names
(a packet sent to a port that does not exist just vanishes, or fires the node with an empty packet),
so this is the only place a misspelt port is caught. The runtime exposes no port list for its
templates, so the ports of the templates below were found by running them and are pinned by
``tests/integrations/reflow/test_templates.py``; any other template must declare its ports in the
spec (``"ports": {"in": [...], "out": [...]}``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.integrations.reflow.spec import NAME, NetworkInvalid, NetworkSpec, Node

TEMPLATE_PORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tpl_loop": (("collection",), ("item",)),
    "tpl_passthrough": (("input",), ("output",)),
    "tpl_map": (("input",), ("output", "error")),
    "tpl_filter": (("input",), ("output", "error")),
    "tpl_reduce": (("input",), ("output", "error")),
}
"""Ports of the templates whose ports are known: template id -> (inports, outports)."""


@dataclass(frozen=True)
class Component:
    """A node's resolved component: its ports, and its actor class when it is a Python actor."""

    inports: tuple[str, ...]
    outports: tuple[str, ...]
    actor_class: type[Any] | None = None


def reflow_module() -> Any:
    """The ``offbit_reflow`` package (imported on first use: the worker only needs it to validate)."""
    import offbit_reflow  # type: ignore[import-untyped]  # noqa: PLC0415 - no stubs, imported when needed

    return offbit_reflow


@cache
def templates() -> frozenset[str]:
    """The ids of the templates bundled with the installed Reflow."""
    return frozenset(str(t) for t in reflow_module().template_list())


@contextmanager
def search_path(folders: Sequence[Path]) -> Iterator[None]:
    """Import actor modules from ``folders`` too (first), while inside the block."""
    added = [str(folder.resolve()) for folder in folders]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def resolve(spec: NetworkSpec) -> dict[str, Component]:
    """Every node's component, after checking that components and ports exist; ``NetworkInvalid``
    lists every problem."""
    problems: list[tuple[str, str]] = []
    components: dict[str, Component] = {}
    for node in spec.nodes.values():
        pointer = f"/nodes/{node.id}/component"
        try:
            components[node.id] = _template(node) if node.is_template else _actor(node)
        except _Refused as exc:
            problems.append((pointer, str(exc)))
    if not problems:
        problems.extend(_port_problems(spec, components))
    if problems:
        raise NetworkInvalid(spec.source, problems)
    return components


class _Refused(Exception):
    pass


def _template(node: Node) -> Component:
    if node.component not in templates():
        raise _Refused(
            f"template {node.component!r} is not bundled with Reflow {reflow_module().__version__}"
        )
    if node.inports is not None or node.outports is not None:
        return Component(node.inports or (), node.outports or ())
    known = TEMPLATE_PORTS.get(node.component)
    if known is None:
        raise _Refused(
            f"the ports of template {node.component!r} are not known here: declare them on the node "
            'with "ports": {"in": [...], "out": [...]}'
        )
    return Component(*known)


def _actor(node: Node) -> Component:
    module_name, class_name = node.component.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _Refused(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise _Refused(f"module {module_name!r} has no {class_name!r}")
    base = reflow_module().Actor
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise _Refused(f"{node.component!r} is not a subclass of offbit_reflow.Actor")
    if getattr(cls, "run", None) is base.run:
        raise _Refused(f"{node.component!r} does not implement run(self, ctx)")
    ports: list[tuple[str, ...]] = []
    for side in ("inports", "outports"):
        names = getattr(cls, side, None)
        if not isinstance(names, list | tuple) or not all(
            isinstance(n, str) and NAME.match(n) for n in names
        ):
            raise _Refused(f"{node.component}.{side} must be a list of port names")
        ports.append(tuple(names))
    return Component(ports[0], ports[1], cls)


def _port_problems(spec: NetworkSpec, components: dict[str, Component]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    def check(node: str, port: str, pointer: str, side: str) -> None:
        ports = components[node].inports if side == "in" else components[node].outports
        if port not in ports:
            kind = "input" if side == "in" else "output"
            listed = ", ".join(ports) or "none"
            problems.append(
                (
                    pointer,
                    f"node {node!r} ({spec.nodes[node].component}) has no {kind} port {port!r} "
                    f"({kind} ports: {listed})",
                )
            )

    for source, target in spec.connections:
        check(source.node, source.port, source.pointer, "out")
        check(target.node, target.port, target.pointer, "in")
    check(spec.input.node, spec.input.port, spec.input.pointer, "in")
    for end in spec.output_endpoints().values():
        check(end.node, end.port, end.pointer, "out")
    for end in spec.errors:
        check(end.node, end.port, end.pointer, "out")
    for packet in spec.initial:
        check(packet.to.node, packet.to.port, packet.to.pointer, "in")
    return problems
