"""Feature encoding: the rules table, hostile input, and VW parsing exactly what we meant."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
import vowpalwabbit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandits.features import (
    ActionLines,
    FeatureError,
    action_line,
    build_example,
    escape,
    escape_key,
    shared_line,
    validate_context,
)


@pytest.mark.parametrize(
    ("context", "line"),
    [
        ({}, "shared |c"),
        ({"seg": "new"}, "shared |c seg=new"),
        ({"hour": 14}, "shared |c hour:14"),
        ({"price": 49.5}, "shared |c price:49.5"),
        ({"big": 3.4e38}, "shared |c big:3.4e+38"),
        ({"neg": -0.25}, "shared |c neg:-0.25"),
        ({"zero": 0}, "shared |c"),
        ({"tiny": 1e-31}, "shared |c"),
        ({"ok": True, "no": False}, "shared |c ok=true no=false"),
        ({"tags": ["a", "b", "a"]}, "shared |c tags=a tags=b"),
        ({"tags": []}, "shared |c"),
        ({"gone": None}, "shared |c"),
        ({"user": {"seg": "new", "age": 30}}, "shared |c |c_user seg=new age:30"),
        ({"user": {}}, "shared |c |c_user"),
        ({"a b": "x y"}, "shared |c a%20b=x%20y"),
        ({"k": "a|b:c\td\ne"}, "shared |c k=a%7Cb%3Ac%09d%0Ae"),
        ({"k": ""}, "shared |c k="),
        ({"": "v"}, "shared |c %=v"),
        ({"123": 1}, "shared |c %3123:1"),
        ({"a=b": "c"}, "shared |c a%3Db=c"),
        ({"k": "é"}, "shared |c k=%C3%A9"),
        ({"u s": {"x": 1}}, "shared |c |c_u%20s x:1"),
        ({"": {"x": 1}}, "shared |c |c_% x:1"),
    ],
)
def test_shared_line_rules(context: dict[str, Any], line: str) -> None:
    assert shared_line(context) == line


@pytest.mark.parametrize(
    ("context", "path"),
    [
        ({"x": float("nan")}, "context.x"),
        ({"x": float("inf")}, "context.x"),
        ({"x": -float("inf")}, "context.x"),
        ({"x": 3.5e38}, "context.x"),
        ({"x": 10**400}, "context.x"),
        ({"x": -(10**39)}, "context.x"),
        ({"user": {"name": {"first": "a"}}}, "context.user.name"),
        ({"user": {"tags": ["a", 1]}}, "context.user.tags[1]"),
        ({"tags": [None]}, "context.tags[0]"),
        ({"tags": [["a"]]}, "context.tags[0]"),
        ({"x": object()}, "context.x"),
        ({"x": b"bytes"}, "context.x"),
        ({1: "a"}, "context"),
        ({"user": {2: "a"}}, "context.user"),
    ],
)
def test_invalid_context_names_the_path(context: dict[Any, Any], path: str) -> None:
    with pytest.raises(FeatureError) as info:
        validate_context(context)
    assert info.value.path == path
    assert path in str(info.value)


@pytest.mark.parametrize("context", [None, [], "x", 3])
def test_context_must_be_an_object(context: Any) -> None:
    with pytest.raises(FeatureError) as info:
        validate_context(context)
    assert info.value.path == "context"


def test_action_line_has_the_id_and_features() -> None:
    assert action_line("hero-1", {}) == "|aid id=hero-1 |a"
    assert action_line("h 1", {"cat": "shoes", "dims": {"w": 2}}) == (
        "|aid id=h%201 |a cat=shoes |a_dims w:2"
    )


def test_build_example_labels_the_chosen_action_and_names_paths() -> None:
    lines = build_example({"u": "x"}, [("a", {}), ("b", {"p": 1})], (1, -1.0, 0.25))
    assert lines == ["shared |c u=x", "|aid id=a |a", "0:-1:0.25 |aid id=b |a p:1"]
    with pytest.raises(FeatureError) as info:
        build_example({}, [("a", {}), ("b", {"p": float("nan")})])
    assert info.value.path == "actions[1].features.p"
    with pytest.raises(FeatureError) as info:
        build_example({}, [("a", {}), (7, {})])  # type: ignore[list-item]
    assert info.value.path == "actions[1].id"


@pytest.mark.parametrize(
    "label", [(2, -1.0, 0.5), (-1, -1.0, 0.5), (0, -1.0, 0.0), (0, -1.0, 1.5), (0, math.nan, 0.5)]
)
def test_build_example_rejects_bad_labels(label: tuple[int, float, float]) -> None:
    with pytest.raises(ValueError):
        build_example({}, [("a", {}), ("b", {})], label)


def test_build_example_needs_actions() -> None:
    with pytest.raises(ValueError):
        build_example({}, [])


@given(st.text(), st.text())
def test_escape_is_injective_and_vw_safe(a: str, b: str) -> None:
    for text in (escape(a), escape_key(a)):
        assert text.isascii()
        assert not any(ch in text for ch in " \t\r\n|:")
    if a != b:
        assert escape(a) != escape(b)
        assert escape_key(a) != escape_key(b)
    assert "=" not in escape_key(a)
    assert not escape_key(a).isdigit()


# --- property: VW parses exactly the features we intended ---------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.floats(min_value=-1e-25, max_value=1e-25),
    st.sampled_from([1e-30, -1.2345678e-30, 9.9e-31, 1e-38, 5e-324, 3.4e38, -3.39999e38, 1 / 3,
                     7.428255371772729e-30, 9.99999999e-29, 1e-28, -1.23456789e-28]),
    st.text(),
    st.sampled_from(["", " ", "|", ":", "a b", "x:1", "|a z", "\n", "\t", "%", "=", "0"]),
)
_lists = st.lists(st.one_of(st.text(), st.text(), _scalars), max_size=4)
_keys = st.one_of(st.text(max_size=8), st.sampled_from(["", "1", "007", "a b", "|c", "x:"]))
_values = st.one_of(_scalars, _lists)
_flat = st.dictionaries(
    _keys, st.one_of(_values, st.dictionaries(_keys, _scalars, max_size=2)), max_size=4
)
_json = st.dictionaries(_keys, st.one_of(_values, _flat), max_size=5)


class _Invalid(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


def _oracle_value(key: str, value: Any, path: str) -> list[tuple[str, float]]:
    """Independent statement of the rules: (feature name, value) pairs."""
    if value is None:
        return []
    if isinstance(value, bool):
        return [(f"{escape_key(key)}={str(value).lower()}", 1.0)]
    if isinstance(value, str):
        return [(f"{escape_key(key)}={escape(value)}", 1.0)]
    if isinstance(value, int | float):
        if isinstance(value, int) and abs(value) > 10**39:
            raise _Invalid(path)
        if not math.isfinite(value) or abs(value) > 3.4e38:
            raise _Invalid(path)
        return [] if abs(value) < 1e-28 else [(escape_key(key), float(np.float32(value)))]
    if isinstance(value, list):
        names: list[tuple[str, float]] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _Invalid(f"{path}[{i}]")
            name = (f"{escape_key(key)}={escape(item)}", 1.0)
            if name not in names:
                names.append(name)
        return names
    raise _Invalid(path)


def _oracle(values: dict[str, Any], prefix: str, path: str) -> dict[str, list[tuple[str, float]]]:
    spaces: dict[str, list[tuple[str, float]]] = {prefix: []}
    for key, value in values.items():
        if isinstance(value, dict):
            name = f"{prefix}_{escape_key(key)}"
            spaces[name] = []
            for inner_key, inner in value.items():
                if isinstance(inner, dict):
                    raise _Invalid(f"{path}.{key}.{inner_key}")
                spaces[name] += _oracle_value(inner_key, inner, f"{path}.{key}.{inner_key}")
        else:
            spaces[prefix] += _oracle_value(key, value, f"{path}.{key}")
    return spaces


@functools.cache
def _workspace() -> vowpalwabbit.Workspace:
    # Not a fixture: hypothesis treats a test's first argument as "self" and would call
    # its setup_example(), which a Workspace also has.
    return vowpalwabbit.Workspace("--cb_explore_adf --quiet -b 30")


def _parsed(vw: vowpalwabbit.Workspace, example: Any, index: str) -> list[tuple[int, float]]:
    return sorted(
        (example.feature(index, i), example.feature_weight(index, i))
        for i in range(example.num_features_in(index))
    )


def _expected(
    vw: vowpalwabbit.Workspace, spaces: dict[str, list[tuple[str, float]]], index: str
) -> list[tuple[int, float]]:
    mask = (1 << 30) - 1
    return sorted(
        (vw.hash_feature(name, vw.hash_space(space)) & mask, value)
        for space, feats in spaces.items()
        if space[0] == index
        for name, value in feats
    )


CONSTANT = chr(128)  # VW's constant-feature namespace


def _indices(example: Any) -> set[str]:
    return {chr(example.namespace(i)) for i in range(example.num_namespaces())}


def _same(parsed: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    return len(parsed) == len(expected) and all(
        h1 == h2 and math.isclose(v1, v2, rel_tol=1e-5)
        for (h1, v1), (h2, v2) in zip(parsed, expected, strict=True)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=_json, features=_flat, action_id=st.text())
def test_vw_parses_exactly_the_intended_features(
    context: dict[str, Any], features: dict[str, Any], action_id: str
) -> None:
    vw = _workspace()
    try:
        expected_context = _oracle(context, "c", "context")
        expected_action = _oracle(features, "a", "actions[0].features")
        expected_action["aid"] = [(f"id={escape(action_id)}", 1.0)]
        oracle_error = None
    except _Invalid as invalid:
        oracle_error = invalid.path
    try:
        lines = build_example(context, [(action_id, features)], (0, -1.0, 0.5))
    except FeatureError as error:
        assert error.path == oracle_error
        return
    assert oracle_error is None
    assert len(lines) == 2 and not any("\n" in line or "\r" in line for line in lines)
    examples = vw.parse(lines)
    try:
        assert len(examples) == 2
        shared, action = examples
        assert _same(_parsed(vw, shared, "c"), _expected(vw, expected_context, "c"))
        assert _same(_parsed(vw, action, "a"), _expected(vw, expected_action, "a"))
        assert _indices(shared) <= {"c", CONSTANT}
        assert _indices(action) <= {"a", CONSTANT}
    finally:
        vw.finish_example(examples)


def test_action_lines_memo_equals_action_line_and_follows_identity() -> None:
    memo = ActionLines(size=2)
    features = {"category": "shoes", "price": 49.0}
    first = memo.line("hero-1", features, "f")
    assert first == action_line("hero-1", features, "f")
    assert memo.line("hero-1", features, "f") is first  # served from the memo
    # Equal content in another object, or another id, is encoded again (never confused).
    assert memo.line("hero-2", features, "f") == action_line("hero-2", features, "f")
    other = {"category": "bags"}
    assert memo.line("hero-1", other, "f") == action_line("hero-1", other, "f")
    assert memo.line("hero-1", None, "f") == action_line("hero-1", None, "f")
    assert len(memo._lines) <= 2  # bounded


@pytest.mark.parametrize("value", [7.428255371772729e-30, 9.99999999e-29, 1.23456789e-28])
def test_tiny_numbers_are_either_dropped_or_read_back_by_vw(value: float) -> None:
    """VW's parser reads `7.42825537e-30` as 0: such values must not be encoded at all."""
    vw = _workspace()
    try:
        examples = vw.parse(build_example({"x": 1}, [("a", {"f": value})]))
        encoded = [w for _h, w in _parsed(vw, examples[1], "a")]
        if value < 1e-28:
            assert encoded == [1.0]  # only the action id
        else:
            assert sorted(encoded) == pytest.approx(sorted([1.0, value]), rel=1e-6)
        vw.finish_example(examples)
    finally:
        vw.finish()
