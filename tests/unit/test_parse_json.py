"""app.http.parse_json: every JSON body the API reads (pure: no app, no database)."""

import json
import math

import pytest

from app import http
from app.errors import APIError
from experiments.errors import ValidationFailed
from experiments.limits import MAX_DEPTH


@pytest.fixture
def standard_parses(monkeypatch):
    """The texts the standard library's (recursive) parser was given."""
    seen: list[bytes] = []
    loads = json.loads

    def spy(data, *args, **kwargs):
        seen.append(data)
        return loads(data, *args, **kwargs)

    monkeypatch.setattr(http.json, "loads", spy)
    return seen


def deep(levels: int, inside: str = "1") -> bytes:
    return ("[" * levels + inside + "]" * levels).encode()


@pytest.mark.parametrize("inside", ["1", "NaN", "1,"])  # strict, lenient, not JSON
def test_a_body_too_deep_is_refused_before_the_recursive_parser_sees_it(standard_parses,
                                                                         inside):
    for levels in (MAX_DEPTH + 1, 5000, 200_000):
        with pytest.raises(ValidationFailed) as caught:
            http.parse_json(deep(levels, inside))
        assert caught.value.code == "nesting_too_deep"
    assert standard_parses == []


def test_what_only_the_standard_library_takes_is_still_taken(standard_parses):
    parsed = http.parse_json(deep(MAX_DEPTH - 1, "NaN"))
    assert len(standard_parses) == 1
    for _ in range(MAX_DEPTH - 1):
        parsed = parsed[0]
    assert math.isnan(parsed)
    assert http.parse_json('{"a": ["é"]}'.encode("utf-16")) == {"a": ["é"]}
    assert http.parse_json(deep(MAX_DEPTH)) is not None  # exactly the limit is fine


@pytest.mark.parametrize("text", [b"", b"{", b"[1,]", b"\xff\xfe\x00", b'{"a": "[[[[[[[[[[[['])
def test_what_is_not_json_is_a_400_invalid_json(text):
    with pytest.raises(APIError) as caught:
        http.parse_json(text * 1)
    assert (caught.value.status, caught.value.code) == (400, "invalid_json")


@pytest.mark.parametrize("text", [b'{"a": "x\\ud800"}', b'{"\\udfff": 1}', b'[1, ["\\ud83d"]]',
                                  b'[NaN, "\\ud800"]'])
def test_a_lone_surrogate_is_a_400_invalid_json(text):
    with pytest.raises(APIError) as caught:
        http.parse_json(text)
    assert (caught.value.status, caught.value.code) == (400, "invalid_json")
    assert "surrogate" in caught.value.message


def test_a_surrogate_pair_is_one_character():
    assert http.parse_json(b'{"a": "\\ud83d\\ude00", "\\u00e9": [NaN]}')["a"] == "\U0001F600"
