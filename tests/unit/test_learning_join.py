"""experiments.learning.join's decoding of the logged JSON (pure)."""

import math

from experiments.learning import join


def test_what_orjson_refuses_is_read_as_the_standard_library_wrote_it():
    assert math.isnan(join._json('{"a": NaN}')["a"])
    assert join._json('{"a": "x\\ud800"}') == {"a": "x\ud800"}
    assert join._json('{"a": [1, {"b": "\\u00e9"}]}') == {"a": [1, {"b": "é"}]}


def test_the_same_actions_text_is_one_shared_object():
    """The learner's action-line memo is keyed by object: a catalog's actions must be the
    same objects in every decision that offered them."""
    text = '[{"id": "a", "features": {"p": 1}}, {"id": "b"}]'
    first, again = join._actions(text), join._actions(str(text))
    assert first == (("a", {"p": 1}), ("b", {}))
    assert again is first and again[0][1] is first[0][1]
    assert join._actions(text.replace('"p": 1', '"p": 2'))[0][1] == {"p": 2}
