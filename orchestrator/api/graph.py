"""The state-machine graph of the execution page, laid out from the definition (pure: no I/O).

Why hand-written: the ``transitions`` library draws diagrams only through Graphviz (``pygraphviz`` or
the ``graphviz`` package and its ``dot`` binary), a system dependency we do not want the server to
need, and its output would still have to be mapped back to ASL's nested Parallel branches and Map
processors. A state machine is a small, mostly forward graph, so a layered layout is enough:

1. order the states breadth-first from ``StartAt`` (unreachable ones last) and find the back edges
   (loops) with a depth-first search;
2. put each state one layer below its lowest predecessor along the forward edges (longest path);
3. size each node bottom-up: a plain state is a box sized by its name, a Parallel state a box around
   its branches side by side, a Map state a box around its processor;
4. centre each layer horizontally, and draw forward edges as curves from the bottom of one node to the
   top of the next, loops as curves bulging to the right.

The result is data (boxes and SVG path strings); the template draws it, so names are escaped there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NODE_H = 40
GAP_X = 28
GAP_Y = 44
PAD = 14
HEADER = 26
CHAR_W = 7.4
MIN_W = 96
MAX_W = 240
MAX_LABEL = 30


@dataclass
class Node:
    """One state's box; compound states (Parallel, Map) also get a frame around their children."""

    key: str
    name: str
    type: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    compound: bool = False

    @property
    def label(self) -> str:
        """The name as shown (long names are cut; the full name is the tooltip)."""
        return self.name if len(self.name) <= MAX_LABEL else self.name[: MAX_LABEL - 1] + "…"

    @property
    def cx(self) -> float:
        """Horizontal centre."""
        return self.x + self.w / 2


@dataclass
class Edge:
    """A transition: ``next``, ``choice``, ``default`` or ``catch``; ``d`` is its SVG path."""

    source: str
    target: str
    kind: str
    d: str


@dataclass
class Layout:
    """Everything the template draws; nodes in drawing order (frames before their children)."""

    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    start: tuple[float, float] | None = None


@dataclass
class _Program:
    w: float
    h: float
    nodes: list[Node]
    edges: list[Edge]
    start: tuple[float, float] | None


def layout(definition: Mapping[str, Any]) -> Layout:
    """Lay out ``definition`` (nested branches and processors included)."""
    program = _layout_program(definition, "", PAD, PAD + 18)
    start = program.start
    return Layout(program.w + 2 * PAD + 40, program.h + 2 * PAD + 18, program.nodes, program.edges, start)


def successors(state: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(target, kind)`` for every transition out of ``state``."""
    out: list[tuple[str, str]] = []
    if isinstance(state.get("Next"), str):
        out.append((state["Next"], "next"))
    for rule in state.get("Choices", []) if isinstance(state.get("Choices"), list) else []:
        if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
            out.append((rule["Next"], "choice"))
    if isinstance(state.get("Default"), str):
        out.append((state["Default"], "default"))
    for catcher in state.get("Catch", []) if isinstance(state.get("Catch"), list) else []:
        if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
            out.append((catcher["Next"], "catch"))
    return out


def _order(states: Mapping[str, Any], start: Any) -> list[str]:
    seen: list[str] = []
    queue = deque([start] if start in states else [])
    while queue:
        name = queue.popleft()
        if name in seen:
            continue
        seen.append(name)
        queue.extend(t for t, _ in successors(states[name]) if t in states and t not in seen)
    return seen + [name for name in states if name not in seen]


def _back_edges(states: Mapping[str, Any], order: list[str]) -> set[tuple[str, str]]:
    back: set[tuple[str, str]] = set()
    color: dict[str, int] = {}
    for root in order:
        if root in color:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        color[root] = 1
        while stack:
            name, index = stack.pop()
            targets = [t for t, _ in successors(states[name]) if t in states]
            if index < len(targets):
                stack.append((name, index + 1))
                target = targets[index]
                if color.get(target) == 1:
                    back.add((name, target))
                elif target not in color:
                    color[target] = 1
                    stack.append((target, 0))
            else:
                color[name] = 2
    return back


def _layout_program(definition: Mapping[str, Any], prefix: str, ox: float, oy: float) -> _Program:
    raw = definition.get("States")
    states: dict[str, Mapping[str, Any]] = (
        {str(k): v for k, v in raw.items() if isinstance(v, Mapping)} if isinstance(raw, Mapping) else {}
    )
    if not states:
        return _Program(MIN_W, NODE_H, [], [], None)
    order = _order(states, definition.get("StartAt"))
    back = _back_edges(states, order)
    layer = dict.fromkeys(order, 0)
    for name in _topological(states, order, back):
        for target, _ in successors(states[name]):
            if target in states and (name, target) not in back:
                layer[target] = max(layer[target], layer[name] + 1)
    # sizes, bottom-up: a compound state is laid out at the origin first, then moved into place
    inner: dict[str, list[_Program]] = {}
    size: dict[str, tuple[float, float]] = {}
    for name in order:
        state = states[name]
        programs = _child_programs(state)
        label_w = min(MAX_W, max(MIN_W, CHAR_W * min(len(name), MAX_LABEL) + 34))
        if programs:
            part = "*" if state.get("Type") == "Map" else None
            laid = [
                _layout_program(p, f"{prefix}{name}/{part or i}/", 0.0, 0.0) for i, p in enumerate(programs)
            ]
            inner[name] = laid
            w = max(label_w, sum(p.w for p in laid) + GAP_X * (len(laid) - 1) + 2 * PAD)
            h = HEADER + max(p.h for p in laid) + PAD
            size[name] = (w, h)
        else:
            size[name] = (label_w, NODE_H)
    rows: dict[int, list[str]] = {}
    for name in order:
        rows.setdefault(layer[name], []).append(name)
    width = max(sum(size[n][0] for n in row) + GAP_X * (len(row) - 1) for row in rows.values())
    nodes: dict[str, Node] = {}
    drawn: list[Node] = []
    edges: list[Edge] = []
    y = oy
    for index in sorted(rows):
        row = rows[index]
        row_w = sum(size[n][0] for n in row) + GAP_X * (len(row) - 1)
        x = ox + (width - row_w) / 2
        row_h = max(size[n][1] for n in row)
        for name in row:
            w, h = size[name]
            node = Node(f"{prefix}{name}", name, str(states[name].get("Type", "")), x, y, w, h)
            nodes[name] = node
            drawn.append(node)
            if name in inner:
                node.compound = True
                laid = inner[name]
                cx = x + (w - (sum(p.w for p in laid) + GAP_X * (len(laid) - 1))) / 2
                for program in laid:
                    _shift(program, cx, y + HEADER)
                    drawn.extend(program.nodes)
                    edges.extend(program.edges)
                    cx += program.w + GAP_X
            x += w + GAP_X
        y += row_h + GAP_Y
    for name in order:
        for target, kind in successors(states[name]):
            if target in nodes:
                edges.append(_edge(nodes[name], nodes[target], kind, (name, target) in back))
    first = nodes.get(str(definition.get("StartAt")))
    start = (first.cx, first.y - 16) if first is not None else None
    return _Program(width, y - GAP_Y - oy, drawn, edges, start)


def _topological(states: Mapping[str, Any], order: list[str], back: set[tuple[str, str]]) -> list[str]:
    indegree = dict.fromkeys(order, 0)
    for name in order:
        for target, _ in successors(states[name]):
            if target in indegree and (name, target) not in back:
                indegree[target] += 1
    ready = deque(n for n in order if indegree[n] == 0)
    out: list[str] = []
    while ready:
        name = ready.popleft()
        out.append(name)
        for target, _ in successors(states[name]):
            if target in indegree and (name, target) not in back:
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
    return out


def _child_programs(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if state.get("Type") == "Parallel" and isinstance(state.get("Branches"), list):
        return [b for b in state["Branches"] if isinstance(b, Mapping)]
    if state.get("Type") == "Map":
        program = state.get("ItemProcessor", state.get("Iterator"))
        return [program] if isinstance(program, Mapping) else []
    return []


def _shift(program: _Program, dx: float, dy: float) -> None:
    for node in program.nodes:
        node.x += dx
        node.y += dy
    for edge in program.edges:
        edge.d = _translate(edge.d, dx, dy)


def _translate(d: str, dx: float, dy: float) -> str:
    parts = d.split()
    out: list[str] = []
    for part in parts:
        if "," in part:
            x, y = part.split(",")
            out.append(f"{float(x) + dx:.1f},{float(y) + dy:.1f}")
        else:
            out.append(part)
    return " ".join(out)


def _edge(a: Node, b: Node, kind: str, is_back: bool) -> Edge:
    if is_back or b.y <= a.y:
        x1, y1 = a.x + a.w, a.y + min(a.h, NODE_H) / 2
        x2, y2 = b.x + b.w, b.y + min(b.h, NODE_H) / 2
        bulge = max(x1, x2) + 36
        d = f"M {x1:.1f},{y1:.1f} C {bulge:.1f},{y1:.1f} {bulge:.1f},{y2:.1f} {x2 + 6:.1f},{y2:.1f}"
        return Edge(a.key, b.key, kind, d)
    x1, y1 = a.cx, a.y + a.h
    x2, y2 = b.cx, b.y - 6
    mid = (y1 + y2) / 2
    d = f"M {x1:.1f},{y1:.1f} C {x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}"
    return Edge(a.key, b.key, kind, d)
