"""Pure parts of the Personalizer administration features: policy strings read as learner
settings (untrusted input), feature importance on a simulation with known truth, and the
evaluation's time series merged from bucketed moments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandits.exploration import vw_arguments
from bandits.policy_arguments import OPTIONS
from experiments.errors import ValidationFailed
from experiments.offline import evaluation, importance, vwargs
from experiments.ope import DR, LoggedBatch
from experiments.ope.moments import Moments

REWARD = {"events": {"reward": "value"}, "aggregation": "earliest", "default": 0.0}
ALLOWED_FLAGS = {"--cb_explore_adf", "--quiet", "--epsilon", "--squarecb", "--gamma_scale",
                 "--gamma_exponent", "--softmax", "--lambda", "--bag", "--cover", "--psi",
                 "--regcb", "--mellowness", "--learning_rate", "--power_t", "--l2",
                 "--bit_precision", "--cb_min_cost", "--cb_max_cost", "--cb_type",
                 "--interactions", "--random_seed"}


@pytest.mark.parametrize(("text", "exploration", "params"), [
    ("--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::", "epsilon",
     {"epsilon": 0.2, "power_t": 0.0, "learning_rate": 0.001, "cb_type": "mtr",
      "interactions": ["ca"]}),
    ("--cb_explore_adf --squarecb --gamma_scale=20 --dsjson", "squarecb", {"gamma_scale": 20.0}),
    ("--cb_explore_adf --bag 4 -b 20", "bag", {"bag": 4, "bits": 20}),
    ("--cb_explore_adf --regcb --mellowness 0.01 --json", "regcb", {"mellowness": 0.01}),
])
def test_policy_strings_become_learner_settings(text, exploration, params):
    setting = vwargs.read(text, REWARD)
    assert setting.learner["exploration"] == exploration
    assert params.items() <= setting.learner["params"].items()
    assert setting.candidate.startswith(f"vw:{exploration}")


@pytest.mark.parametrize(("text", "words"), [
    ("--cb_explore_adf -f /tmp/model.vw", "'-f' is not an allowed"),
    ("--cb_explore_adf -i /tmp/model.vw", "'-i' is not an allowed"),
    ("--cb_explore_adf --daemon --port 26542", "'--daemon' is not an allowed"),
    ("-d /etc/passwd", "'-d' is not an allowed"),
    ("--cache_file /tmp/c", "'--cache_file' is not an allowed"),
    ("--cb_explore_adf --initial_regressor=/tmp/m", "'--initial_regressor' is not"),
    ("--cb_explore_adf --l1 1e-7", "'--l1' is not an allowed"),
    ("--cb_explore_adf --epsilon", "--epsilon needs a value"),
    ("--cb_explore_adf --epsilon x", "needs a number"),
    ("--cb_explore_adf --epsilon 2", "epsilon"),
    ("--cb_explore_adf -q UA", "interactions are 2 or 3 letters"),
    ("", "VW argument string"),
])
def test_untrusted_policy_strings_are_refused_by_name(text, words):
    with pytest.raises(ValidationFailed) as refused:
        vwargs.read(text, REWARD)
    assert words in refused.value.message
    assert refused.value.details[0]["field"] == "arguments"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(sorted({*OPTIONS, *vwargs.FORMAT_OPTIONS, "-f", "-i", "-d", "--daemon",
                            "--port", "--cache_file", "--readable_model", "-p"})),
    st.sampled_from(["0", "0.5", "1", "20", "::", "ca", "-1", "/tmp/x", "x=1", "mtr", "1e9"]),
    st.text(min_size=1, max_size=8).filter(lambda t: not t.isspace())), max_size=8))
def test_nothing_outside_the_allow_list_reaches_vw(words):
    try:
        setting = vwargs.read(" ".join(words), REWARD)
    except ValidationFailed:
        return
    arguments = vw_arguments(setting.learner["exploration"], setting.learner["params"])
    flags = {word for word in arguments.split() if word.startswith("-") and
             not word.lstrip("-").replace(".", "").replace("e", "").isdigit()}
    assert flags <= ALLOWED_FLAGS
    assert "/" not in arguments


@pytest.mark.parametrize("seed", range(2))
def test_the_informative_context_feature_ranks_first(seed):
    rows = importance.importances(importance.simulate(seed, n=900))
    assert (rows[0]["namespace"], rows[0]["featureName"], rows[0]["score"]) == \
        ("context", "segment", 1.0)
    assert all(r["score"] < 0.5 for r in rows[1:])
    counts = {r["featureName"]: (r["count"], r["distinctValues"]) for r in rows}
    assert counts["segment"] == (900, 3) and counts["color"] == (2700, 3)


def test_features_are_named_by_namespace_and_removed_alone():
    log = importance.Logged([{"user": {"age": 3, "geo": "x"}, "hour": 4, "uid": "u"}],
                            [[{"id": "a", "features": {"tags": ["n"], "ns": {"k": 1}}}]],
                            np.array([0]), np.array([1.0]), ["e"])
    found = importance.tally(log, frozenset({"uid"}))
    assert sorted(found) == [importance.Feature("action", "", "tags"),
                             importance.Feature("action", "ns", "k"),
                             importance.Feature("context", "", "hour"),
                             importance.Feature("context", "user", "age"),
                             importance.Feature("context", "user", "geo")]
    assert importance.without(log.contexts[0], importance.Feature("context", "user", "age")) \
        == {"user": {"geo": "x"}, "hour": 4, "uid": "u"}
    assert importance.importances(log)[0]["score"] is None  # too few decisions to score


START = 1_000_200.0  # a multiple of the 5-minute buckets


def _bucketed(rng, n=400):
    rewards = (rng.random(n) < 0.4).astype(float)
    batch = LoggedBatch(rewards=rewards, logged_propensity=np.full(n, 0.5),
                        chosen=rng.integers(0, 2, n), target_pmf=np.tile([0.7, 0.3], (n, 1)),
                        q_hat=np.tile([0.4, 0.4], (n, 1)))
    created = START + np.sort(rng.uniform(0, 7200, n))
    return batch, created


def test_time_series_merge_buckets_into_the_whole_window_estimate():
    batch, created = _bucketed(np.random.default_rng(1))
    found: dict = {}
    evaluation._bucket(found, batch, created, evaluation.OpeOptions())
    entry = {"buckets": [evaluation._moments(b * evaluation.BUCKET_SECONDS, e.moments)
                         for b, e in sorted(found.items())]}
    whole = DR().add(batch).get()
    start, end = START, START + 7200
    expanding = evaluation.timeseries(entry, start, end, 60, "Expanding")
    rolling = evaluation.timeseries(entry, start, end, 60, "Rolling")
    assert len(expanding) == len(rolling) == 2
    assert [p["timeStamp"] for p in rolling] == [START, START + 3600]
    assert expanding[-1]["expectedReward"] == pytest.approx(whole.value, rel=1e-12)
    assert expanding[-1]["confidenceInterval"] == \
        pytest.approx([whole.interval.lower, whole.interval.upper], rel=1e-9)
    alone = DR().add(batch.rows(np.flatnonzero(created >= start + 3600)))
    assert rolling[1]["expectedReward"] == pytest.approx(alone.get().value, rel=1e-9)
    merged = Moments.empty(2)
    for row in entry["buckets"]:
        merged = merged + evaluation._from_row(row)
    assert merged.n == batch.n
