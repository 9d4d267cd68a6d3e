"""JSONPath as the States language uses it.

Two flavours (ASL specification, "Paths"):

* a *reference path* names one node: ``$``, ``$.a.b``, ``$['a b'][0]``; it is what ``ResultPath``,
  ``ItemsPath``, ``SecondsPath``... take, and it is what ``set_path`` writes into;
* a *path* may be any JSONPath (wildcards, filters, slices, deep scan) and then selects a list,
  as Jayway JsonPath (the engine AWS runs) does for indefinite paths.

Reference paths are parsed here by a small tokenizer because they are on the hot path of every state
(``jsonpath-ng`` parses through PLY and costs ~1 ms per parse) and because writing into a document
(``ResultPath``) has semantics no library offers: missing objects are created, a non-object in the way
is an error. Anything beyond a reference path is delegated to ``jsonpath-ng``'s extended parser, cached.

Paths may start with ``$$`` (the context object) or ``$name`` (a variable); the caller resolves the
root through ``split_root`` and then walks the rest from that value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_IDENT = re.compile(r"[^.\[\]\s'\"]+")
_NUMBER = re.compile(r"-?\d+")


class PathNotFound(LookupError):
    """A path selected nothing in the document."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class PathSyntaxError(ValueError):
    """A path that is not valid JSONPath."""


Step = str | int


@lru_cache(maxsize=4096)
def reference_steps(path: str) -> tuple[Step, ...] | None:
    """Parse a reference path (from ``$``) into its steps, or None if it is not one.

    ``$.a['b'][0]`` -> ``("a", "b", 0)``.
    """
    if not path.startswith("$"):
        return None
    i, n = 1, len(path)
    steps: list[Step] = []
    while i < n:
        c = path[i]
        if c == ".":
            m = _IDENT.match(path, i + 1)
            if not m or m.group(0) == "*":
                return None
            steps.append(m.group(0))
            i = m.end()
        elif c == "[":
            if i + 1 < n and path[i + 1] in "'\"":
                quote = path[i + 1]
                end = path.find(quote + "]", i + 2)
                if end < 0:
                    return None
                steps.append(path[i + 2 : end])
                i = end + 2
            else:
                end = path.find("]", i)
                if end < 0:
                    return None
                token = path[i + 1 : end].strip()
                if not _NUMBER.fullmatch(token):
                    return None
                steps.append(int(token))
                i = end + 1
        else:
            return None
    return tuple(steps)


@lru_cache(maxsize=1024)
def _compiled(path: str) -> Any:
    # imported on first use: jsonpath-ng builds its PLY parser at import, and most paths never need it
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError  # noqa: PLC0415
    from jsonpath_ng.ext.parser import parse  # noqa: PLC0415

    try:
        return parse(path)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise PathSyntaxError(f"invalid JSONPath {path!r}: {exc}") from None


def check_path(path: str) -> str | None:
    """Return None when ``path`` is valid JSONPath (from ``$``), else a message saying why not."""
    if not isinstance(path, str) or not path.startswith("$"):
        return f"The value for the field must be a valid JSONPath, got {path!r}"
    body = strip_root(path)
    if reference_steps(body) is not None:
        return None
    try:
        _compiled(body)
    except PathSyntaxError as exc:
        return str(exc)
    return None


def check_reference_path(path: str) -> str | None:
    """Return None when ``path`` is a valid reference path, else a message saying why not."""
    if not isinstance(path, str) or not path.startswith("$"):
        return f"The value for the field must be a valid reference path, got {path!r}"
    if reference_steps(strip_root(path)) is None:
        return f"{path!r} is not a valid reference path (no wildcards, filters or slices)"
    return None


def split_root(path: str) -> tuple[str, str]:
    """Split ``$$.a`` -> (``$$``, ``$.a``); ``$x.a`` -> (``$x``, ``$.a``); ``$.a`` -> (``$``, ``$.a``)."""
    if path.startswith("$$"):
        return "$$", "$" + path[2:]
    if len(path) > 1 and path[1] not in ".[":
        m = _IDENT.match(path, 1)
        end = m.end() if m else 1
        return path[:end], "$" + path[end:]
    return "$", path


def strip_root(path: str) -> str:
    """The path relative to its root value (see ``split_root``)."""
    return split_root(path)[1]


def select(path: str, data: Any) -> Any:
    """Evaluate ``path`` (from ``$``) against ``data``.

    A reference path returns the node it names or raises ``PathNotFound``; an indefinite path returns
    the list of matches (possibly empty), as Jayway does.
    """
    steps = reference_steps(path)
    if steps is not None:
        node = data
        for step in steps:
            if isinstance(step, int):
                if not isinstance(node, list):
                    raise PathNotFound(path)
                try:
                    node = node[step]
                except IndexError:
                    raise PathNotFound(path) from None
            else:
                if not isinstance(node, dict) or step not in node:
                    raise PathNotFound(path)
                node = node[step]
        return node
    expr = _compiled(path)
    try:
        matches = expr.find(data)
    except Exception as exc:  # jsonpath-ng raises bare exceptions for type mismatches in filters
        raise PathNotFound(path) from exc
    return [m.value for m in matches]


def set_path(path: str, document: Any, value: Any) -> Any:
    """Return ``document`` with ``value`` placed at the reference path (``ResultPath`` semantics).

    ``$`` replaces the document; missing objects on the way are created; the input is never mutated
    (the objects on the written path are copied). Raises ``PathNotFound`` when a non-object stands in
    the way.
    """
    steps = reference_steps(path)
    if steps is None:
        raise PathSyntaxError(f"{path!r} is not a reference path")
    if not steps:
        return value
    return _set(document, steps, value, path)


def _set(node: Any, steps: tuple[Step, ...], value: Any, path: str) -> Any:
    head, rest = steps[0], steps[1:]
    if isinstance(head, int):
        if not isinstance(node, list) or not -len(node) <= head < len(node):
            raise PathNotFound(path)
        copy_list = list(node)
        copy_list[head] = _set(copy_list[head], rest, value, path) if rest else value
        return copy_list
    if node is None:
        node = {}
    if not isinstance(node, dict):
        raise PathNotFound(path)
    copy = dict(node)
    copy[head] = _set(copy.get(head), rest, value, path) if rest else value
    return copy


def bracket_notation(path: str) -> str:
    """Render a reference path the way Jayway prints it in errors: ``$['a']['b'][0]``."""
    steps = reference_steps(path)
    if steps is None:
        return path
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f"['{s}']" for s in steps)
