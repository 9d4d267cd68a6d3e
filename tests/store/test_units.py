"""Unit tests of the small pure modules: URLs, named SQL files, the JSON codec."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("value", [{"x": float("inf")}, {"x": {1, 2}}, {"x": b"bytes"}, {(1,): 2}])
def test_codec_refuses_values_that_are_not_json(value: Any) -> None:
    with pytest.raises(InvalidAppend, match="the value is not JSON"):
        codec.encode(value, "the value")
