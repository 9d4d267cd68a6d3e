"""JSONPath data flow of a state: InputPath, payload templates, ResultPath, OutputPath, variables.

Pure functions over JSON values. ``Scope`` holds workflow variables (``Assign``) with the nesting
Step Functions gives them: a Map iteration or Parallel branch reads the variables of the scope it was
started from and writes its own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from orchestrator.asl import paths
from orchestrator.asl.intrinsics import evaluate_intrinsic, is_intrinsic
from orchestrator.errors import RESULT_PATH_MATCH_FAILURE, RUNTIME, StatesError


class Scope:
    """Workflow variables visible to a thread of the execution."""

    __slots__ = ("parent", "values")

    def __init__(self, values: dict[str, Any] | None = None, parent: Scope | None = None) -> None:
        self.values: dict[str, Any] = values if values is not None else {}
        self.parent = parent

    def get(self, name: str) -> Any:
        """The value of ``name``, looked up outwards; ``PathNotFound`` when it was never assigned."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            scope = scope.parent
        raise paths.PathNotFound("$" + name)

    def visible(self) -> dict[str, Any]:
        """Every visible variable, inner scopes shadowing outer ones."""
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        out: dict[str, Any] = {}
        for s in reversed(chain):
            out.update(s.values)
        return out

    def child(self) -> Scope:
        """A nested scope (Map iteration, Parallel branch)."""
        return Scope({}, self)


# One encoder for every call: ``json.dumps`` with options builds a new one each time, and this runs for
# every state's input and output.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON as AWS puts it in history events."""
    return _ENCODER.encode(value)


class JsonPathEval:
    """Evaluates the JSONPath-flavour fields of one state against one input document."""

    __slots__ = ("_context", "data", "new_uuid", "rng", "scope")

    def __init__(
        self,
        data: Any,
        context: Callable[[], Any],
        scope: Scope,
        rng: random.Random,
        new_uuid: Callable[[], str],
    ) -> None:
        self.data = data
        self._context = context
        self.scope = scope
        self.rng = rng
        self.new_uuid = new_uuid

    def resolve(self, path: str) -> Any:
        """Value of a path from ``$`` (the data), ``$$`` (the context object) or ``$name`` (a variable)."""
        if path.startswith("$$"):
            return paths.select("$" + path[2:], self._context())
        if len(path) > 1 and path[1] not in ".[":
            root, rest = paths.split_root(path)
            return paths.select(rest, self.scope.get(root[1:]))
        return paths.select(path, self.data)

    def with_data(self, data: Any) -> JsonPathEval:
        """The same evaluator over another document (e.g. a result for ResultSelector)."""
        return JsonPathEval(data, self._context, self.scope, self.rng, self.new_uuid)

    def template(self, payload: Any) -> Any:
        """Evaluate a payload template: ``key.$`` entries are paths or intrinsic functions."""
        if isinstance(payload, dict):
            out: dict[str, Any] = {}
            for key, value in payload.items():
                if key.endswith(".$") and isinstance(value, str):
                    out[key[:-2]] = self.value_of(value, key)
                else:
                    out[key] = self.template(value)
            return out
        if isinstance(payload, list):
            return [self.template(v) for v in payload]
        return payload

    def value_of(self, expression: str, field: str) -> Any:
        """One ``.$`` value: an intrinsic call or a path."""
        if is_intrinsic(expression):
            try:
                return evaluate_intrinsic(expression, self.resolve, self.rng, self.new_uuid)
            except paths.PathNotFound as exc:
                raise StatesError(
                    RUNTIME,
                    f"The JSONPath '{exc.path}' specified for the field '{field}' could not be found in the "
                    f"input '{dumps(self.data)}'",
                ) from None
        try:
            return self.resolve(expression)
        except paths.PathNotFound:
            raise StatesError(
                RUNTIME,
                f"The JSONPath '{expression}' specified for the field '{field}' could not be found in the "
                f"input '{dumps(self.data)}'",
            ) from None

    def select_path(self, path: str | None) -> Any:
        """InputPath / OutputPath: ``None`` selects ``{}``; a missing path is States.Runtime."""
        if path is None:
            return {}
        if path == "$":
            return self.data
        try:
            return self.resolve(path)
        except paths.PathNotFound:
            shown = paths.bracket_notation(paths.strip_root(path))
            raise StatesError(RUNTIME, f"Invalid path '{path}' : No results for path: {shown}") from None

    def assign(self, assign: dict[str, Any]) -> dict[str, Any]:
        """Evaluate an ``Assign`` block (values may be templates) into new variable values."""
        return self.template(assign)  # type: ignore[no-any-return]


def apply_result_path(raw_input: Any, result_path: str | None, result: Any, *, present: bool) -> Any:
    """Combine a state's raw input and its result as ``ResultPath`` says.

    ``present`` is False when the field is absent (default ``$``: the result replaces the input);
    ``None`` (JSON null) discards the result and keeps the input.
    """
    if not present or result_path == "$":
        return result
    if result_path is None:
        return raw_input
    try:
        return paths.set_path(result_path, raw_input, result)
    except paths.PathNotFound:
        raise StatesError(
            RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ResultPath '{result_path}' to input '{dumps(raw_input)}'",
        ) from None
