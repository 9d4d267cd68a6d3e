"""Intrinsic functions of the JSONPath query language (``States.Format(...)`` and friends).

An intrinsic call is the value of a ``.$`` field that starts with ``States.``::

    States.Format('Hello {}, you are {}', $.name, States.MathAdd($.age, 1))

Arguments are single-quoted string literals (escapes ``\\'``, ``\\{``, ``\\}``, ``\\\\``; any other
backslash is an error), numbers, ``true``/``false``/``null``, nested calls, and paths: ``$...`` (the
state input), ``$$...`` (the context object) and ``$name...`` (a variable).

The parser is a small hand-written recursive descent over that grammar. The grammar is tiny and
specific to AWS (its string escapes and ``{}`` placeholders exist nowhere else), no maintained library
implements it, and a hand-written parser gives exact positions in error messages and lets us refuse
exactly what AWS refuses (an illegal escape such as ``\\"`` makes AWS reject the whole definition).
Parsed calls are cached because the same expression is evaluated for every item of a Map.

Everything that can go wrong while evaluating becomes ``StatesError("States.IntrinsicFailure", cause)``;
a path that selects nothing raises ``PathNotFound`` from the caller's ``resolve`` unchanged. The module
is pure: randomness comes from the injected ``rng`` (or ``random.Random(seed)`` for a seeded
``States.MathRandom``), UUIDs from ``new_uuid``; no I/O, no clock.

Behaviour pinned by answers recorded from AWS (``conformance/intrinsic_functions``):

* ``States.Format`` renders strings as they are, ``null`` as ``null``, and objects and arrays the way
  Java prints a map or a list: ``{Arg1=1, Arg2=[]}``.
* ``States.StringToJson`` of an empty or blank string is ``null``.
* ``States.JsonToString`` writes compact JSON (``{"Arg1":1,"Arg2":[]}``).
* ``States.MathAdd`` rounds each argument half up (towards +infinity) before adding: ``-2.5 -> -2``.
* ``States.StringSplit`` splits on every character of the delimiter and drops empty pieces.
* ``States.ArrayRange`` includes the end value when the step lands on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, NoReturn

from orchestrator.asl.jsontypes import json_type
from orchestrator.asl.paths import check_path
from orchestrator.errors import INTRINSIC_FAILURE, StatesError

__all__ = [
    "Call",
    "IntrinsicSyntaxError",
    "Literal",
    "PathArg",
    "check_intrinsic",
    "evaluate_intrinsic",
    "is_intrinsic",
    "parse_intrinsic",
]

# Limits from the AWS documentation of the intrinsic functions.
MAX_ENCODE_INPUT = 10_000  # characters accepted by Base64Encode, Base64Decode and Hash
MAX_RANGE_ITEMS = 1_000  # items States.ArrayRange may produce
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # range of States.MathAdd arguments
HASH_ALGORITHMS: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
# Guards the recursive descent against hostile input (AWS itself allows ten nested calls).
_MAX_NESTING = 64


# ----------------------------------------------------------------------------------------- syntax
class IntrinsicSyntaxError(ValueError):
    """Text that is not a well-formed intrinsic function call."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal argument. For a string, ``segments`` is the text between its ``{}`` placeholders
    (escaped braces ``\\{\\}`` are not placeholders), as ``States.Format`` needs it."""

    value: str | int | float | bool | None
    segments: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PathArg:
    """A path argument, kept as written (``$.a``, ``$$.Execution.Id``, ``$var.x``)."""

    path: str


@dataclass(frozen=True, slots=True)
class Call:
    """A call ``States.Name(arg, ...)``."""

    name: str
    args: tuple[Literal | PathArg | Call, ...]


Node = Literal | PathArg | Call

_FUNCTION_NAME = re.compile(r"States\.[A-Za-z0-9_]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_KEYWORD = re.compile(r"(true|false|null)(?![A-Za-z0-9_$.])")
_ESCAPABLE = "'{}\\"
_WHITESPACE = " \t\n\r"


class _Parser:
    """Recursive descent over one call; ``parse`` consumes the whole text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(f"{message} (at character {self.pos + 1})")

    def skip_whitespace(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    def parse(self) -> Call:
        call = self.call(1)
        self.skip_whitespace()
        if self.pos != len(self.text):
            raise self.error("unexpected text after the closing parenthesis")
        return call

    def call(self, depth: int) -> Call:
        if depth > _MAX_NESTING:
            raise self.error("intrinsic functions are nested too deeply")
        match = _FUNCTION_NAME.match(self.text, self.pos)
        if match is None:
            raise self.error("expected a function name such as States.Format")
        self.pos = match.end()
        if self.text[self.pos : self.pos + 1] != "(":
            raise self.error(f"expected '(' after {match.group(0)}")
        self.pos += 1
        args: list[Node] = []
        self.skip_whitespace()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
            return Call(match.group(0), ())
        while True:
            self.skip_whitespace()
            args.append(self.argument(depth))
            self.skip_whitespace()
            c = self.text[self.pos : self.pos + 1]
            self.pos += 1
            if c == ")":
                return Call(match.group(0), tuple(args))
            if c != ",":
                self.pos -= 1
                raise self.error("expected ',' or ')'" if c else "missing ')'")

    def argument(self, depth: int) -> Node:
        text, pos = self.text, self.pos
        c = text[pos : pos + 1]
        if c == "'":
            return self.string()
        if c == "$":
            return self.path()
        if text.startswith("States.", pos):
            return self.call(depth + 1)
        match = _NUMBER.match(text, pos)
        if match is not None:
            self.pos = match.end()
            if match.group(1) is None and match.group(2) is None:
                return Literal(int(match.group(0)))
            number = float(match.group(0))
            if not math.isfinite(number):
                raise self.error(f"number {match.group(0)} is out of range")
            return Literal(number)
        match = _KEYWORD.match(text, pos)
        if match is not None:
            self.pos = match.end()
            return Literal({"true": True, "false": False, "null": None}[match.group(1)])
        if not c:
            raise self.error("expected an argument")
        raise self.error(
            f"unexpected {c!r}: expected a 'string', a number, true, false, null, a path or a call"
        )

    def string(self) -> Literal:
        text = self.text
        self.pos += 1  # opening quote
        segments: list[str] = []
        chunk: list[str] = []
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated string literal")
            c = text[self.pos]
            if c == "'":
                self.pos += 1
                segments.append("".join(chunk))
                return Literal("{}".join(segments), tuple(segments))
            if c == "\\":
                escaped = text[self.pos + 1 : self.pos + 2]
                if not escaped or escaped not in _ESCAPABLE:
                    raise self.error(
                        f"illegal escape sequence '\\{escaped}' in a string literal; only \\', \\{{, \\}} "
                        "and \\\\ are allowed"
                    )
                chunk.append(escaped)
                self.pos += 2
            elif c == "{" and text[self.pos + 1 : self.pos + 2] == "}":
                segments.append("".join(chunk))
                chunk = []
                self.pos += 2
            else:
                chunk.append(c)
                self.pos += 1

    def path(self) -> PathArg:
        text, start = self.text, self.pos
        depth = 0
        quote = ""
        while self.pos < len(text):
            c = text[self.pos]
            if quote:
                if c == quote:
                    quote = ""
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth < 0:
                    raise self.error("unbalanced ']' in a path")
            elif depth and c in "'\"":
                quote = c
            elif not depth and (c in ",)" or c in _WHITESPACE):
                break
            self.pos += 1
        if depth or quote:
            raise self.error("unterminated '[' in a path")
        path = text[start : self.pos]
        if check_path(path) is not None:
            self.pos = start
            raise self.error(f"invalid path {path!r}")
        return PathArg(path)


@lru_cache(maxsize=4096)
def parse_intrinsic(text: str) -> Call:
    """Parse an intrinsic call into its syntax tree; raises ``IntrinsicSyntaxError`` if malformed.

    The result is cached (the tree is immutable): Map states evaluate one expression per item.
    """
    return _Parser(text).parse()


def is_intrinsic(text: str) -> bool:
    """True when ``text`` is an intrinsic-function call (``States.Xxx(...)``)."""
    return text.startswith("States.")


# ------------------------------------------------------------------------------- value helpers
def _type_name(value: Any) -> str:
    """``a number``, ``an array``, ``null``...: a value's JSON type for messages."""
    name = json_type(value)
    if name == "null" or not name.isalpha() or not name.islower():
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def _canonical(value: Any) -> Any:
    """A hashable key equal for JSON-equal values (key order ignored, ``1 == 1.0``, ``true != 1``)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            return ("number", int(value))
        return ("number", value)
    if isinstance(value, list):
        return ("array", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


def _java_double(number: float) -> str:
    """Render a float as Java's ``Double.toString`` does (AWS runs on the JVM): ``1.0``, ``1.0E20``."""
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    exact = Decimal(repr(abs(number))).normalize()
    if 1e-3 <= abs(number) < 1e7:
        text = format(exact, "f")
        return sign + (text if "." in text else text + ".0")
    _, digits, exponent = exact.as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    return f"{sign}{mantissa[0]}.{mantissa[1:] or '0'}E{len(mantissa) + exponent - 1}"


def _number_text(number: int | float) -> str:
    return _java_double(number) if isinstance(number, float) else str(number)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _JSON_ESCAPES.get(char, f"\\u{ord(char):04X}")


def _json_string(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _to_json(value: Any) -> str:
    """Compact JSON as Jackson writes it: no spaces, non-ASCII kept, Java number forms."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(str(k))}:{_to_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _format_text(value: Any) -> str:
    """How ``States.Format`` renders a value: strings bare, containers as Java maps and lists."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_format_text(v)}" for k, v in value.items()) + "}"
    return _to_json(value)


def _round_half_up(number: int | float) -> int:
    """Round to the nearest integer, halves towards +infinity (Java's ``Math.round``)."""
    if isinstance(number, int):
        return number
    floor = math.floor(number)
    return floor + 1 if number - floor >= 0.5 else floor


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text} is out of range")
    return number


# ------------------------------------------------------------------------------------ functions
_ORDINALS = ("first", "second", "third")


class _Args:
    """The evaluated arguments of one call, with typed accessors that raise States.IntrinsicFailure."""

    def __init__(self, name: str, values: list[Any]) -> None:
        self.name = name
        self.values = values

    def fail(self, detail: str) -> NoReturn:
        raise StatesError(INTRINSIC_FAILURE, f"Invalid arguments in {self.name}: {detail}")

    def _wrong(self, index: int, expected: str) -> NoReturn:
        value = self.values[index]
        ordinal = _ORDINALS[index] if index < len(_ORDINALS) else f"#{index + 1}"
        self.fail(f"the {ordinal} argument must be {expected}, but it is {_type_name(value)}")

    def any(self, index: int) -> Any:
        return self.values[index]

    def string(self, index: int) -> str:
        value = self.values[index]
        if not isinstance(value, str):
            self._wrong(index, "a string")
        return value

    def array(self, index: int) -> list[Any]:
        value = self.values[index]
        if not isinstance(value, list):
            self._wrong(index, "an array")
        return value

    def object(self, index: int) -> dict[str, Any]:
        value = self.values[index]
        if not isinstance(value, dict):
            self._wrong(index, "a JSON object")
        return value

    def boolean(self, index: int) -> bool:
        value = self.values[index]
        if not isinstance(value, bool):
            self._wrong(index, "a boolean")
        return value

    def number(self, index: int) -> int | float:
        value = self.values[index]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self._wrong(index, "a number")
        return value

    def integer(self, index: int) -> int:
        value = self.values[index]
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(index, "an integer")
        return value

    def limited_string(self, index: int) -> str:
        text = self.string(index)
        if len(text) > MAX_ENCODE_INPUT:
            self.fail(f"the input has {len(text)} characters; at most {MAX_ENCODE_INPUT} are allowed")
        return text


@dataclass(frozen=True, slots=True)
class _Env:
    resolve: Callable[[str], Any]
    rng: random.Random
    new_uuid: Callable[[], str]


def _format(args: _Args, call: Call, env: _Env) -> str:
    template = call.args[0]
    if isinstance(template, Literal) and template.segments is not None:
        segments: list[str] | tuple[str, ...] = template.segments
    else:
        segments = args.string(0).split("{}")
    values = args.values[1:]
    if len(segments) - 1 != len(values):
        args.fail(
            f"the format string has {len(segments) - 1} placeholder(s) {{}} but {len(values)} value(s) "
            "were given"
        )
    out = [segments[0]]
    for value, segment in zip(values, segments[1:], strict=True):
        out.append(_format_text(value))
        out.append(segment)
    return "".join(out)


def _string_to_json(args: _Args, call: Call, env: _Env) -> Any:
    text = args.string(0)
    if not text.strip(_WHITESPACE):
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        args.fail(f"the string is not valid JSON ({exc})")


def _json_to_string(args: _Args, call: Call, env: _Env) -> str:
    return _to_json(args.any(0))


def _array(args: _Args, call: Call, env: _Env) -> list[Any]:
    return list(args.values)


def _array_partition(args: _Args, call: Call, env: _Env) -> list[list[Any]]:
    items = args.array(0)
    size = args.integer(1)
    if size <= 0:
        args.fail(f"the chunk size must be a positive integer, but it is {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_contains(args: _Args, call: Call, env: _Env) -> bool:
    items = args.array(0)
    wanted = _canonical(args.any(1))
    return any(_canonical(item) == wanted for item in items)


def _array_range(args: _Args, call: Call, env: _Env) -> list[int]:
    start, end, step = args.integer(0), args.integer(1), args.integer(2)
    if step == 0:
        args.fail("the step (third argument) must not be 0")
    count = max(0, (end - start) // step + 1)
    if count > MAX_RANGE_ITEMS:
        args.fail(f"the range would have {count} items; at most {MAX_RANGE_ITEMS} are allowed")
    return [start + i * step for i in range(count)]


def _array_get_item(args: _Args, call: Call, env: _Env) -> Any:
    items = args.array(0)
    index = args.integer(1)
    if index < 0:
        args.fail(f"the index must not be negative, but it is {index}")
    if index >= len(items):
        args.fail(f"the index {index} is out of bounds for an array of {len(items)} item(s)")
    return items[index]


def _array_length(args: _Args, call: Call, env: _Env) -> int:
    return len(args.array(0))


def _array_unique(args: _Args, call: Call, env: _Env) -> list[Any]:
    seen: set[Any] = set()
    unique = []
    for item in args.array(0):
        key = _canonical(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _base64_encode(args: _Args, call: Call, env: _Env) -> str:
    data = args.limited_string(0).encode("utf-8", errors="replace")
    return base64.b64encode(data).decode("ascii")


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _base64_decode(args: _Args, call: Call, env: _Env) -> str:
    text = args.limited_string(0)
    body = text.rstrip("=")
    # Like Java's Base64 decoder: padding may be omitted, but if present it must be complete.
    if _BASE64.fullmatch(text) is None or len(body) % 4 == 1 or (body != text and len(text) % 4):
        args.fail("the input is not valid Base64")
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        args.fail("the input is not valid Base64")
    return data.decode("utf-8", errors="replace")


def _hash(args: _Args, call: Call, env: _Env) -> str:
    data = args.limited_string(0)
    algorithm = args.string(1)
    hasher = HASH_ALGORITHMS.get(algorithm)
    if hasher is None:
        args.fail(f"unknown hash algorithm {algorithm!r}; use one of {', '.join(HASH_ALGORITHMS)}")
    digest: str = hasher(data.encode("utf-8", errors="replace")).hexdigest()
    return digest


def _json_merge(args: _Args, call: Call, env: _Env) -> dict[str, Any]:
    first, second = args.object(0), args.object(1)
    if args.boolean(2):
        args.fail("only shallow merging is supported; the third argument must be false")
    return {**first, **second}


def _math_random(args: _Args, call: Call, env: _Env) -> int:
    start = _round_half_up(args.number(0))
    end = _round_half_up(args.number(1))
    if end <= start:
        args.fail(f"the end ({end}) must be greater than the start ({start}); the end is exclusive")
    if len(args.values) == 3:
        return random.Random(_round_half_up(args.number(2))).randrange(start, end)  # noqa: S311
    return env.rng.randrange(start, end)


def _math_add(args: _Args, call: Call, env: _Env) -> int:
    total = 0
    for index in (0, 1):
        value = _round_half_up(args.number(index))
        if not INT32_MIN <= value <= INT32_MAX:
            args.fail(f"{value} is outside the range {INT32_MIN} to {INT32_MAX}")
        total += value
    return total


def _string_split(args: _Args, call: Call, env: _Env) -> list[str]:
    text, delimiters = args.string(0), args.string(1)
    if not delimiters:
        return [text] if text else []
    pieces = re.split("[" + re.escape(delimiters) + "]", text)
    return [piece for piece in pieces if piece]


def _uuid(args: _Args, call: Call, env: _Env) -> str:
    return env.new_uuid()


# Static argument kinds, checked against literal arguments by ``check_intrinsic``.
class _Kind(StrEnum):
    """What an argument must be; the value reads in messages ("must be an integer")."""

    ANY = "any value"
    STRING = "a string"
    ARRAY = "an array"
    OBJECT = "a JSON object"
    INTEGER = "an integer"
    NUMBER = "a number"
    BOOLEAN = "a boolean"


@dataclass(frozen=True, slots=True)
class _Spec:
    impl: Callable[[_Args, Call, _Env], Any]
    kinds: tuple[_Kind, ...]  # one per parameter
    min_args: int
    variadic: _Kind | None = None  # kind of any further arguments


_FUNCTIONS: dict[str, _Spec] = {
    "States.Format": _Spec(_format, (_Kind.STRING,), 1, variadic=_Kind.ANY),
    "States.StringToJson": _Spec(_string_to_json, (_Kind.STRING,), 1),
    "States.JsonToString": _Spec(_json_to_string, (_Kind.ANY,), 1),
    "States.Array": _Spec(_array, (), 0, variadic=_Kind.ANY),
    "States.ArrayPartition": _Spec(_array_partition, (_Kind.ARRAY, _Kind.INTEGER), 2),
    "States.ArrayContains": _Spec(_array_contains, (_Kind.ARRAY, _Kind.ANY), 2),
    "States.ArrayRange": _Spec(_array_range, (_Kind.INTEGER, _Kind.INTEGER, _Kind.INTEGER), 3),
    "States.ArrayGetItem": _Spec(_array_get_item, (_Kind.ARRAY, _Kind.INTEGER), 2),
    "States.ArrayLength": _Spec(_array_length, (_Kind.ARRAY,), 1),
    "States.ArrayUnique": _Spec(_array_unique, (_Kind.ARRAY,), 1),
    "States.Base64Encode": _Spec(_base64_encode, (_Kind.STRING,), 1),
    "States.Base64Decode": _Spec(_base64_decode, (_Kind.STRING,), 1),
    "States.Hash": _Spec(_hash, (_Kind.STRING, _Kind.STRING), 2),
    "States.JsonMerge": _Spec(_json_merge, (_Kind.OBJECT, _Kind.OBJECT, _Kind.BOOLEAN), 3),
    "States.MathRandom": _Spec(_math_random, (_Kind.NUMBER, _Kind.NUMBER, _Kind.NUMBER), 2),
    "States.MathAdd": _Spec(_math_add, (_Kind.NUMBER, _Kind.NUMBER), 2),
    "States.StringSplit": _Spec(_string_split, (_Kind.STRING, _Kind.STRING), 2),
    "States.UUID": _Spec(_uuid, (), 0),
}


def _arity_problem(call: Call, spec: _Spec) -> str | None:
    count = len(call.args)
    max_args = None if spec.variadic is not None else len(spec.kinds)
    if count >= spec.min_args and (max_args is None or count <= max_args):
        return None
    if max_args is None:
        expected = f"at least {spec.min_args}"
    elif max_args == spec.min_args:
        expected = f"exactly {spec.min_args}"
    else:
        expected = f"{spec.min_args} to {max_args}"
    return f"{call.name} takes {expected} argument(s), but {count} were given"


# ------------------------------------------------------------------------------------ evaluation
def _evaluate(node: Node, env: _Env) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, PathArg):
        return env.resolve(node.path)
    spec = _FUNCTIONS.get(node.name)
    if spec is None:
        raise StatesError(INTRINSIC_FAILURE, f"Unknown intrinsic function {node.name}")
    problem = _arity_problem(node, spec)
    if problem is not None:
        raise StatesError(INTRINSIC_FAILURE, problem)
    args = _Args(node.name, [_evaluate(arg, env) for arg in node.args])
    return spec.impl(args, node, env)


def evaluate_intrinsic(
    text: str, resolve: Callable[[str], Any], rng: random.Random, new_uuid: Callable[[], str]
) -> Any:
    """Evaluate the intrinsic call ``text`` and return its JSON value.

    Path arguments are passed, as written, to ``resolve``, which returns the value or raises
    ``PathNotFound`` (propagated unchanged). ``rng`` serves unseeded ``States.MathRandom``;
    ``new_uuid`` serves ``States.UUID``. Any other failure (bad syntax, unknown function, wrong
    argument count, type or value) raises ``StatesError("States.IntrinsicFailure", cause)``.
    """
    try:
        call = parse_intrinsic(text)
    except IntrinsicSyntaxError as exc:
        raise StatesError(INTRINSIC_FAILURE, f"Invalid intrinsic function call {text!r}: {exc}") from None
    try:
        return _evaluate(call, _Env(resolve, rng, new_uuid))
    except RecursionError:
        raise StatesError(INTRINSIC_FAILURE, f"The value is nested too deeply to evaluate {text!r}") from None


# --------------------------------------------------------------------------------- static check
def _literal_problem(name: str, index: int, kind: _Kind, literal: Literal) -> str | None:
    value = literal.value
    if kind == _Kind.ANY:
        return None
    ok = {
        _Kind.STRING: isinstance(value, str),
        _Kind.BOOLEAN: isinstance(value, bool),
        _Kind.NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
        _Kind.INTEGER: (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer()),
    }.get(kind, False)  # no literal is an array or an object
    if ok:
        return None
    shown = "null" if value is None else _to_json(value)
    return f"argument {index + 1} of {name} must be {kind}, but the literal {shown} is {_type_name(value)}"


def _value_problem(call: Call) -> str | None:
    """Checks that need the literal values themselves (types are already right)."""
    lits = [a.value if isinstance(a, Literal) else None for a in call.args]
    known = [isinstance(a, Literal) for a in call.args]
    name = call.name
    first = call.args[0] if call.args else None
    if name == "States.Format" and isinstance(first, Literal) and first.segments is not None:
        placeholders = len(first.segments) - 1
        if placeholders != len(call.args) - 1:
            return (
                f"the format string of States.Format has {placeholders} placeholder(s) {{}} but "
                f"{len(call.args) - 1} value(s) follow it"
            )
    if name == "States.Hash" and known[1] and lits[1] not in HASH_ALGORITHMS:
        return f"unknown hash algorithm {lits[1]!r} in States.Hash; use one of {', '.join(HASH_ALGORITHMS)}"
    if name == "States.JsonMerge" and known[2] and lits[2] is True:
        return "States.JsonMerge supports only shallow merging: its third argument must be false"
    if name == "States.ArrayRange" and known[2] and lits[2] == 0:
        return "the step (third argument) of States.ArrayRange must not be 0"
    if name == "States.ArrayRange" and all(known):
        start, end, step = (int(v) for v in lits)  # type: ignore[arg-type]
        if (end - start) // step + 1 > MAX_RANGE_ITEMS:
            return f"States.ArrayRange would produce more than {MAX_RANGE_ITEMS} items"
    if name == "States.ArrayPartition" and known[1] and isinstance(lits[1], int | float) and lits[1] <= 0:
        return "the chunk size of States.ArrayPartition must be a positive integer"
    if name == "States.ArrayGetItem" and known[1] and isinstance(lits[1], int | float) and lits[1] < 0:
        return "the index of States.ArrayGetItem must not be negative"
    return None


def _check(call: Call) -> str | None:
    spec = _FUNCTIONS.get(call.name)
    if spec is None:
        return f"unknown intrinsic function {call.name}"
    problem = _arity_problem(call, spec)
    if problem is not None:
        return problem
    for index, arg in enumerate(call.args):
        problem = None
        if isinstance(arg, Call):
            problem = _check(arg)
        elif isinstance(arg, Literal):
            kind = spec.kinds[index] if index < len(spec.kinds) else (spec.variadic or _Kind.ANY)
            problem = _literal_problem(call.name, index, kind, arg)
        if problem is not None:
            return problem
    return _value_problem(call)


def check_intrinsic(text: str) -> str | None:
    """None when ``text`` is a well-formed call of a known function with a valid arity, else why not.

    Also rejects literal arguments of the wrong type (``States.MathAdd('a', 1)``), unknown hash
    algorithms, a deep ``States.JsonMerge``, and a literal ``States.Format`` template whose ``{}``
    count differs from the number of values. Arguments read from paths are only checked at run time.
    """
    try:
        call = parse_intrinsic(text)
    except IntrinsicSyntaxError as exc:
        return f"invalid intrinsic function call: {exc}"
    return _check(call)
