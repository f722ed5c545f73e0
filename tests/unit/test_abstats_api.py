"""Public API: exports, segments, warnings, dispatch and the runnable docstring examples."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import experiments.abstats as abstats
from experiments.abstats import (
    Comparison,
    Interval,
    MeanStats,
    Reason,
    compare,
    compare_means,
    compare_proportions,
    compare_segments,
    holm,
    sample_size_warnings,
)

MODULES = sorted(m.name for m in pkgutil.iter_modules(abstats.__path__))


@pytest.mark.parametrize("name", ["", *MODULES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module("experiments.abstats" + (f".{name}" if name else ""))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_all_exports_exist() -> None:
    assert all(hasattr(abstats, name) for name in abstats.__all__)


def test_compare_dispatches_on_metric_type() -> None:
    c, t = MeanStats(400, 40.0, 40.0), MeanStats(400, 60.0, 60.0)
    assert compare(c, t, binary=True) == compare_proportions(c, t)
    assert compare(c, t) == compare_means(c, t)


def test_segments_match_direct_comparisons_and_keep_order() -> None:
    rng = np.random.default_rng(21)
    control = {seg: MeanStats.from_values(rng.normal(1.0, 1.0, 200)) for seg in ("us", "de")}
    treatment = {seg: MeanStats.from_values(rng.normal(1.2, 1.0, 200)) for seg in ("de", "fr")}
    out = compare_segments(control, treatment, alpha=0.1)
    assert list(out) == ["us", "de", "fr"]
    assert out["de"] == compare_means(control["de"], treatment["de"], alpha=0.1)
    assert out["us"].reason is Reason.EMPTY and out["fr"].reason is Reason.EMPTY
    adjusted = holm([c.p_value for c in out.values()], alpha=0.1)
    assert adjusted.p_adjusted[0] is None and adjusted.p_adjusted[1] == out["de"].p_value


def test_comparison_fields_cover_the_report_shape() -> None:
    r = compare_means(MeanStats(100, 50.0, 40.0), MeanStats(100, 60.0, 50.0))
    assert isinstance(r, Comparison) and isinstance(r.ci, Interval)
    report = {
        "diff": r.diff,
        "lift": r.lift,
        "ci_low": r.ci.lower,
        "ci_high": r.ci.upper,
        "p_value": r.p_value,
        "p_value_sequential": r.p_value_sequential,
        "significant": r.significant,
        "method": r.method,
    }
    assert report["method"] == "welch" and report["ci_low"] < report["diff"] < report["ci_high"]
    assert r.reason is None and str(Reason.EMPTY) == "empty"


def test_sample_size_warnings() -> None:
    arms = {
        "champion": MeanStats(5000, 500.0, 500.0),
        "bandit": MeanStats(80, 5.0, 5.0),
        "new": MeanStats.empty(),
    }
    codes = [(w.code, w.message.split("'")[1]) for w in sample_size_warnings(arms, binary=True)]
    assert codes == [("small_sample", "bandit"), ("few_events", "bandit"), ("empty_arm", "new")]
    assert sample_size_warnings({"a": MeanStats(5000, 1.0, 1.0)}) == []
