"""JSONPath as ASL uses it: reference paths, selection, ResultPath writes (unit and property tests)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.asl import paths
from orchestrator.asl.dataflow import apply_result_path
from orchestrator.errors import StatesError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abc", min_size=1, max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
keys = st.text("abcxyz_", min_size=1, max_size=4)


def test_reference_paths_parse_into_steps() -> None:
    assert paths.reference_steps("$") == ()
    assert paths.reference_steps("$.a.b[0]['c d']") == ("a", "b", 0, "c d")
    assert paths.reference_steps("$.a[*]") is None
    assert paths.reference_steps("$..a") is None
    assert paths.bracket_notation("$.a.b[2]") == "$['a']['b'][2]"


def test_select_definite_and_indefinite() -> None:
    doc = {"a": [{"n": 1}, {"n": 2}, {"n": 3}]}
    assert paths.select("$.a[1].n", doc) == 2
    assert paths.select("$.a[-1].n", doc) == 3
    assert paths.select("$.a[*].n", doc) == [1, 2, 3]
    assert paths.select("$.a[?(@.n > 1)].n", doc) == [2, 3]
    with pytest.raises(paths.PathNotFound):
        paths.select("$.a[9]", doc)
    with pytest.raises(paths.PathNotFound):
        paths.select("$.missing", doc)


def test_roots() -> None:
    assert paths.split_root("$$.Execution.Id") == ("$$", "$.Execution.Id")
    assert paths.split_root("$var.x[0]") == ("$var", "$.x[0]")
    assert paths.split_root("$.x") == ("$", "$.x")
    assert paths.check_path("$.a[?(@.b == 1)]") is None
    assert paths.check_path("a.b") is not None
    assert paths.check_reference_path("$.a[*]") is not None


def test_result_path_semantics() -> None:
    assert apply_result_path({"a": 1}, None, 5, present=True) == {"a": 1}
    assert apply_result_path({"a": 1}, "$", 5, present=True) == 5
    assert apply_result_path({"a": 1}, "$", 5, present=False) == 5
    assert apply_result_path({"a": 1}, "$.b.c", 5, present=True) == {"a": 1, "b": {"c": 5}}
    with pytest.raises(StatesError) as info:
        apply_result_path({"a": 1}, "$.a.b", 5, present=True)
    assert info.value.error == "States.ResultPathMatchFailure"


@given(st.lists(keys, min_size=1, max_size=4), json_values, json_values)
def test_set_then_select_returns_the_value(steps: list[str], document: Any, value: Any) -> None:
    path = "$" + "".join(f"['{s}']" for s in steps)
    try:
        written = paths.set_path(path, document, value)
    except paths.PathNotFound:
        return  # a non-object stood in the way: that is the documented failure, checked below
    assert paths.select(path, written) == value


@given(st.dictionaries(keys, json_values, max_size=4), keys, json_values)
def test_set_never_mutates_its_input(document: dict[str, Any], key: str, value: Any) -> None:
    before = repr(document)
    paths.set_path(f"$.{key}", document, value)
    assert repr(document) == before


@given(json_values)
def test_dollar_selects_everything_and_set_at_dollar_replaces(document: Any) -> None:
    assert paths.select("$", document) == document
    assert paths.set_path("$", document, 7) == 7


@given(st.text(max_size=20))
def test_checks_never_raise(text: str) -> None:
    assert paths.check_path(text) is None or isinstance(paths.check_path(text), str)
    assert paths.check_reference_path(text) is None or isinstance(paths.check_reference_path(text), str)
