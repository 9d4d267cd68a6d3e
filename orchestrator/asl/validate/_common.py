"""Plumbing shared by the validator's parts: the problem collector and small value predicates."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator.asl import jsontypes
from orchestrator.asl.problems import Problem

JSONPATH: Final = "JSONPath"
JSONATA: Final = "JSONata"
QUERY_LANGUAGES: Final = (JSONPATH, JSONATA)

STANDARD: Final = "STANDARD"
EXPRESS: Final = "EXPRESS"

MAX_SECONDS: Final = 99_999_999  # the largest TimeoutSeconds/Seconds/IntervalSeconds... AWS accepts
EXPRESSION_HINT: Final = "a JSONata expression '{% ... %}'"


@dataclass
class Context:
    """What one validation run accumulates: its problems and definition-wide facts."""

    machine_type: str = STANDARD
    top_language: str = JSONPATH
    problems: list[Problem] = field(default_factory=list)
    # State names must be unique across the whole definition (nested machines included).
    state_names: dict[str, str] = field(default_factory=dict)

    def add(self, ptr: str, message: str) -> None:
        """Record one problem at ``ptr``."""
        self.problems.append(Problem(ptr, message))


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value as validation messages show it (``integer`` apart)."""
    return jsontypes.json_type(value, integers=True)


def shown(value: Any, limit: int = 60) -> str:
    """A short rendering of a value for a message: scalars as JSON, containers by their type."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 256:
        return "a very large integer"  # repr() refuses integers beyond 4300 digits
    if isinstance(value, int | float):
        return repr(value)
    return "an " + json_type(value) if json_type(value)[0] in "aeiou" else "a " + json_type(value)


def is_int(value: Any) -> bool:
    """A JSON integer (booleans are not numbers)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite JSON number (booleans are not numbers)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def is_expression(value: Any) -> bool:
    """A JSONata expression string ``{% ... %}`` (anything else is a literal, as AWS reads it)."""
    return isinstance(value, str) and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


def names(items: Iterable[str]) -> str:
    """``a, b, c`` in sorted order, for 'allowed: ...' lists."""
    return ", ".join(sorted(items))


def guarded(check: Callable[[str], str | None], text: str) -> str | None:
    """Run a checker owned by another module; if it crashes, the definition is not blamed for it."""
    try:
        return check(text)
    except Exception:  # a crash in a helper must not turn into a validation verdict
        return None
