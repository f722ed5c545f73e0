"""The fast canonical JSON must equal the standard library's, byte for byte (stored
request fingerprints were made with it)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.fingerprint import canonical

SCALARS = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20)


@settings(max_examples=2000)
@given(VALUES)
def test_canonical_is_the_standard_librarys(value) -> None:
    assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_the_hard_cases() -> None:
    for value in (1e16, 1e-7, 1.5e-7, 1e-5, 1e-10, 1.00001, 5e-324, 1e308, -0.0,
                  "\x1f\x7f", 2**70, "é", "\u2028", {"b": 1, "a": [1.5, "x"]}):
        assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))
