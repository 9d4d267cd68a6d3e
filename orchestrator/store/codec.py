"""JSON in and out of the database, and the payload size limit.

Payloads are stored as compact JSON (no spaces, UTF-8 kept as is, no NaN/Infinity, which
PostgreSQL's ``json`` rejects).

Encoding is ``orjson``'s (3.5x faster than the standard library's for a typical event payload),
with the standard library's C encoder (called directly: its Python wrapper costs as much as
encoding a small payload) deciding whenever orjson might not write what it writes. orjson hands
datetimes, dataclasses and subclasses of built-in types back (the exact path refuses the first
two and encodes the last as their base type) and refuses sets, Decimals, bytes, integers beyond
64 bits and nesting deeper than 254, so those go to the exact path too; so does any output holding
``null`` (orjson writes NaN and infinities as ``null`` where the standard library refuses them).
Everything else comes out as the same document (a float may be spelt otherwise, ``1e-7`` for
``1e-07``: the same value); orjson also accepts UUIDs and plain enumerations, as their JSON forms.

Decoding is ``msgspec``'s (replaying a stream decodes two documents per event: 2-3x faster than
the standard library's scanner, with the same values: integers of any size, correctly rounded
floats, the last of duplicate keys; orjson turns big integers into floats); a document it refuses
is decoded again by the standard library, which gives its usual error, or its value for the JSON
it accepts beyond the standard (``NaN``, lone surrogates).
"""

from __future__ import annotations

import gc
import json
from _json import encode_basestring, make_encoder, make_scanner
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import msgspec
import orjson

from orchestrator.store.errors import InvalidAppend, PayloadTooLarge

#: Default limit of an event's encoded ``data`` plus ``metadata`` (and of a work item's payload):
#: 256 KiB, as Step Functions limits its payloads.
DEFAULT_PAYLOAD_LIMIT = 256 * 1024


def _unsupported(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# The C encoder and scanner behind json.dumps/json.loads, called directly: their Python wrappers
# cost as much as encoding or scanning a typical event payload. Circular structures end in a
# RecursionError instead of a ValueError (both are reported as not JSON).
_encode_chunks = make_encoder(None, _unsupported, encode_basestring, None, ":", ",", False, False, False)
_scan = make_scanner(cast(Any, json.JSONDecoder()))  # typeshed types the context oddly
_decode_fast = msgspec.json.Decoder().decode
_DecodeError = msgspec.DecodeError


#: What encoding raises for a value that is not JSON.
NOT_JSON = (TypeError, ValueError, RecursionError)

_fast = orjson.dumps
_FAST_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _hand_back(value: object) -> object:
    """orjson's ``default``: whatever it hands back is for the exact path to encode or refuse."""
    raise TypeError


def dumps(value: Any) -> str:
    """Encode ``value`` as compact JSON (UTF-8 kept, no NaN/Infinity); raises one of ``NOT_JSON``."""
    try:
        encoded = _fast(value, default=_hand_back, option=_FAST_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included
        return "".join(_encode_chunks(value, 0))
    if b"null" in encoded:  # maybe a NaN or an infinity
        return "".join(_encode_chunks(value, 0))
    return encoded.decode()


def encode(value: Any, what: str) -> str:
    """Like :func:`dumps`, raising :class:`InvalidAppend` naming ``what`` for a value that is not JSON."""
    try:
        return dumps(value)
    except NOT_JSON as error:
        raise InvalidAppend(f"{what} is not JSON: {error}") from None


def decode(text: str) -> Any:
    """Decode one JSON document (as :func:`json.loads` does)."""
    try:
        return _decode_fast(text)
    except _DecodeError:
        return _decode_strict(text)


def _decode_strict(text: str) -> Any:
    """The standard library's decoding of ``text``."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # not a document: let json raise its usual error
    if end != len(text):
        return json.loads(text)  # surrounding whitespace or trailing data: the slow, strict path
    return value


def encoded_size(text: str) -> int:
    """Size in bytes of ``text`` encoded as UTF-8."""
    return len(text) if text.isascii() else len(text.encode())


def check_size(size: int, limit: int, what: str) -> None:
    """Raise :class:`PayloadTooLarge` when ``size`` exceeds ``limit``."""
    if size > limit:
        raise PayloadTooLarge(what, size, limit)


@contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while a block builds many long-lived objects.

    Decoding a long stream allocates hundreds of thousands of containers that all survive; every
    700 allocations the collector would traverse the young ones, and full collections the whole
    heap, for nothing: nearly half the time of a 25,000-event replay. Reference counting still frees
    everything as usual meanwhile. Only the thread that paused the collector resumes it (if another
    one paused it too, collection resumes when the first is done: harmless).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
