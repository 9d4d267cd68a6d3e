"""Unit tests of the small pure modules: URLs, named SQL files, the JSON codec."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import json
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.store import InvalidAppend, codec, sqlfile, urls


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://app:s3cret@db:5432/orch", "postgresql://app:***@db:5432/orch"),
        ("postgresql+psycopg://app:p%40ss:w@db/orch", "postgresql+psycopg://app:***@db/orch"),
        ("not a url with user:pw@host", "not a url with user:pw@host"),
        ("weird://u:pw@h", "weird://u:***@h"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
    ],
)
def test_redact_hides_passwords(url: str, redacted: str) -> None:
    assert urls.redact(url) == redacted


@pytest.mark.parametrize(
    ("url", "backend", "driver", "path"),
    [
        ("sqlite:///orchestrator.db", "sqlite", "sqlite+pysqlite", "orchestrator.db"),
        ("sqlite:////abs/o.db", "sqlite", "sqlite+pysqlite", "/abs/o.db"),
        ("sqlite://", "sqlite", "sqlite+pysqlite", None),
        ("sqlite:///:memory:", "sqlite", "sqlite+pysqlite", None),
        ("postgresql://u@h/db", "postgresql", "postgresql+psycopg", None),
        ("postgres://u@h/db", "postgresql", "postgresql+psycopg", None),
        ("postgresql+psycopg://u:pw@h:5433/db", "postgresql", "postgresql+psycopg", None),
    ],
)
def test_urls_select_the_backend_and_driver(url: str, backend: str, driver: str, path: str | None) -> None:
    parsed = urls.parse(url)
    assert (parsed.backend, parsed.url.drivername, parsed.sqlite_path) == (backend, driver, path)
    assert "pw" not in parsed.redacted


def test_sql_files_are_named_statements() -> None:
    text = """
-- A file comment.

-- name: first
-- What it does.
SELECT 1;

-- name: second:part
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$
    SELECT 2; -- inner statements stay
$$;
"""
    assert sqlfile.parse(text) == {
        "first": "SELECT 1",
        "second:part": (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n    SELECT 2; -- inner statements stay\n$$"
        ),
    }
    with pytest.raises(ValueError, match="twice"):
        sqlfile.parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(ValueError, match="empty"):
        sqlfile.parse("-- name: a\n-- only a comment\n")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_codec_round_trips_like_json(value: Any) -> None:
    text = codec.encode(value, "value")
    assert codec.decode(text) == json.loads(text) == json.loads(json.dumps(value))
    assert codec.encoded_size(text) == len(text.encode())


@pytest.mark.parametrize("text", ["", "{", '{"a":1} trailing', "nan", "[1,]"])
def test_codec_rejects_what_json_rejects(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        codec.decode(text)


def test_codec_accepts_what_json_accepts_around_documents() -> None:
    assert codec.decode(' {"a": [1, 2]} \n') == {"a": [1, 2]}


@dataclasses.dataclass
class Point:
    x: int


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"x": float("inf")},
        {"x": [None, float("nan")]},  # orjson would write null for the NaN
        {"x": {1, 2}},
        {"x": frozenset()},
        {"x": b"bytes"},
        {(1,): 2},
        {"at": datetime(2030, 1, 1, tzinfo=UTC)},
        {"on": date(2030, 1, 1)},
        {"amount": decimal.Decimal("1.5")},
        {"point": Point(1)},
    ],
)
def test_codec_refuses_values_that_are_not_json(value: Any) -> None:
    with pytest.raises(InvalidAppend, match="the value is not JSON"):
        codec.encode(value, "the value")


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**70, "negative": -(2**64)},  # beyond orjson's 64 bits
        {"a": None, "b": [None, 1.5]},
        {"colour": Colour.RED, "name": Name("ada"), "ordered": OrderedDict(b=1, a=2)},
        {1: "integer keys", "x": 2},
        {"nested": deep(300)},  # deeper than orjson goes
        {"text": 'é \u2028 " \\ \n', "float": 1e-07, "tuple": (1, 2)},
    ],
)
def test_codec_encodes_as_the_standard_library_does(value: Any) -> None:
    text = codec.dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    if "float" not in value:  # floats may be spelt otherwise (1e-7): the same value
        assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_codec_stores_uuids_as_their_text() -> None:
    an_id = uuid.uuid4()
    assert json.loads(codec.dumps({"id": an_id})) == {"id": str(an_id)}
