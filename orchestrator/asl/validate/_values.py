"""Checks of single values: numbers, strings, paths, payload templates, JSONata, ``Assign``.

Every checker reports through the ``Context`` and returns nothing; ``field`` is the name shown in the
message (``'TimeoutSeconds' must be ...``) and ``ptr`` the JSON Pointer of the value itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonata

from orchestrator.asl import intrinsics, paths
from orchestrator.asl.problems import child
from orchestrator.asl.timestamps import parse_timestamp
from orchestrator.asl.validate._common import (
    EXPRESSION_HINT,
    JSONATA,
    JSONPATH,
    Context,
    guarded,
    is_expression,
    is_int,
    is_number,
    json_type,
    shown,
)

# --------------------------------------------------------------------------------------------------
# Scalars


def _or_expression(allow_expr: bool) -> str:
    return f" or {EXPRESSION_HINT}" if allow_expr else ""


def check_string(
    ctx: Context, value: Any, ptr: str, field: str, *, allow_empty: bool = False, max_length: int = 0
) -> None:
    """A JSON string (non-empty unless ``allow_empty``, at most ``max_length`` characters if set)."""
    if not isinstance(value, str):
        ctx.add(ptr, f"'{field}' must be a string, got {shown(value)}")
    elif not value and not allow_empty:
        ctx.add(ptr, f"'{field}' must be a non-empty string")
    elif max_length and len(value) > max_length:
        ctx.add(ptr, f"'{field}' must be at most {max_length} characters long, got {len(value)}")


def check_bool(ctx: Context, value: Any, ptr: str, field: str) -> None:
    """A JSON boolean."""
    if not isinstance(value, bool):
        ctx.add(ptr, f"'{field}' must be a boolean (true or false), got {shown(value)}")


def check_int(
    ctx: Context, value: Any, ptr: str, field: str, *, low: int, high: int | None, allow_expr: bool = False
) -> None:
    """An integer in ``[low, high]`` (``high`` None: unbounded), or a JSONata expression if allowed."""
    if allow_expr and is_expression(value):
        return
    if is_int(value) and value >= low and (high is None or value <= high):
        return
    bounds = f"between {low} and {high}" if high is not None else f"greater than or equal to {low}"
    ctx.add(ptr, f"'{field}' must be an integer {bounds}{_or_expression(allow_expr)}, got {shown(value)}")


def check_number(
    ctx: Context,
    value: Any,
    ptr: str,
    field: str,
    *,
    low: float,
    high: float | None,
    allow_expr: bool = False,
) -> None:
    """A number in ``[low, high]`` (``high`` None: unbounded), or a JSONata expression if allowed."""
    if allow_expr and is_expression(value):
        return
    if is_number(value) and value >= low and (high is None or value <= high):
        return
    bounds = f"between {low:g} and {high:g}" if high is not None else f"greater than or equal to {low:g}"
    ctx.add(ptr, f"'{field}' must be a number {bounds}{_or_expression(allow_expr)}, got {shown(value)}")


def check_enum(ctx: Context, value: Any, ptr: str, field: str, allowed: tuple[str, ...]) -> None:
    """One of a fixed set of strings."""
    if value not in allowed or not isinstance(value, str):
        choices = " or ".join(f"'{a}'" for a in allowed)
        ctx.add(ptr, f"'{field}' must be {choices}, got {shown(value)}")


def check_timestamp(ctx: Context, value: Any, ptr: str, field: str, *, allow_expr: bool) -> None:
    """A literal RFC 3339 timestamp with a zone (``2016-03-14T01:59:00Z``), or an expression if allowed."""
    if allow_expr and is_expression(value):
        return
    if not isinstance(value, str) or guarded_timestamp(value) is None:
        ctx.add(
            ptr,
            f"'{field}' must be an RFC 3339 timestamp with an uppercase 'T' and a zone, such as "
            f"'2016-03-14T01:59:00Z' or '2016-03-14T01:59:00+01:00'{_or_expression(allow_expr)}; "
            f"got {shown(value)}",
        )


def guarded_timestamp(text: str) -> object | None:
    """``parse_timestamp`` shielded from crashes (a crash counts as 'not a timestamp')."""
    try:
        return parse_timestamp(text)
    except Exception:  # owned by another module: never let it escape validation
        return None


# --------------------------------------------------------------------------------------------------
# JSONPath paths


def check_path(ctx: Context, value: Any, ptr: str, field: str, *, allow_null: bool = False) -> None:
    """A JSONPath (``$...``, ``$$...`` or ``$variable...``), as InputPath and OutputPath take."""
    if value is None and allow_null:
        return
    if not isinstance(value, str):
        nullable = " or null" if allow_null else ""
        ctx.add(ptr, f"'{field}' must be a JSONPath string{nullable}, got {shown(value)}")
        return
    why = guarded(paths.check_path, value)
    if why is not None:
        ctx.add(ptr, f"'{field}' must be a valid JSONPath: {why}")


def check_reference_path(
    ctx: Context,
    value: Any,
    ptr: str,
    field: str,
    *,
    allow_null: bool = False,
    input_only: bool = False,
    allow_intrinsic: bool = False,
) -> None:
    """A reference path (one node, no wildcards or filters).

    ``input_only``: the path writes into the state input (``ResultPath``), so the context object
    (``$$``) and variables (``$name``) are refused. ``allow_intrinsic``: an intrinsic function call
    is accepted instead (``ErrorPath``, ``CausePath``).
    """
    if value is None and allow_null:
        return
    if not isinstance(value, str):
        nullable = " or null" if allow_null else ""
        ctx.add(ptr, f"'{field}' must be a reference path string{nullable}, got {shown(value)}")
        return
    if allow_intrinsic and intrinsics.is_intrinsic(value):
        why = guarded(intrinsics.check_intrinsic, value)
        if why is not None:
            ctx.add(ptr, f"'{field}' must be a valid reference path or intrinsic function call: {why}")
        return
    if input_only and value.startswith("$") and value[1:2] not in ("", ".", "["):
        ctx.add(
            ptr,
            f"'{field}' must be a reference path into the state input starting with '$.' or '$[' "
            f"(the context object '$$' and variables cannot be written), got {shown(value)}",
        )
        return
    why = guarded(paths.check_reference_path, value)
    if why is not None:
        alternative = " or an intrinsic function call" if allow_intrinsic else ""
        ctx.add(ptr, f"'{field}' must be a valid reference path{alternative}: {why}")


def check_dynamic_value(ctx: Context, key: str, value: Any, ptr: str) -> None:
    """The value of a ``key.$`` field: a JSONPath or an intrinsic function call."""
    if not isinstance(value, str):
        ctx.add(
            ptr,
            f"The value for the field '{key}' must be a JSONPath or an intrinsic function call "
            f"(a string), got {shown(value)}",
        )
        return
    if intrinsics.is_intrinsic(value):
        why = guarded(intrinsics.check_intrinsic, value)
    elif value.startswith("$"):
        why = guarded(paths.check_path, value)
    else:
        why = "it starts with neither '$' nor 'States.'"
    if why is not None:
        ctx.add(
            ptr,
            f"The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function "
            f"call: {why}",
        )


# --------------------------------------------------------------------------------------------------
# Payload templates (JSONPath Parameters, ResultSelector, ItemSelector, Assign values)


def check_payload_template(ctx: Context, value: Any, ptr: str, field: str) -> None:
    """A JSONPath payload template: an object whose ``key.$`` fields hold paths or intrinsics."""
    if not isinstance(value, Mapping):
        ctx.add(ptr, f"'{field}' must be an object (a payload template), got {shown(value)}")
        return
    check_template_node(ctx, value, ptr)


def check_template_node(ctx: Context, node: Any, ptr: str) -> None:
    """Recurse through a template: check ``key.$`` values and report keys given twice."""
    if isinstance(node, Mapping):
        seen: set[str] = set()
        for key, value in node.items():
            where = child(ptr, key)
            if key.endswith(".$") and len(key) > 2:
                check_dynamic_value(ctx, key, value, where)
                plain = key[:-2]
            else:
                check_template_node(ctx, value, where)
                plain = key
            if plain in seen:
                ctx.add(where, f"The field '{plain}' is given twice (as '{plain}' and '{plain}.$')")
            seen.add(plain)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            check_template_node(ctx, item, child(ptr, i))


# --------------------------------------------------------------------------------------------------
# Variables (Assign)


def check_variable_name(ctx: Context, name: str, ptr: str) -> None:
    """A workflow variable name: an identifier (letters, digits, ``_``; not starting with a digit)."""
    if name == "states":
        ctx.add(ptr, "'states' is a reserved variable name ($states is set by Step Functions)")
    elif not name.isidentifier():
        ctx.add(
            ptr,
            f"{shown(name)} is not a valid variable name: use letters, digits and '_', "
            "not starting with a digit",
        )


def check_assign(ctx: Context, value: Any, ptr: str, language: str) -> None:
    """``Assign``: an object of variable names; in JSONPath ``name.$`` fields take paths."""
    if not isinstance(value, Mapping):
        ctx.add(ptr, f"'Assign' must be an object mapping variable names to values, got {shown(value)}")
        return
    for key, item in value.items():
        where = child(ptr, key)
        if language == JSONPATH and key.endswith(".$"):
            check_variable_name(ctx, key[:-2], where)
            check_dynamic_value(ctx, key, item, where)
        else:
            check_variable_name(ctx, key, where)
            if language == JSONPATH:
                check_template_node(ctx, item, where)
    if language == JSONPATH:
        plain = [key[:-2] if key.endswith(".$") else key for key in value]
        for name in sorted({n for n in plain if plain.count(n) > 1}):
            ctx.add(ptr, f"The variable '{name}' is assigned twice (as '{name}' and '{name}.$')")


# --------------------------------------------------------------------------------------------------
# JSONata


@lru_cache(maxsize=4096)
def jsonata_syntax_error(body: str) -> str | None:
    """None when ``body`` parses as JSONata, else the parser's message."""
    try:
        jsonata.Jsonata(body)
    except Exception as exc:  # JException for syntax errors; anything else is as fatal for the text
        return str(exc) or type(exc).__name__
    return None


def check_jsonata_strings(ctx: Context, value: Any, ptr: str) -> None:
    """Parse every ``{% ... %}`` string found in ``value`` (recursively)."""
    if isinstance(value, str):
        if is_expression(value):
            why = jsonata_syntax_error(value[2:-2].strip())
            if why is not None:
                ctx.add(ptr, f"Invalid JSONata expression {shown(value)}: {why}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_jsonata_strings(ctx, item, child(ptr, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_jsonata_strings(ctx, item, child(ptr, i))


def check_template_or_expression(ctx: Context, value: Any, ptr: str, field: str) -> None:
    """JSONata ``Arguments``/``ItemSelector``: an object (values may be expressions) or an expression."""
    if not isinstance(value, Mapping) and not is_expression(value):
        ctx.add(ptr, f"'{field}' must be an object or {EXPRESSION_HINT}, got {shown(value)}")


def check_selector(ctx: Context, value: Any, ptr: str, field: str, language: str) -> None:
    """``Parameters``/``ResultSelector``/``ItemSelector`` in the state's query language."""
    if language == JSONATA:
        check_template_or_expression(ctx, value, ptr, field)
    else:
        check_payload_template(ctx, value, ptr, field)


def check_array_or_expression(ctx: Context, value: Any, ptr: str, field: str) -> None:
    """JSONata ``Items``: a JSON array (its strings may be expressions) or an expression."""
    if not isinstance(value, list) and not is_expression(value):
        ctx.add(ptr, f"'{field}' must be an array or {EXPRESSION_HINT}, got {json_type(value)}")
