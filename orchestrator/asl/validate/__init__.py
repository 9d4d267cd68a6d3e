"""Static validation of a state-machine definition, as AWS Step Functions validates it on creation.

Every problem is reported (not only the first), each located by a JSON Pointer into the definition
and worded to say what is wrong and, where it helps, what is allowed. Validation never raises,
whatever the input.

What is checked:

* JSON syntax (with line and column), duplicate keys, a top-level object;
* the state machine: ``StartAt`` and ``States`` required, ``Comment``, ``Version``,
  ``TimeoutSeconds`` and ``QueryLanguage`` allowed, unknown fields refused;
* each state against its type's table of fields (``_states.SPECS``): required, allowed and mutually
  exclusive fields, value types and ranges, fields of the other query language (``InputPath`` in a
  JSONata state, ``Arguments`` in a JSONPath one), state names (at most 80 characters, unique across
  the whole definition);
* transitions: ``StartAt``, ``Next``, ``Default`` and catcher ``Next`` name states of the same
  ``States`` object, every state is reachable from ``StartAt``, some state ends the machine;
* Choice rules (``orchestrator.asl.choice.check_rule``), Retry/Catch, paths and reference paths,
  intrinsic functions, JSONata expressions (parsed), ``Assign`` variable names, Wait timestamps,
  Task resources (``_resources``) and credentials, Map configuration;
* Parallel branches and Map item processors, recursively.

Express state machines additionally refuse the ``.sync`` and ``.waitForTaskToken`` patterns: pass
``machine_type="EXPRESS"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal

from orchestrator.asl.problems import Problem, child
from orchestrator.asl.validate._common import EXPRESS, STANDARD, Context
from orchestrator.asl.validate._machine import check_definition

__all__ = ["INTERNAL_ERROR", "MachineType", "validate_definition", "validate_text"]

MachineType = Literal["STANDARD", "EXPRESS"]

_TOO_DEEP: Final = "The definition is nested too deeply to be validated"
INTERNAL_ERROR: Final = "The validator failed on this definition (a bug in the validator)"


def validate_definition(definition: Any, *, machine_type: MachineType = "STANDARD") -> list[Problem]:
    """Every problem in a parsed definition, located by JSON Pointer (empty list: valid).

    ``machine_type`` is the type the state machine is created with; ``"EXPRESS"`` refuses the
    integration patterns Express workflows do not support.
    """
    ctx = Context(machine_type=EXPRESS if machine_type == EXPRESS else STANDARD)
    try:
        check_definition(ctx, definition)
    except RecursionError:
        ctx.add("", _TOO_DEEP)
    except Exception as exc:  # last resort: validation must never raise, whatever it is given
        ctx.add("", f"{INTERNAL_ERROR} ({type(exc).__name__}: {exc})")
    return ctx.problems


def validate_text(text: str, *, machine_type: MachineType = "STANDARD") -> list[Problem]:
    """Parse JSON text and validate it; a syntax error is reported with its line and column.

    Beyond strict JSON syntax (``NaN`` and ``Infinity`` are refused), a key repeated in one object is
    reported: JSON parsers would silently keep only its last value.
    """
    if not isinstance(text, str):
        return [Problem("", f"The definition must be JSON text, got {type(text).__name__}")]
    try:
        definition = json.loads(text, object_pairs_hook=_Object.from_pairs, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        return [Problem("", f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    except _ConstantError as exc:
        return [Problem("", f"Invalid JSON: {exc.constant} is not a JSON value (numbers must be finite)")]
    except RecursionError:
        return [Problem("", _TOO_DEEP)]
    except ValueError as exc:  # e.g. an integer literal longer than Python converts (4300 digits)
        return [Problem("", f"Invalid JSON: {exc}")]
    try:
        duplicates = list(_duplicate_keys(definition, ""))
    except RecursionError:
        duplicates = []
    return duplicates + validate_definition(definition, machine_type=machine_type)


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers the keys its text gave more than once."""

    __slots__ = ("duplicates",)

    duplicates: tuple[str, ...]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _Object:
        """``object_pairs_hook`` for ``json.loads``."""
        obj = cls()
        repeated: list[str] = []
        for key, value in pairs:
            if key in obj and key not in repeated:
                repeated.append(key)
            obj[key] = value
        obj.duplicates = tuple(repeated)
        return obj


class _ConstantError(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _ConstantError(constant)


def _duplicate_keys(value: Any, ptr: str) -> Iterator[Problem]:
    """Problems for repeated keys, anywhere in the parsed document."""
    if isinstance(value, Mapping):
        for key in getattr(value, "duplicates", ()):
            yield Problem(child(ptr, key), f"The field '{key}' is given more than once in the same object")
        for key, item in value.items():
            yield from _duplicate_keys(item, child(ptr, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _duplicate_keys(item, child(ptr, i))
