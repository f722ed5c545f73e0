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


def depth_of(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


def random_document(rng, budget: int):
    kind = rng.random()
    if budget <= 0 or kind < 0.3:
        return rng.choice([1, -2.5, None, True, 'x"[{', "a\\", "]}\\\"[", "é{"])
    if kind < 0.65:
        return [random_document(rng, budget - rng.randint(1, 3)) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["k", "[", "{\"", "\\"]) + str(i): random_document(rng, budget - 1)
            for i in range(rng.randint(0, 3))}


def test_the_depth_of_json_text_agrees_with_the_depth_of_what_it_parses_to():
    import json
    import random

    from experiments.limits import text_deeper_than

    rng = random.Random(7)
    for _ in range(2000):
        value = random_document(rng, rng.randint(0, 12))
        depth = depth_of(value)
        for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
            for limit in (depth - 1, depth):
                assert text_deeper_than(text.encode(), limit) == (depth > limit), (text, limit)
        utf16 = json.dumps(value).encode("utf-16")
        assert text_deeper_than(utf16, depth - 1)
        assert not text_deeper_than(utf16, depth)


def test_brackets_in_strings_and_unterminated_strings_are_not_nesting():
    from experiments.limits import text_deeper_than

    assert not text_deeper_than(b'["[[[[", "\\"[[[", "\\\\"]', 1)
    assert text_deeper_than(b'["\\\\", [[]]]', 2)
    assert not text_deeper_than(b'{"a": "[[[[[[[[', 1)  # not JSON; the parser says so
    assert text_deeper_than(b"[" * 100_000, MAX_DEPTH)
