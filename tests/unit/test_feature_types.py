"""Declared feature kinds: text becomes words, vectors dense numeric features; undeclared
fields keep their meaning (a list of numbers is refused)."""

from __future__ import annotations

import math

import pytest
import vowpalwabbit

from bandits.features import (
    MAX_TOKENS,
    FeatureError,
    build_example,
    feature_types,
    shared_line,
    validate_context,
    words,
)

TYPES = feature_types({"profile.bio": "text", "user.embedding": "vector", "title": "text",
                       "action.description": "text", "action.meta.vec": "vector"})


def test_text_is_normalized_tokenized_and_bounded():
    assert words("Ｌｉｋｅｓ TRAIL-running, likes Hills!") == ["likes", "trail", "running",
                                                           "hills"]
    assert len(words(" ".join(f"w{i}" for i in range(1000)))) == MAX_TOKENS
    assert shared_line({"title": "Big  Shoes", "profile": {"bio": "Trail RUN"}}, TYPES) == \
        "shared |c title=big title=shoes |c_profile bio=trail bio=run"


def test_vector_becomes_dense_numeric_features():
    line = shared_line({"user": {"embedding": [0.5, 0, -1e-3, 2]}}, TYPES)
    assert line == "shared |c |c_user embedding%5B0%5D:0.5 embedding%5B2%5D:-0.001 " \
                   "embedding%5B3%5D:2"


def test_actions_use_the_same_encoder():
    example = build_example({}, [("a1", {"description": "Red Shoes",
                                         "meta": {"vec": [1.5, 2]}})], types=TYPES)
    assert example[1] == "|aid id=a1 |a description=red description=shoes " \
                         "|a_meta vec%5B0%5D:1.5 vec%5B1%5D:2"


@pytest.mark.parametrize("context, path", [
    ({"user": {"embedding": [1, "x"]}}, "context.user.embedding[1]"),
    ({"user": {"embedding": [1, math.nan]}}, "context.user.embedding[1]"),
    ({"user": {"embedding": [True]}}, "context.user.embedding[0]"),
    ({"user": {"embedding": [0.1] * 1025}}, "context.user.embedding"),
    ({"user": {"embedding": "0.1 0.2"}}, "context.user.embedding"),
    ({"title": 7}, "context.title"),
    ({"title": "x" * 10_001}, "context.title"),
    ({"user": {"other": [1.0, 2.0]}}, "context.user.other[0]"),  # undeclared: refused
])
def test_bad_typed_values_name_the_path(context, path):
    with pytest.raises(FeatureError) as caught:
        validate_context(context, TYPES)
    assert caught.value.path == path


def test_undeclared_fields_keep_their_meaning():
    context = {"title": "Big Shoes", "user": {"tags": ["a", "b"]}}
    assert shared_line(context) == "shared |c title=Big%20Shoes |c_user tags=a tags=b"


@pytest.mark.parametrize("declared, path", [
    ({"x": "image"}, "feature_types.x"),
    ({"a.b.c": "text"}, "feature_types.a.b.c"),
    ({"action.": "text"}, "feature_types.action."),
])
def test_bad_declarations(declared, path):
    with pytest.raises(FeatureError) as caught:
        feature_types(declared)
    assert caught.value.path == path


def test_vw_reads_the_encoded_vector_and_words():
    """VW itself parses what we write: the dense features and words are its features."""
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --quiet", enable_logging=False)
    lines = build_example({"user": {"embedding": [0.25, 0.5, 0, 1.0]},
                           "title": "trail running shoes"}, [("a", {}), ("b", {})],
                          types=TYPES)
    examples = workspace.parse(lines)
    features = examples[0].get_feature_number()
    workspace.finish_example(examples)
    empty = workspace.parse(build_example({}, [("a", {}), ("b", {})]))
    baseline = empty[0].get_feature_number()  # VW's constant feature
    workspace.finish_example(empty)
    workspace.finish()
    assert features - baseline == 3 + 3  # three words, three non-zero dimensions
