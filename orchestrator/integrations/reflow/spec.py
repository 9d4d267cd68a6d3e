"""A network spec file, read and checked without importing anything: the structural half of validation.

:func:`parse_spec` turns the JSON document of one ``<name>.json`` file into a :class:`NetworkSpec`, or
raises :class:`NetworkInvalid` listing every problem at once, each with the JSON pointer it is about.
What it checks needs no component: the shape of every field, node and port names, that every endpoint
names a declared node, that the graph has no cycle, that every node can be reached from the input or
an initial packet and that every output can be reached, the ``env_vars`` of node configs, and the
number of initial packets per node. The other half (components exist, ports exist on them) lives in
:mod:`orchestrator.integrations.reflow.components`, because it has to import actor classes.

Hand-written rather than a JSON Schema: the checks that matter (endpoints naming declared nodes,
cycles, reachability) are about the graph, which a schema cannot express, and the messages must name
the file and the pointer in the same style as ``orchestrator validate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.asl.problems import child
from orchestrator.asl.problems import pointer as pointer_to
from orchestrator.errors import UsageError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,79}$")
"""Node ids, port names and network names: no dots (``node.port`` is an endpoint), no slashes."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_MODE = re.compile(r"^(required|optional|optional:.*)$", re.DOTALL)
CLASS_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
MAX_INITIAL_PER_NODE = 32
"""More than ~50 initial packets to one Python actor deadlocks the runtime (see the package docs)."""

INVALID_NETWORK = "Reflow.InvalidNetwork"
"""The task error of a network that fails validation (in the worker, or fully in the child)."""

_TOP_KEYS = frozenset({"description", "nodes", "connections", "input", "output", "errors", "initial"})
_NODE_KEYS = frozenset({"component", "config", "ports", "description"})


class NetworkInvalid(UsageError):
    """A network spec with problems; ``problems`` are ``(pointer, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One ``FILE:POINTER: message`` line per problem."""
        return [f"{self.source}:{pointer or '/'}: {message}" for pointer, message in self.problems]


@dataclass(frozen=True)
class Endpoint:
    """One port of one node, written ``node.port`` in a spec."""

    node: str
    port: str
    pointer: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


@dataclass(frozen=True)
class Node:
    """A node: its component (``tpl_*`` or ``package.module:Class``), its config, declared ports."""

    id: str
    component: str
    config: dict[str, Any] | None
    inports: tuple[str, ...] | None = None
    outports: tuple[str, ...] | None = None
    """Declared ports: only for templates whose ports this package does not know."""

    @property
    def is_template(self) -> bool:
        """A bundled Reflow template (``tpl_*``) rather than a Python actor class."""
        return self.component.startswith("tpl_")

    @property
    def env_vars(self) -> dict[str, str]:
        """The ``env_vars`` of the node's config: variable name -> required/optional[:default]."""
        value = (self.config or {}).get("env_vars") or {}
        return dict(value)


@dataclass(frozen=True)
class Initial:
    """A packet sent to a node's port when the network starts."""

    to: Endpoint
    value: Any


@dataclass(frozen=True)
class NetworkSpec:
    """A structurally valid network."""

    name: str
    source: str
    description: str
    nodes: dict[str, Node]
    connections: tuple[tuple[Endpoint, Endpoint], ...]
    input: Endpoint
    outputs: dict[str, Endpoint] | None
    """Named outputs (result: an object with one member per name)..."""
    output: Endpoint | None
    """...or one output (result: the value of its first packet)."""
    errors: tuple[Endpoint, ...] = ()
    initial: tuple[Initial, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)

    def output_endpoints(self) -> dict[str, Endpoint]:
        """Every output endpoint by name (the single ``output`` is named ``""``)."""
        if self.output is not None:
            return {"": self.output}
        return dict(self.outputs or {})


def parse_spec(name: str, document: Any, source: str) -> NetworkSpec:
    """Check ``document`` (the parsed JSON of ``source``) and return the network; ``NetworkInvalid``
    lists every problem found."""
    problems: list[tuple[str, str]] = []
    if not NAME.match(name):
        problems.append(("", f"network name {name!r} must be 1-80 letters, digits, '_' or '-'"))
    if not isinstance(document, dict):
        raise NetworkInvalid(source, [("", f"must be a JSON object, not {_type(document)}")])
    problems.extend((pointer_to(key), "unknown field") for key in sorted(set(document) - _TOP_KEYS))
    description = document.get("description", "")
    if not isinstance(description, str):
        problems.append(("/description", f"must be a string, not {_type(description)}"))
        description = ""
    nodes = _nodes(document.get("nodes"), problems)
    ends = _Endpoints(nodes, problems)
    connections = _connections(document.get("connections", []), ends, problems)
    input_end = ends.parse(document.get("input"), "/input") if "input" in document else None
    if "input" not in document:
        problems.append(("/input", "is required: the endpoint ('node.port') the task input goes to"))
    output, outputs = _outputs(document, ends, problems)
    errors = _errors(document.get("errors", []), ends, problems)
    initial = _initial(document.get("initial", []), ends, problems)
    if not problems and input_end is not None:
        problems.extend(_graph_problems(nodes, connections, input_end, initial, output or outputs))
    if problems or input_end is None:
        raise NetworkInvalid(source, problems)
    return NetworkSpec(
        name=name,
        source=source,
        description=description,
        nodes=nodes,
        connections=tuple(connections),
        input=input_end,
        output=output,
        outputs=outputs,
        errors=tuple(errors),
        initial=tuple(initial),
        raw=document,
    )


def _nodes(value: Any, problems: list[tuple[str, str]]) -> dict[str, Node]:
    if not isinstance(value, dict) or not value:
        problems.append(("/nodes", 'is required: an object of node id -> {"component": ...}'))
        return {}
    nodes: dict[str, Node] = {}
    for node_id, body in value.items():
        pointer = pointer_to("nodes", node_id)
        if not NAME.match(node_id):
            problems.append((pointer, "node ids are 1-80 letters, digits, '_' or '-' (no dots)"))
            continue
        if not isinstance(body, dict):
            problems.append((pointer, f"must be an object, not {_type(body)}"))
            continue
        problems.extend((f"{pointer}/{key}", "unknown field") for key in sorted(set(body) - _NODE_KEYS))
        component = body.get("component")
        if not isinstance(component, str) or not component:
            problems.append(
                (f"{pointer}/component", "is required: a 'tpl_*' template or 'package.module:Class'")
            )
            continue
        if not component.startswith("tpl_") and not CLASS_PATH.match(component):
            problems.append(
                (
                    f"{pointer}/component",
                    f"{component!r} is neither a bundled template ('tpl_*') "
                    "nor a Python actor class ('package.module:Class')",
                )
            )
            continue
        config = body.get("config")
        if config is not None and not isinstance(config, dict):
            problems.append((f"{pointer}/config", f"must be an object, not {_type(config)}"))
            continue
        _check_env_vars(config or {}, f"{pointer}/config", problems)
        inports, outports = _declared_ports(body, component, pointer, problems)
        nodes[node_id] = Node(node_id, component, config, inports, outports)
    return nodes


def _check_env_vars(config: dict[str, Any], pointer: str, problems: list[tuple[str, str]]) -> None:
    if "env_vars" not in config:
        return
    env_vars = config["env_vars"]
    if not isinstance(env_vars, dict):
        problems.append((f"{pointer}/env_vars", f"must be an object, not {_type(env_vars)}"))
        return
    for var, mode in env_vars.items():
        where = child(pointer, "env_vars", var)
        if not ENV_NAME.match(var):
            problems.append((where, f"{var!r} is not an environment variable name"))
        elif not isinstance(mode, str) or not ENV_MODE.match(mode):
            problems.append((where, 'must be "required", "optional" or "optional:<default>"'))
        elif var in config:
            problems.append(
                (where, f"the config already has a field {var!r} that this variable would replace")
            )


def _declared_ports(
    body: dict[str, Any], component: str, pointer: str, problems: list[tuple[str, str]]
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    if "ports" not in body:
        return None, None
    ports = body["ports"]
    where = f"{pointer}/ports"
    if not component.startswith("tpl_"):
        problems.append((where, "only templates declare ports; a Python actor's come from its class"))
        return None, None
    if not isinstance(ports, dict) or set(ports) - {"in", "out"}:
        problems.append((where, 'must be {"in": [port, ...], "out": [port, ...]}'))
        return None, None
    found: list[tuple[str, ...]] = []
    for side in ("in", "out"):
        names = ports.get(side, [])
        if not isinstance(names, list) or not all(isinstance(n, str) and NAME.match(n) for n in names):
            problems.append((f"{where}/{side}", "must be a list of port names"))
            names = []
        found.append(tuple(names))
    return found[0], found[1]


class _Endpoints:
    """Parses ``node.port`` strings against the declared nodes."""

    def __init__(self, nodes: dict[str, Node], problems: list[tuple[str, str]]) -> None:
        self.nodes = nodes
        self.problems = problems

    def parse(self, value: Any, pointer: str) -> Endpoint | None:
        if not isinstance(value, str) or value.count(".") != 1:
            self.problems.append((pointer, f"must be an endpoint 'node.port', not {_shown(value)}"))
            return None
        node, port = value.split(".")
        if not NAME.match(port):
            self.problems.append((pointer, f"{port!r} is not a port name"))
            return None
        if node not in self.nodes:
            known = ", ".join(sorted(self.nodes)) or "none"
            self.problems.append((pointer, f"node {node!r} does not exist (nodes: {known})"))
            return None
        return Endpoint(node, port, pointer)


def _connections(
    value: Any, ends: _Endpoints, problems: list[tuple[str, str]]
) -> list[tuple[Endpoint, Endpoint]]:
    if not isinstance(value, list):
        problems.append(("/connections", f"must be a list, not {_type(value)}"))
        return []
    out: list[tuple[Endpoint, Endpoint]] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(value):
        pointer = f"/connections/{index}"
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            problems.append((pointer, 'must be {"from": "node.port", "to": "node.port"}'))
            continue
        source = ends.parse(item["from"], f"{pointer}/from")
        target = ends.parse(item["to"], f"{pointer}/to")
        if source is None or target is None:
            continue
        key = (str(source), str(target))
        if key in seen:
            problems.append((pointer, f"connection {source} -> {target} is declared twice"))
            continue
        seen.add(key)
        out.append((source, target))
    return out


def _outputs(
    document: dict[str, Any], ends: _Endpoints, problems: list[tuple[str, str]]
) -> tuple[Endpoint | None, dict[str, Endpoint] | None]:
    value = document.get("output")
    if value is None:
        problems.append(("/output", "is required: 'node.port', or an object of result name -> 'node.port'"))
        return None, None
    if isinstance(value, dict):
        if not value:
            problems.append(("/output", "must name at least one endpoint"))
            return None, None
        outputs: dict[str, Endpoint] = {}
        for key, item in value.items():
            end = ends.parse(item, pointer_to("output", key))
            if end is not None:
                outputs[key] = end
        return None, outputs
    return ends.parse(value, "/output"), None


def _errors(value: Any, ends: _Endpoints, problems: list[tuple[str, str]]) -> list[Endpoint]:
    if not isinstance(value, list):
        problems.append(("/errors", f"must be a list of endpoints, not {_type(value)}"))
        return []
    return [e for i, item in enumerate(value) if (e := ends.parse(item, f"/errors/{i}")) is not None]


def _initial(value: Any, ends: _Endpoints, problems: list[tuple[str, str]]) -> list[Initial]:
    if not isinstance(value, list):
        problems.append(("/initial", f"must be a list, not {_type(value)}"))
        return []
    out: list[Initial] = []
    per_node: dict[str, int] = {}
    for index, item in enumerate(value):
        pointer = f"/initial/{index}"
        if not isinstance(item, dict) or set(item) != {"to", "value"}:
            problems.append((pointer, 'must be {"to": "node.port", "value": <JSON>}'))
            continue
        end = ends.parse(item["to"], f"{pointer}/to")
        if end is None:
            continue
        per_node[end.node] = per_node.get(end.node, 0) + 1
        if per_node[end.node] == MAX_INITIAL_PER_NODE + 1:
            problems.append(
                (
                    pointer,
                    f"more than {MAX_INITIAL_PER_NODE} initial packets to node {end.node!r} "
                    "(the runtime deadlocks): send one array through 'tpl_loop' instead",
                )
            )
        out.append(Initial(end, item["value"]))
    return out


def _graph_problems(
    nodes: dict[str, Node],
    connections: list[tuple[Endpoint, Endpoint]],
    input_end: Endpoint,
    initial: list[Initial],
    output: Endpoint | dict[str, Endpoint] | None,
) -> list[tuple[str, str]]:
    graph: dict[str, list[tuple[str, Endpoint]]] = {node: [] for node in nodes}
    for source, target in connections:
        graph[source.node].append((target.node, source))
    problems: list[tuple[str, str]] = []
    cycle = _find_cycle(graph)
    if cycle is not None:
        path, closing = cycle
        problems.append(
            (
                closing.pointer.rsplit("/", 1)[0],
                f"closes a cycle {' -> '.join(path)}: networks must be acyclic",
            )
        )
        return problems
    reached = _reachable(graph, [input_end.node, *(i.to.node for i in initial)])
    for node in nodes:
        if node not in reached:
            problems.append(
                (pointer_to("nodes", node), "is never reached from the input or an initial packet")
            )
    from_input = _reachable(graph, [input_end.node])
    ends = list(output.values()) if isinstance(output, dict) else [output]
    for end in ends:
        if end is not None and end.node not in from_input:
            problems.append((end.pointer, f"node {end.node!r} cannot be reached from the input {input_end}"))
    return problems


def _find_cycle(graph: dict[str, list[tuple[str, Endpoint]]]) -> tuple[list[str], Endpoint] | None:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> tuple[list[str], Endpoint] | None:
        color[node] = grey
        stack.append(node)
        for target, via in graph[node]:
            if color[target] == grey:
                return [*stack[stack.index(target) :], target], via
            if color[target] == white and (found := visit(target)) is not None:
                return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white and (found := visit(node)) is not None:
            return found
    return None


def _reachable(graph: dict[str, list[tuple[str, Endpoint]]], starts: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(target for target, _ in graph[node])
    return seen


def _type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _type(value)
