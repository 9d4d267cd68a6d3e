"""Names of JSON types, as Step Functions' messages spell them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_type(value: Any, *, integers: bool = False) -> str:
    """``null``, ``boolean``, ``number``, ``string``, ``array`` or ``object``.

    With ``integers`` an ``int`` is called ``integer`` (for messages about fields that need one).
    Anything that is not JSON (a JSONata function, say) is named by its Python type.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if integers else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
