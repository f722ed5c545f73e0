"""PSI and its bins by hand and on simulated data with a known shift (or none); the
drift report's window options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.drift import options
from experiments.drift.features import feature_drift, feature_names, flatten
from experiments.drift.psi import SHARE_FLOOR, categorical_bins, numeric_bins, psi
from experiments.errors import ValidationFailed


def test_psi_by_hand():
    e, a = [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]
    expected = (0.3 - 0.2) * math.log(0.3 / 0.2) + (0.4 - 0.5) * math.log(0.4 / 0.5)
    assert psi(e, a) == pytest.approx(expected, rel=1e-12)
    assert psi(e, e) == 0.0
    assert psi(a, e) == pytest.approx(psi(e, a))  # symmetric


def test_an_empty_bin_is_floored_not_infinite():
    value = psi([1.0, 0.0], [0.5, 0.5])
    floor = SHARE_FLOOR
    assert value == pytest.approx((0.5 - 1) * math.log(0.5) + (0.5 - floor)
                                  * math.log(0.5 / floor))
    assert math.isfinite(value)


def test_numeric_bins_are_the_reference_deciles():
    reference = [float(v) for v in range(1, 101)]  # deciles 10.9, 20.8, ..., 90.1
    recent = [float(v) for v in range(1, 101)] + [None]
    bins = numeric_bins(reference, recent)
    assert [b.label for b in bins][:2] == ["(-inf, 10.9]", "(10.9, 20.8]"]
    assert bins[-2].label == "(90.1, inf)" and bins[-1].label == "(missing)"
    assert all(b.reference == pytest.approx(0.1) for b in bins[:-1])
    assert bins[-1].reference == 0.0 and bins[-1].recent == pytest.approx(1 / 101)


def test_tied_deciles_collapse_and_values_on_an_edge_fall_below_it():
    # Deciles 0 (seven times), 0.2 and 1.1 (linear interpolation, as numpy's default).
    bins = numeric_bins([0.0] * 8 + [1.0, 2.0], [0.0, 0.2, 1.0, 5.0])
    assert [b.label for b in bins] == ["(-inf, 0]", "(0, 0.2]", "(0.2, 1.1]", "(1.1, inf)"]
    assert [b.reference for b in bins] == [0.8, 0.0, 0.1, 0.1]
    assert [b.recent for b in bins] == [0.25] * 4


def test_categorical_pools_the_rarest_values():
    reference = [f"v{i:02d}" for i in range(25) for _ in range(25 - i)]
    bins = categorical_bins(reference, reference + [None])
    labels = [b.label for b in bins]
    assert labels[:20] == [f"v{i:02d}" for i in range(20)]
    assert labels[20:] == ["(other)", "(missing)"]
    other = next(b for b in bins if b.label == "(other)")
    assert other.reference == pytest.approx(sum(range(1, 6)) / len(reference))


def test_flatten_follows_the_vw_namespaces():
    assert flatten({"a": 1, "b": True, "n": None, "ns": {"x": "y", "deep": {"z": 1}},
                    "l": ["p"]}) == {"a": 1.0, "b": "true", "ns.x": "y"}
    assert flatten(["not", "a", "dict"]) == {}


def test_mixed_numbers_and_strings_are_categorical():
    drift = feature_drift("f", [{"f": 1.0}, {"f": "a"}], [{"f": 1.0}, {"f": "a"}])
    assert drift.kind == "categorical" and drift.psi == 0.0
    assert [b.label for b in drift.bins] == ["1", "a"]


def test_feature_names_keep_the_most_present():
    rows = [{"a": 1.0, "b": 1.0}, {"a": 1.0}, {"c": "x"}]
    assert feature_names(rows, [], limit=2) == (["a", "b"], True)


def _rows(rng: np.random.Generator, n: int, p: list[float], mean: float) -> list[dict]:
    cats = rng.choice(["a", "b", "c", "d"], size=n, p=p)
    nums = rng.normal(mean, 1.0, size=n)
    return [{"cat": str(c), "num": float(x)} for c, x in zip(cats, nums, strict=True)]


@pytest.mark.parametrize("seed", range(5))
def test_known_shift_simulation(seed):
    """Same distribution: PSI near 0 (its expectation is about (bins - 1) (1/n + 1/m)).
    Shifted (rates reversed, mean moved one s.d.): well above 0.25."""
    rng = np.random.default_rng(seed)
    base = [0.4, 0.3, 0.2, 0.1]
    ref = _rows(rng, 5000, base, 0.0)
    same = _rows(rng, 5000, base, 0.0)
    moved = _rows(rng, 5000, base[::-1], 1.0)
    for name in ("cat", "num"):
        assert feature_drift(name, ref, same).psi < 0.02
        assert feature_drift(name, ref, moved).psi > 0.25


def test_option_defaults_and_explicit_windows():
    o = options.parse({}, {}, 10 * options.DAY)
    assert (o.recent.since, o.recent.until) == (9 * options.DAY, 10 * options.DAY)
    assert (o.reference.since, o.reference.until) == (8 * options.DAY, 9 * options.DAY)
    assert o.threshold == 0.25 and o.alpha is None and o.sample == 10_000
    o = options.parse({"threshold": "0.1", "alpha": "0.01", "sample": "500"},
                      {"recent_since": 100.0, "recent_until": 200.0,
                       "reference_since": 0.0}, 1e9)
    assert (o.reference.since, o.reference.until) == (0.0, 100.0)
    assert (o.threshold, o.alpha, o.sample) == (0.1, 0.01, 500)
    o = options.parse({}, {"recent_since": 100.0, "recent_until": 150.0}, 1e9)
    assert (o.reference.since, o.reference.until) == (50.0, 100.0)


def test_overlapping_windows_are_refused():
    with pytest.raises(ValidationFailed) as error:
        options.parse({}, {"reference_until": 150.0, "recent_since": 100.0}, 200.0)
    assert error.value.details[0]["field"] == "reference_until"
