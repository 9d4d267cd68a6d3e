"""JSONata expressions (``{% ... %}``) as Step Functions evaluates them, on ``jsonata-python``.

What this module adds to the library is only the Step Functions dialect: the ``$states`` binding,
workflow variables as ``$name``, the functions AWS adds (``$partition``, ``$range``, ``$hash``,
``$random``, ``$uuid``, ``$parse``), the undefined-versus-null distinction and AWS's error causes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jsonata
from jsonata.utils import Utils

from orchestrator.errors import QUERY_EVALUATION_ERROR, StatesError

NULL = Utils.NULL_VALUE


class JsonataFailure(StatesError):
    """An expression failed or returned nothing; ``cause`` is AWS's text without the state prefix."""

    def __init__(self, cause: str, error: str = QUERY_EVALUATION_ERROR) -> None:
        super().__init__(error, cause)


def is_expression(value: Any) -> bool:
    """True for a string of the form ``{% expression %}``."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def expression_body(value: str) -> str:
    """The expression inside ``{% ... %}``."""
    return value[2:-2].strip()


@lru_cache(maxsize=2048)
def compile_expression(body: str) -> jsonata.Jsonata:
    """Parse once; raises ``jsonata.JException`` on syntax errors."""
    expr = jsonata.Jsonata(body)
    expr.set_output_convert_nulls(False)
    return expr


def to_jsonata(value: Any) -> Any:
    """Our JSON (``None`` = null) into the library's (``NULL_VALUE`` = null, ``None`` = undefined)."""
    if value is None:
        return NULL
    if isinstance(value, dict):
        return {k: to_jsonata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonata(v) for v in value]
    return value


def from_jsonata(value: Any) -> Any:
    """The library's result back into plain JSON values; floats that are whole become ints."""
    if value is NULL:
        return None
    if isinstance(value, dict):
        return {k: from_jsonata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonata(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


class Evaluator:
    """Evaluates expressions with one set of bindings (``$states`` and the variables)."""

    def __init__(
        self,
        states: Mapping[str, Any],
        variables: Mapping[str, Any],
        rng: random.Random,
        new_uuid: Callable[[], str],
    ) -> None:
        self._bindings: dict[str, Any] = {name: to_jsonata(v) for name, v in variables.items()}
        self._bindings["states"] = to_jsonata(dict(states))
        self._rng = rng
        self._new_uuid = new_uuid

    def evaluate(self, text: str, field: str) -> Any:
        """Evaluate ``{% expr %}`` for ``field`` (named in error causes, e.g. ``Output/result``)."""
        body = expression_body(text)
        try:
            expr = compile_expression(body)
        except Exception as exc:
            raise JsonataFailure(
                f"The JSONata expression '{body}' specified for the field '{field}' is invalid: {exc}"
            ) from None
        self._register(expr)
        try:
            result = expr.evaluate(None, self._bindings)
        except JsonataFailure:
            raise
        except Exception as exc:
            code = getattr(exc, "error", None)
            detail = f"{code}: {exc}" if isinstance(code, str) else str(exc)
            raise JsonataFailure(
                f"The JSONata expression '{body}' specified for the field '{field}' threw an error during "
                f"evaluation. {detail}"
            ) from None
        if result is None:
            raise JsonataFailure(
                f"The JSONata expression '{body}' specified for the field '{field}' returned nothing "
                "(undefined)."
            )
        if result is not NULL and not isinstance(result, dict | list | str | int | float | bool):
            raise JsonataFailure(
                f"The JSONata expression '{body}' specified for the field '{field}' returned an "
                "unsupported result type."
            )
        value = from_jsonata(result)
        if isinstance(value, float) and not math.isfinite(value):
            raise JsonataFailure(
                f"The JSONata expression '{body}' specified for the field '{field}' returned a non-finite "
                "number."
            )
        return value

    def template(self, value: Any, field: str) -> Any:
        """Evaluate every ``{% %}`` string inside a JSON template (objects and arrays recursively)."""
        if isinstance(value, str):
            return self.evaluate(value, field) if is_expression(value) else value
        if isinstance(value, dict):
            return {k: self.template(v, f"{field}/{k}" if field else k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.template(v, f"{field}[{i}]") for i, v in enumerate(value)]
        return value

    def _register(self, expr: jsonata.Jsonata) -> None:
        rng, new_uuid = self._rng, self._new_uuid
        expr.register_lambda("partition", _partition)
        expr.register_lambda("range", _range)
        expr.register_lambda("hash", _hash)
        expr.register_lambda("random", lambda seed=None: _random(rng, seed))
        expr.register_lambda("uuid", new_uuid)
        expr.register_lambda("parse", _parse)


def _partition(array: Any, size: Any) -> Any:
    items = from_jsonata(array)
    if not isinstance(items, list):
        items = [items]
    n = _int_arg(size, "$partition")
    if n <= 0:
        raise JsonataFailure("The $partition function requires a positive chunk size.")
    return [items[i : i + n] for i in range(0, len(items), n)]


def _range(start: Any, end: Any, step: Any) -> Any:
    a, b, s = _int_arg(start, "$range"), _int_arg(end, "$range"), _int_arg(step, "$range")
    if s == 0:
        raise JsonataFailure("The $range function requires a non-zero step.")
    out = list(range(a, b + (1 if s > 0 else -1), s))
    if len(out) > 1000:
        raise JsonataFailure("The $range function would produce more than 1000 items.")
    return out[0] if len(out) == 1 else out  # a one-item sequence is its item, as in JSONata


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(data: Any, algorithm: Any) -> Any:
    name = _HASHES.get(algorithm) if isinstance(algorithm, str) else None
    if name is None:
        raise JsonataFailure(
            f"The hash algorithm {algorithm!r} is not supported: use one of {sorted(_HASHES)}."
        )
    if not isinstance(data, str):
        raise JsonataFailure("The $hash function requires a string to hash.")
    return hashlib.new(name, data.encode()).hexdigest()


def _random(rng: random.Random, seed: Any = None) -> float:
    if seed is None:
        return rng.random()
    return random.Random(from_jsonata(seed)).random()  # noqa: S311 - deterministic by design


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise JsonataFailure("The $parse function requires a string.")
    try:
        return to_jsonata(json.loads(text))
    except json.JSONDecodeError as exc:
        raise JsonataFailure(f"The $parse function could not parse its argument as JSON: {exc}") from None


def _int_arg(value: Any, function: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
        raise JsonataFailure(f"The {function} function requires integer arguments, got {value!r}.")
    return int(value)
