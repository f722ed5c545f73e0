"""Size and depth limits of client input (pure)."""

import pytest

from experiments.errors import TooLarge, ValidationFailed
from experiments.limits import MAX_DEPTH, ContextLimits, check_context, check_depth


def nested(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_depth_limit_is_exact_and_iterative():
    check_depth(nested(MAX_DEPTH))
    with pytest.raises(ValidationFailed) as caught:
        check_depth(nested(MAX_DEPTH + 1))
    assert caught.value.code == "nesting_too_deep"
    with pytest.raises(ValidationFailed):
        check_depth(nested(100_000))  # no recursion, so no RecursionError


LIMITS = ContextLimits(namespace_features=3, features=5, string_length=4)


@pytest.mark.parametrize("context", [
    {"b": "abcd", "c": ["x", "y"]},  # a list counts per item: 3 features
    {"a": 1, "u": {"b": 1, "c": 2, "d": 3}, "v": {"e": 1}},
])
def test_within_limits(context):
    check_context(context, "context", LIMITS)


@pytest.mark.parametrize("context, field", [
    ({"a": 1, "b": 2, "c": 3, "d": 4}, "context"),
    ({"u": {"a": 1, "b": 2, "c": 3, "d": 4}}, "context.u"),
    ({"u": {"a": 1, "b": 2}, "v": {"c": 1, "d": 2}, "w": {"e": 1, "f": 2}}, "context"),
    ({"a": "abcde"}, "context.a"),
    ({"a": ["ok", "abcde"]}, "context.a[1]"),
    ({"abcde": 1}, "context.abcde"),
    ({"u": {"abcde": 1}}, "context.u.abcde"),
])
def test_over_limits_name_the_path(context, field):
    with pytest.raises(TooLarge) as caught:
        check_context(context, "context", LIMITS)
    assert caught.value.details[0]["field"] == field


def test_catalog_actions_are_bounded_at_registration():
    from experiments.validation import validate_new

    with pytest.raises(TooLarge) as caught:
        validate_new({"key": "k", "actions": [{"id": "a", "features": {"d": "x" * 5000}}]})
    assert caught.value.details[0]["field"] == "actions[0].features.d"
