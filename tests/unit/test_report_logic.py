"""Pure parts of the A/B report: options, SQL expression builders, looks, metrics, CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from app.web.formatting import num, pct, pval
from app.web.login import safe_next
from experiments.abstats import MeanStats, RatioStats
from experiments.config import ExperimentConfig
from experiments.errors import ValidationFailed
from experiments.models import Decision
from experiments.reports import ReportOptions, parse_options, to_csv
from experiments.reports.ab import arm_order, control_arm, event_types
from experiments.reports.comparisons import burn_in
from experiments.reports.metrics import bucket_width, build_metrics, choose_looks
from experiments.reports.segments import action_shares
from experiments.reports.sql import Moments, json_text, validate_field
from experiments.reports.units import Cell, Increment
from experiments.validation import validate_new


@pytest.mark.parametrize("args, expected", [
    ({}, ReportOptions()),
    ({"segment": "user.country", "lift": "-0.1", "include_open": "FALSE", "top": "50"},
     ReportOptions("user.country", -0.1, False, 50)),
    ({"segment": "", "lift": "", "include_open": "1", "top": ""}, ReportOptions()),
])
def test_options(args, expected):
    assert parse_options(args) == expected


@pytest.mark.parametrize("args", [
    {"lift": "0"}, {"lift": "-1"}, {"lift": "11"}, {"lift": "nan"}, {"lift": "1e999"},
    {"lift": "five"}, {"top": "0"}, {"top": "-1"}, {"top": "2.5"}, {"include_open": "2"},
    {"segment": "a.b.c"}, {"segment": "a b"}, {"segment": "$.x"}, {"segment": '"x"'},
    {"segment": "."}, {"segment": "x" * 65},
])
def test_bad_options_name_their_field(args):
    with pytest.raises(ValidationFailed) as caught:
        parse_options(args)
    assert caught.value.details[0]["field"] == next(iter(args))


def test_fields_become_paths():
    assert validate_field("country") == ("country",)
    assert validate_field("user.country") == ("user", "country")


def compiled(expr, dialect) -> str:
    return str(expr.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_json_text_per_dialect():
    pg = compiled(json_text("postgresql", Decision.context, ("user", "country")),
                  postgresql.dialect())
    assert pg == "jsonb_extract_path_text(decisions.context, 'user', 'country')"
    lite = compiled(json_text("sqlite", Decision.context, ("user", "country")),
                    sqlite.dialect())
    assert "json_extract(decisions.context, '$.\"user\".\"country\"')" in lite
    assert "json_type" in lite and "'true'" in lite


def test_moments_add_and_recognise_binary_metrics():
    ones = Moments(MeanStats.from_values([0, 1, 1]), 0.0, 1.0)
    assert ones.binary and (ones + Moments(MeanStats.empty())).binary
    assert not (ones + Moments(MeanStats.from_values([2.0]), 2.0, 2.0)).binary
    assert not Moments(MeanStats.from_values([0.5, 0.5]), 0.5, 0.5).binary
    assert not Moments(MeanStats.empty()).binary
    total = ones + Moments(MeanStats.from_values([-1.0]), -1.0, -1.0)
    assert (total.low, total.high, total.stats.n) == (-1.0, 1.0, 4)


def test_looks_are_minutes_for_young_experiments_then_coarser():
    assert bucket_width(None, None) == (300.0, "5 minutes")
    assert bucket_width(0.0, 7 * 3600.0) == (300.0, "5 minutes")
    assert bucket_width(0.0, 20 * 3600.0) == (900.0, "15 minutes")
    assert bucket_width(0.0, 3 * 86400.0) == (3600.0, "hour")
    assert bucket_width(0.0, 10 * 86400.0) == (6 * 3600.0, "6 hours")
    assert bucket_width(0.0, 200 * 86400.0) == (86400.0, "day")
    looks = choose_looks([14, 10, 14], 86400.0, "day")
    assert looks.buckets == (10, 14) and looks.end(10) == 11 * 86400


def test_burn_in_starts_at_the_first_look_with_enough_units():
    def units(n: int) -> RatioStats:
        return RatioStats.from_units([2] * n, [1.0] * n)
    control, treatment = burn_in([units(40), units(80), units(120), units(160)],
                                 [units(40), units(120), units(130), units(130)], min_n=100)
    assert [s.n for s in control] == [120, 160] and [s.n for s in treatment] == [130, 130]
    control, _ = burn_in([units(40), units(80)], [units(40)] * 2, min_n=100)
    assert [s.n for s in control] == [80]
    assert burn_in([], []) == ([], [])


def test_increments_of_returning_units_accumulate_to_unit_statistics():
    # Unit u: 2 decisions (y=1) in bucket 0, 1 more (y=2) in bucket 1; unit v: 1 in bucket 1.
    # Bucket 1 raises u's x from 2 to 3 (x^2: +5) and y from 1 to 3 (y^2: +8, xy: +7).
    first = Increment(1, 2, 4, 1, 1, 2)
    second = Increment(1, 2, 5 + 1, 2 + 0.5, 8 + 0.25, 7 + 0.5)
    moments = Moments(MeanStats.from_values([1.0, 0.0]), 0.0, 1.0)
    cells = {("a", 0): Cell({"m0": first}, {"m0": moments}),
             ("a", 1): Cell({"m0": second}, {"m0": moments})}
    looks = choose_looks([0, 1], 3600.0, "hour")
    (metric,) = build_metrics(cells, {"reward": "m0"}, ["a", "b"], looks)
    assert metric.totals["a"] == RatioStats.from_units([3, 1], [3.0, 0.5])
    assert metric.looks["a"][0] == RatioStats.from_units([2], [1.0])
    assert metric.totals["b"] == RatioStats.empty() and metric.binary


def test_arms_control_and_event_types():
    assert arm_order({"champion": 0.5, "bandit": 0.5}, {"bandit", "fixed:x"}) == [
        "champion", "bandit", "fixed:x"]
    assert control_arm(["bandit", "champion"]) == "champion"
    assert control_arm(["bandit", "uniform"]) == "bandit"
    assert event_types(_config({"events": {"click": 1.0}})) == []
    assert event_types(_config({"events": {"click": 1.0, "buy": "value"}})) == [
        "click", "buy"]
    guarded = _config({"events": {"click": 1.0}}, {"guardrails": [
        {"metric": "event:click", "margin": 0.1}]})
    assert event_types(guarded) == ["click"]  # a guardrail names it: a metric of its own


def _config(reward: dict[str, Any], analysis: dict[str, Any] | None = None) -> ExperimentConfig:
    body = {"key": "x", "reward": reward, "learner": {"exploration": "epsilon", "params": {
        "epsilon": 0.1, "reward_range": [0, 10]}}}
    return ExperimentConfig.parse(validate_new({**body, "analysis": analysis} if analysis
                                               else body))


def test_action_shares_sum_to_one_per_arm():
    counts = {("a", "x"): 1, ("a", "y"): 3, ("b", "x"): 5}
    assert action_shares(counts) == {"a": {"y": 0.75, "x": 0.25}, "b": {"x": 1.0}}
    assert action_shares({}) == {}


def test_csv_flattens_every_section():
    arm = {"n": 10, "units": 9, "pending": 1, "mean": 0.5, "ci_low": 0.2, "ci_high": 0.8,
           "reason": None, "metrics": {"event:click": {"n": 10, "mean": 0.3}}}
    comparison = {"arm": "b", "metric": "reward", "diff": 0.1, "p_value": 0.2,
                  "significant": False, "method": "welch", "power": {"power": 0.1}}
    report = {"arms": {"a": arm, "b": arm}, "comparisons": [comparison],
              "segments": {"values": [{"value": "DE", "arms": {"a": arm},
                                       "comparisons": [comparison]}]}}
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [r["section"] for r in rows] == ["arm", "arm_metric", "arm", "arm_metric",
                                            "comparison", "segment_arm", "segment_comparison"]
    assert rows[4]["diff"] == "0.1" and rows[4]["reason"] == "" and rows[5]["segment"] == "DE"
    assert to_csv({"arms": {}, "comparisons": [], "segments": None}).count("\n") == 1


def test_number_formats():
    assert (num(3), num(0.123456), num(None), num(-12345.0)) == ("3", "0.1235", "—",
                                                                "-12,345.0")
    assert (pct(0.5), pval(0.000012345), pval(None)) == ("+50.00%", "1.23e-05", "—")


@pytest.mark.parametrize("target, expected", [
    ("/experiments/x?segment=a", "/experiments/x?segment=a"), (None, "/d"), ("", "/d"),
    ("https://evil.example/", "/d"), ("//evil.example/x", "/d"), ("/\\evil.example", "/d"),
    ("javascript:alert(1)", "/d"), ("experiments", "/d"),
])
def test_safe_next_keeps_only_local_paths(target, expected):
    assert safe_next(target, "/d") == expected
